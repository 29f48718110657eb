"""mqtts:// in CIM_MQTT_URL: the ingest's own MQTT client and the simulator's paho speak TLS to a real
Mosquitto TLS listener whose certificate comes from a throwaway CA made here; a broker vouched for by
another CA is refused."""
from __future__ import annotations

import getpass
import ipaddress
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from monitor_helpers import count, make_sensors, wait_for

from cim_core.db import free_port
from cim_core.settings import get_settings
from services.monitor import simulate as sim
from services.monitor.broker import endpoint, mosquitto_binary
from services.monitor.ingest import Ingest


def _cert(subject: str, key, issuer: x509.Name | None = None, issuer_key=None, ca: bool = False) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.now(UTC)
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
         .not_valid_after(now + timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                          content_commitment=False, key_encipherment=False, data_encipherment=False,
                                          key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                         x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                            critical=False)
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                            critical=False)
    return b.sign(issuer_key or key, hashes.SHA256())


def _pem(path: Path, obj) -> Path:
    if isinstance(obj, x509.Certificate):
        path.write_bytes(obj.public_bytes(serialization.Encoding.PEM))
    else:
        path.write_bytes(obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return path


def make_ca(folder: Path, name: str) -> tuple[Path, x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _cert(name, key, ca=True)
    return _pem(folder / f"{name}.pem", cert), cert, key


@pytest.fixture
def tls_broker(tmp_path, monkeypatch):
    """A Mosquitto with only a TLS listener, its certificate signed by a throwaway CA; CIM_MQTT_URL is
    mqtts://127.0.0.1:port and CIM_MQTT_CA_FILE that CA. Yields the folder."""
    ca_file, ca, ca_key = make_ca(tmp_path, "test-ca")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _pem(tmp_path / "broker.pem", _cert("localhost", key, ca.subject, ca_key))
    keyfile = _pem(tmp_path / "broker.key", key)
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\ncertfile {cert}\nkeyfile {keyfile}\nallow_anonymous true\n"
                    f"user {getpass.getuser()}\nlog_dest file {tmp_path / 'mosquitto.log'}\n")
    proc = subprocess.Popen([mosquitto_binary(), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    monkeypatch.setenv("CIM_MQTT_URL", f"mqtts://127.0.0.1:{port}")
    monkeypatch.setenv("CIM_MQTT_CA_FILE", str(ca_file))
    get_settings.cache_clear()
    yield tmp_path
    proc.terminate()
    proc.wait(10)
    get_settings.cache_clear()


def test_ingest_and_simulator_over_tls(db, tls_broker):
    make_sensors(db)
    where = endpoint(start=False)
    assert where.tls and where.port != 1883
    ing = Ingest(db, where, instance="tls")
    runner = threading.Thread(target=ing.run, kwargs={"report_every": 3600}, daemon=True)
    runner.start()
    try:
        assert ing.subscribed.wait(15), (tls_broker / "mosquitto.log").read_text()
        sensors = [sim.SimSensor("G1", "gas", "MH-1"), sim.SimSensor("P1", "pressure", "")]
        out = sim.run(sensors, where, rate=50, duration=2)
        assert out["published"] >= 90
        assert wait_for(lambda: count(db, "select count(*) from readings") == out["published"], timeout=20)
    finally:
        ing.stop()
        runner.join(10)


def test_a_broker_vouched_for_by_another_ca_is_refused(db, tls_broker, monkeypatch):
    other, _, _ = make_ca(tls_broker, "other-ca")
    monkeypatch.setenv("CIM_MQTT_CA_FILE", str(other))
    get_settings.cache_clear()
    ing = Ingest(db, endpoint(start=False), instance="tls-other")
    ing.connect()
    try:
        assert not ing.subscribed.wait(3)
    finally:
        ing.client.stop()
    with pytest.raises(OSError, match="CERTIFICATE_VERIFY_FAILED"):
        sim.run([sim.SimSensor("G1", "gas", "MH-1")], endpoint(start=False), rate=10, duration=0.1)

"""The MQTT broker: the one of CIM_MQTT_URL, else a Mosquitto of our own under $CIM_HOME/mosquitto
(like the embedded database: started on demand on a free local port, persistent across restarts)."""
from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cim_core.db import free_port
from cim_core.errors import InputError
from cim_core.settings import get_settings

# Queues of offline persistent sessions (an ingest process being restarted) must not drop readings.
CONFIG = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence true
persistence_location {dir}/
autosave_interval 5
max_queued_messages 10000000
max_queued_bytes 0
max_inflight_messages 1000
log_dest file {dir}/mosquitto.log
user {user}
"""


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto",) if Path(p).exists()), None)
    if not found:
        raise InputError("mosquitto is not installed", hint="apt-get install mosquitto, or set CIM_MQTT_URL")
    return found


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Broker:
    """The Mosquitto of one folder."""
    dir: Path

    def __post_init__(self):
        self.dir = Path(self.dir).absolute()
        self.state_file = self.dir / "broker.json"

    def _state(self) -> dict:
        return json.loads(self.state_file.read_text()) if self.state_file.exists() else {}

    @property
    def port(self) -> int | None:
        return self._state().get("port")

    @property
    def pid(self) -> int | None:
        return self._state().get("pid")

    def running(self) -> bool:
        pid = self.pid
        if not pid:
            return False
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return Path(f"/proc/{pid}/cmdline").read_bytes().find(b"mosquitto") >= 0

    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, port: int | None = None) -> bool:
        """Start the broker (keeping its port when free); False when it was already running."""
        if self.running():
            return False
        self.dir.mkdir(parents=True, exist_ok=True)
        port = port or (self.port if self.port and not _port_open(self.port) else free_port())
        conf = self.dir / "mosquitto.conf"
        conf.write_text(CONFIG.format(port=port, dir=self.dir, user=getpass.getuser()))
        proc = subprocess.Popen([mosquitto_binary(), "-c", str(conf)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.state_file.write_text(json.dumps({"port": port, "pid": proc.pid}))
        deadline = time.monotonic() + 10
        while not _port_open(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise InputError(f"mosquitto did not start on port {port}", hint=f"see {self.dir / 'mosquitto.log'}")
            time.sleep(0.05)
        return True

    def stop(self) -> bool:
        """Stop the broker (it saves its queues first); False when it was not running."""
        if not self.running():
            return False
        os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        return True


def own_broker() -> Broker:
    return Broker(get_settings().home / "mosquitto")


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None  # with tls: the CAs that vouch for the broker (else the system's)

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext | None:
        """A context that checks the broker's certificate and name, or None without TLS."""
        return ssl.create_default_context(cafile=self.ca_file) if self.tls else None


def endpoint(start: bool = True) -> Endpoint:
    """Where to connect: CIM_MQTT_URL, else our own broker (started when `start`)."""
    s = get_settings()
    if s.mqtt_url:
        u = urlsplit(s.mqtt_url)
        if u.scheme not in ("mqtt", "tcp", "mqtts", "ssl"):
            raise InputError(f"CIM_MQTT_URL must be mqtt://host:port or mqtts://host:port, not {u.scheme}://")
        tls = u.scheme in ("mqtts", "ssl")
        if s.mqtt_ca_file and not Path(s.mqtt_ca_file).is_file():
            raise InputError(f"CIM_MQTT_CA_FILE {s.mqtt_ca_file} is not a file")
        return Endpoint(u.hostname or "127.0.0.1", u.port or (8883 if tls else 1883), u.username, u.password,
                        tls, str(s.mqtt_ca_file) if tls and s.mqtt_ca_file else None)
    broker = own_broker()
    if start:
        broker.start()
    elif not broker.running():
        raise InputError("the MQTT broker is not running", hint="run `cim broker start` or set CIM_MQTT_URL")
    return Endpoint("127.0.0.1", broker.port)

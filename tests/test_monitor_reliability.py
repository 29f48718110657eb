"""Reliability of the ingest, against the real broker and database: during a steady publish of numbered
readings the broker is restarted, the database is restarted, or the ingest process is killed with
SIGKILL; every reading the broker acknowledged is stored exactly once (counted)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from monitor_helpers import CountingPublisher, count, make_sensors, wait_for


ROOT = Path(__file__).resolve().parent.parent
TOTAL, RATE, DISRUPT_AT = 2000, 400.0, 700


def start_ingest(env: dict, log: Path) -> subprocess.Popen:
    with log.open("ab") as fh:
        return subprocess.Popen([sys.executable, "-m", "services.cli", "monitor", "run", "--instance", "r"],
                                cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)


def env_for(db_url: str, broker_url: str) -> dict:
    return {**os.environ, "CIM_DATABASE_URL": db_url, "CIM_MQTT_URL": broker_url, "PYTHONPATH": str(ROOT),
            "CIM_INGEST_FLUSH_S": "0.05"}


def stored_numbers(engine: sa.Engine) -> list[int]:
    with engine.connect() as c:
        return [int(v) for v in c.scalars(sa.text(
            "select r.value from readings r join sensors s on s.object_id = r.sensor_id where s.code = 'P1'"))]


def run_with_disruption(engine: sa.Engine, port: int, disrupt: Callable[[], None]) -> CountingPublisher:
    """Publish TOTAL numbered readings at RATE per second; disrupt() in a thread at reading DISRUPT_AT."""
    pub = CountingPublisher(port, "P1")
    t0, worker = time.monotonic(), None
    for n in range(TOTAL):
        if n == DISRUPT_AT:
            worker = threading.Thread(target=disrupt)
            worker.start()
        pub.publish(n)
        time.sleep(max(0.0, t0 + (n + 1) / RATE - time.monotonic()))
    worker.join(60)
    # the publisher's last messages reach the broker, and the broker acknowledges them
    wait_for(lambda: len(pub.acked_mids) >= TOTAL, timeout=30)
    return pub


def check_exactly_once(engine: sa.Engine, pub: CountingPublisher) -> None:
    acked = pub.acked()
    assert len(acked) > TOTAL * 0.9, f"only {len(acked)} of {TOTAL} acknowledged"
    wait_for(lambda: acked <= set(stored_numbers(engine)), timeout=60, every=0.5)
    stored = stored_numbers(engine)
    assert acked - set(stored) == set(), "acknowledged readings missing"
    assert len(stored) == len(set(stored)), "a reading stored twice"
    assert count(engine, "select count(*) from dead_letters") == 0


def wait_ingesting(engine: sa.Engine, port: int) -> None:
    """Until the ingest stores readings: it has subscribed (its session exists from then on)."""
    probe = CountingPublisher(port, "P2", client_id="probe")
    n = 0
    while not count(engine, "select count(*) from readings"):
        probe.publish(n)
        n += 1
        assert n < 200, "the ingest stores nothing"
        time.sleep(0.1)
    probe.close()


@pytest.fixture
def running(db, mosquitto, tmp_path):
    make_sensors(db)
    env = env_for(db.url.render_as_string(hide_password=False), mosquitto.url())
    procs = [start_ingest(env, tmp_path / "ingest.log")]
    wait_ingesting(db, mosquitto.port)
    yield procs, env, tmp_path / "ingest.log"
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            p.wait(20)


def test_ingest_killed_with_sigkill(db, mosquitto, running):
    procs, env, log = running

    def kill_and_restart():
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(10)
        time.sleep(1.0)
        procs.append(start_ingest(env, log))

    pub = run_with_disruption(db, mosquitto.port, kill_and_restart)
    check_exactly_once(db, pub)
    pub.close()


def test_broker_restarted(db, mosquitto, running):
    def restart():
        port = mosquitto.port
        mosquitto.stop()
        time.sleep(1.0)
        mosquitto.start(port=port)

    pub = run_with_disruption(db, mosquitto.port, restart)
    check_exactly_once(db, pub)
    pub.close()




def test_database_restarted(own_cluster, mosquitto, tmp_path):
    emb, engine = own_cluster
    make_sensors(engine)
    env = env_for(emb.url(), mosquitto.url())
    proc = start_ingest(env, tmp_path / "ingest.log")
    try:
        wait_ingesting(engine, mosquitto.port)

        def restart():
            emb.stop()
            time.sleep(2.0)
            emb.start()

        pub = run_with_disruption(engine, mosquitto.port, restart)
        engine.dispose()
        check_exactly_once(engine, pub)
        pub.close()
        assert b"database unavailable" in (tmp_path / "ingest.log").read_bytes()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)

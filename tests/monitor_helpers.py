"""Helpers of the monitoring tests: sensors on a hand-made manhole, a publisher that counts the
readings the broker acknowledged, and waiting for the database to hold what was published."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import sqlalchemy as sa

from cim_core.model import CityObject, DatasetInfo, PipeNode
from cim_core.sensors import SensorRecord, register_sensors
from cim_core.store import write_dataset

X, Y = 500000.0, 3650000.0
ROOT = Path(__file__).resolve().parent.parent


def make_sensors(engine: sa.Engine, n: int = 3) -> dict[str, int]:
    """A gas manhole MH-1 and sensors G1 (on it), P1, P2... (pressure, by position)."""
    node = CityObject("MH-1", "pipe_node", node=PipeNode("gas", "manhole", (X, Y, 50.0), depth=1.5))
    write_dataset(DatasetInfo("gasnet", "test", "gasnet.gpkg", "x"), [node], engine=engine)
    recs = [SensorRecord("G1", "gas", asset="MH-1", period_s=1.0)]
    recs += [SensorRecord(f"P{i}", "pressure", position=(X + i, Y, 50.0), period_s=1.0) for i in range(1, n)]
    return register_sensors(recs, engine=engine)


def iso(t: datetime) -> str:
    return t.isoformat()


def count(engine: sa.Engine, sql: str, **params) -> int:
    with engine.connect() as c:
        return int(c.scalar(sa.text(sql), params))


def wait_for(fn, timeout: float = 30.0, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(every)


class CountingPublisher:
    """Publishes numbered readings of one sensor with QoS 1 and records which the broker acknowledged
    (PUBACK); survives broker restarts (a persistent session, messages resent on reconnect). Fewer than
    65535 readings, so that a message id names one reading."""

    def __init__(self, port: int, sensor: str, client_id: str = "test-publisher"):
        self.sensor = sensor
        self.acked_mids: list[int] = []
        self.mid_to_n: dict[int, int] = {}
        self.base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                        protocol=mqtt.MQTTv311)
        c.on_publish = self._on_publish
        c.max_inflight_messages_set(100)
        c.max_queued_messages_set(0)
        c.reconnect_delay_set(0.1, 1)
        c.connect("127.0.0.1", port)
        c.loop_start()
        self.client = c

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        if not reason_code.is_failure:
            self.acked_mids.append(mid)  # list.append is atomic; paho may hold its own locks here

    def time_of(self, n: int) -> datetime:
        return self.base + timedelta(milliseconds=10 * n)

    def publish(self, n: int) -> None:
        body = json.dumps({"time": iso(self.time_of(n)), "value": float(n)})
        info = self.client.publish(f"cim/{self.sensor}/reading", body, qos=1)
        self.mid_to_n[info.mid] = n

    def acked(self) -> set[int]:
        return {self.mid_to_n[m] for m in list(self.acked_mids)}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def start_api(env: dict) -> tuple[subprocess.Popen, str]:
    """A real uvicorn on a free port (the live stream needs a real server); (process, base URL)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "services.app:create_app", "--host",
                             "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/api", timeout=2).status_code == 200
        except httpx.TransportError:
            return False
    assert wait_for(up, timeout=30), "uvicorn did not start"
    return proc, base


class EventReader:
    """Reads a server-sent events stream in a thread; `events` holds (event, data) as they come."""

    def __init__(self, url: str, headers: dict | None = None):
        self.events: list[tuple[str, dict]] = []
        self.connected = threading.Event()
        self.thread = threading.Thread(target=self._read, args=(url, headers or {}), daemon=True)
        self.thread.start()
        assert self.connected.wait(10)

    def _read(self, url: str, headers: dict) -> None:
        try:
            with httpx.stream("GET", url, headers=headers, timeout=None) as r:
                kind = None
                for line in r.iter_lines():
                    if line.startswith(": connected"):
                        self.connected.set()
                    elif line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        self.events.append((kind, json.loads(line[6:])))
        except httpx.HTTPError:
            pass  # the server went away at the end of the test

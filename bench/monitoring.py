"""Monitoring ingest: `cim monitor run` against Mosquitto alone and a bare COPY, in one run.

An embedded database and a Mosquitto of the bench's own (under the work folder), 1,000 pressure
sensors. Each phase lasts 60 s x scale:
- mosquitto: publishers -> broker -> one QoS 1 subscriber that only counts (the ingest's own MQTT client,
  acknowledging at once; nothing stored), publishers as fast as the broker acknowledges;
- copy: the same rows COPYed in batches of 5,000 into a table of the same columns and key, nothing else;
- ours-single / ours-gateway: publishers offer the issue's goal, 10,000 readings/s in one-reading
  messages or 50,000/s in gateway messages of 100, at a steady pace, to `cim monitor run --processes N`
  (N = cores, or BENCH_INGEST_PROCESSES); we count readings stored per second, sample every 0.5 s how
  far the stored readings are behind the publishers (in seconds of publishing), and, after the
  publishers stop, how long the table takes to hold every published reading.
Alarm latency: during both ours phases, a gas sensor's readings (one-reading messages) cross its alarm
threshold about once a second, up or down, after a random pause of 0.25-0.75 s (a fixed pause locked
the probe to one phase of the ingest's batch cycle); the time from publishing the crossing pair to the
sensor's `state` event read off the live stream itself (GET /api/monitor/stream of a `cim serve` of the
run, as server-sent events, with an operator's key: the stream also carries a `readings` event per
stored batch, and relaying those is part of what is measured) gives p50 and p99; a probe with no event
within 5 s is counted as timed out (reported, and as 5 s in `p99_timeouts_as_limit`). The API server's
CPU per 1,000 readings stored is reported beside the ingest's and the broker's.
Publishers: two processes writing raw MQTT 3.1.1 QoS 1 packets (bench/mqtt_publish.py), the same for
the anchor and for ours; 127.0.0.1 only.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue
import random
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import httpx
import numpy as np
import paho.mqtt.client as mqtt
import psycopg
import sqlalchemy as sa

from bench import mqtt_publish
from bench._http import free_port
from bench.features import serve
from bench.features import stop as stop_server
from services.monitor.mqttwire import Subscriber

SENSORS = 1000
PUBLISHERS = 2
SINGLE_RATE, GATEWAY_RATE = 10_000, 50_000  # the goals, offered at a steady pace
PROCESSES = int(os.environ.get("BENCH_INGEST_PROCESSES", os.cpu_count() or 1))
ROOT = Path(__file__).resolve().parent.parent


def _publish(port: int, seconds: float, per_message: int, worker: int, rate: float, counter) -> None:
    n = mqtt_publish.publish(port, seconds, per_message, worker, PUBLISHERS, rate / PUBLISHERS, SENSORS)
    with counter.get_lock():
        counter.value += n


def _publishers(port: int, seconds: float, per_message: int, rate: float = 0) -> int:
    """Readings the broker acknowledged; `rate` readings/s in all (0: as fast as it goes)."""
    counter = mp.Value("q", 0)
    procs = [mp.Process(target=_publish, args=(port, seconds, per_message, w, rate, counter))
             for w in range(PUBLISHERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return counter.value


def _mosquitto_alone(port: int, seconds: float, per_message: int) -> dict:
    """Publish to subscribe through the broker, nothing stored: the subscriber is the ingest's own MQTT
    client, acknowledging each read's messages at once."""
    got = [0]

    def deliver(msgs: list) -> None:
        got[0] += len(msgs)
        sub.ack([m[:3] for m in msgs])

    sub = Subscriber("127.0.0.1", port, f"bench-sub-{per_message}", ["cim/+/reading", "cim/gateway/+"], deliver,
                     session_expiry=0)
    sub.start()
    assert sub.subscribed.wait(30), "the anchor's subscriber did not subscribe"
    t0 = time.monotonic()
    sent = _publishers(port, seconds, per_message)
    while got[0] < sent // per_message and time.monotonic() - t0 < seconds + 60:
        time.sleep(0.05)
    took = time.monotonic() - t0
    sub.stop()
    return {"readings": got[0] * per_message, "seconds": round(took, 2), "per_s": round(got[0] * per_message / took)}


def _bare_copy(url: str, seconds: float) -> dict:
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("drop table if exists bare; create table bare (sensor_id bigint, time timestamptz, "
                  "value float8, quality int2, primary key (sensor_id, time))")
        base, n, end = datetime.now(UTC) - timedelta(hours=2), 0, time.monotonic() + seconds
        t0 = time.monotonic()
        while time.monotonic() < end:
            with c.transaction(), c.cursor().copy("copy bare from stdin (format binary)") as cp:
                cp.set_types(["int8", "timestamptz", "float8", "int2"])
                for i in range(n, n + 5000):
                    cp.write_row((i % SENSORS, base + timedelta(milliseconds=i // SENSORS * 10), 0.3, None))
            n += 5000
        took = time.monotonic() - t0
        c.execute("drop table bare")
    return {"readings": n, "seconds": round(took, 2), "per_s": round(n / took)}


def _stored(engine: sa.Engine) -> int:
    """Readings stored: the sum of the one-minute rollups' counts, which the statement storing readings
    adds its new ones to (the same number: 1,500,492 both ways after a 30 s gateway run). A count(*) of
    readings took 80-110 ms at 1.5 million rows; asked every 0.5 s, it took up to a third of a core
    from the ingest it measures by the end of a gateway phase."""
    with engine.connect() as c:
        return int(c.scalar(sa.text("select coalesce(sum(n), 0) from readings_1m")))


PROBE_TIMEOUT_S = 5.0


class Api(NamedTuple):
    """The API server of the run: its base URL, an operator's key, its process id."""
    base: str
    key: str
    pid: int


class _StateEvents:
    """Reads GET /api/monitor/stream as server-sent events in a thread, as a viewer would: every event
    is read off the socket; `state` events go to a queue with the time each arrived."""

    def __init__(self, base: str, key: str):
        self.states: queue.Queue[tuple[float, dict]] = queue.Queue()
        self.connected = threading.Event()
        self.response = None
        self.thread = threading.Thread(target=self._read, args=(base, key), daemon=True)
        self.thread.start()
        assert self.connected.wait(30), "the live stream did not connect"

    def _read(self, base: str, key: str) -> None:
        try:
            with httpx.stream("GET", f"{base}/api/monitor/stream", headers={"X-API-Key": key},
                              timeout=httpx.Timeout(10, read=None)) as r:
                self.response, kind = r, None
                for line in r.iter_lines():
                    if line.startswith(":"):
                        self.connected.set()
                    elif line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: ") and kind == "state":
                        self.states.put((time.monotonic(), json.loads(line[6:])))
        except httpx.HTTPError:
            pass  # closed at the end of the phase

    def close(self) -> None:
        if self.response is not None:
            self.response.close()
        self.thread.join(5)


def _alarm_latency(port: int, api: Api, stop: threading.Event, out: list[float]) -> None:
    """About once a second a gas sensor's readings cross the alarm threshold (two readings in a row, as
    the rule asks); the delay to its state event on the live stream, read with an operator's key."""
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-alarm")
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    events = _StateEvents(api.base, api.key)
    t, high = datetime.now(UTC) - timedelta(minutes=5), True
    pause = random.Random(17)  # a random pause: the probe lands anywhere in the ingest's batch cycle
    while not stop.is_set():
        while not events.states.empty():
            events.states.get_nowait()  # late events of an earlier pair
        for _ in range(2):
            t += timedelta(seconds=1)
            pub.publish("cim/BGAS/reading", json.dumps({"time": t.isoformat(), "value": 40.0 if high else 0.0}),
                        qos=1)
        sent, got = time.monotonic(), None
        while (left := sent + PROBE_TIMEOUT_S - time.monotonic()) > 0:
            try:
                at, msg = events.states.get(timeout=left)
            except queue.Empty:
                break
            if msg.get("sensor") == "BGAS" and msg.get("state") == ("alarm" if high else "normal"):
                got = at - sent  # not a late event of the last pair
                break
        out.append(got)  # None: no event within PROBE_TIMEOUT_S
        high = not high
        time.sleep(pause.uniform(0.25, 0.75))
    events.close()
    pub.disconnect()
    pub.loop_stop()


def _lag_sampler(engine: sa.Engine, rate: float, stop: threading.Event, out: list[float]) -> None:
    """Every 0.5 s while publishing: how far the stored readings are behind the paced publishers, in
    seconds of publishing (counted from before the publishers start, so it errs high)."""
    t0 = time.monotonic()
    while not stop.wait(0.5):
        out.append(max(0.0, (rate * (time.monotonic() - t0) - _stored(engine)) / rate))


def _ingest(env: dict, per_message: int, processes: int, work: Path) -> subprocess.Popen:
    log = (work / f"ingest_{per_message}.log").open("wb")
    # a group per phase: a stopped process's persistent session would keep its share of a group's messages
    return subprocess.Popen([sys.executable, "-m", "services.cli", "monitor", "run", "--group",
                             f"bench{per_message}", "--processes", str(processes)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a running process has used (proc(5), /proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _ours(engine: sa.Engine, env: dict, port: int, seconds: float, per_message: int, work: Path,
          rate: float, processes: int, broker_pid: int, api: Api) -> dict:
    with engine.begin() as c:
        c.execute(sa.text("truncate readings, readings_1m, readings_1h, sensor_state, alarms, alarm_events, "
                          "dead_letters"))
    proc = _ingest(env, per_message, processes, work)
    log, since = work / f"ingest_{per_message}.log", time.monotonic()
    while log.read_text(errors="replace").count(" connected to ") < processes and time.monotonic() - since < 180:
        time.sleep(0.5)  # every process subscribed (a loaded machine takes a while to start them)
    time.sleep(2)
    stop, lat, lags = threading.Event(), [], []
    threads = [threading.Thread(target=_lag_sampler, args=(engine, rate, stop, lags)),
               threading.Thread(target=_alarm_latency, args=(port, api, stop, lat))]
    for t in threads:
        t.start()
    t0, broker_cpu, api_cpu = time.monotonic(), _cpu_s(broker_pid), _cpu_s(api.pid)
    sent = _publishers(port, seconds, per_message, rate)
    published_at = time.monotonic()
    stop.set()
    while _stored(engine) < sent and time.monotonic() - published_at < 120:
        time.sleep(0.1)
    lag = time.monotonic() - published_at
    stored = _stored(engine)
    for t in threads:
        t.join(10)
    broker_cpu, api_cpu = _cpu_s(broker_pid) - broker_cpu, _cpu_s(api.pid) - api_cpu
    ingest_cpu = _children_cpu_s()  # the publishers were waited for already: what follows is the ingest's
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    ingest_cpu = _children_cpu_s() - ingest_cpu
    took = published_at - t0
    res = {"offered_per_s": rate, "processes": processes, "published": sent, "stored": stored,
           "seconds": round(took, 2), "published_per_s": round(sent / took),
           "stored_per_s": round(min(stored, sent) / (took + lag)), "lag_s_after_publishers_stop": round(lag, 2),
           "lag_s_max_while_publishing": round(max(lags[2:], default=0.0), 2),
           "target_with_alarm_probe": sent + 2 * len(lat),
           # CPU seconds per 1,000 readings stored (all ingest processes, start to stop; the broker while
           # publishing and draining): less sensitive to the machine's load than the rates
           "ingest_cpu_s_per_1000": round(ingest_cpu / max(stored, 1) * 1000, 4),
           "broker_cpu_s_per_1000": round(broker_cpu / max(stored, 1) * 1000, 4),
           # the API server relaying the live stream to the probe (every readings event as well)
           "api_cpu_s_per_1000": round(api_cpu / max(stored, 1) * 1000, 4)}
    if lat:
        came = [x for x in lat if x is not None]
        ms = np.array(came or [np.nan]) * 1000
        # a probe that timed out counts as PROBE_TIMEOUT_S in the second p99 (a lower bound for it)
        every = np.array([PROBE_TIMEOUT_S if x is None else x for x in lat]) * 1000
        res["alarm_latency_ms"] = {"probes": len(lat), "n": len(came), "timed_out": len(lat) - len(came),
                                   "p50": round(float(np.percentile(ms, 50)), 1),
                                   "p99": round(float(np.percentile(ms, 99)), 1),
                                   "p99_timeouts_as_limit": round(float(np.percentile(every, 99)), 1)}
    return res


def run(scale: float, work: Path) -> dict:
    from cim_core import db as cdb
    from cim_core.migrate import upgrade
    from cim_core.sensors import SensorRecord, register_sensors
    from services.auth import create_key
    from services.monitor.broker import Broker

    seconds = 60.0 * scale
    emb = cdb.Embedded(work / "cim_home")
    emb.start()
    # a fresh broker: sessions kept from an earlier run would queue this run's messages
    shutil.rmtree(work / "mosquitto", ignore_errors=True)
    broker = Broker(work / "mosquitto")
    broker.start()
    engine, server = sa.create_engine(emb.url()), None
    try:
        upgrade(engine, srid=4547)
        recs = [SensorRecord(f"B{i:04d}", "pressure", position=(500000.0 + i, 3650000.0, 50.0), period_s=60)
                for i in range(SENSORS)] + [SensorRecord("BGAS", "gas", position=(500000.0, 3650001.0, 50.0))]
        register_sensors(recs, "bench-sensors", engine=engine)
        env = {**os.environ, "CIM_DATABASE_URL": emb.url(), "CIM_MQTT_URL": broker.url(), "PYTHONPATH": str(ROOT)}
        url = emb.url().replace("+psycopg", "")
        api_port = free_port()
        server = serve([sys.executable, "-m", "services.cli", "serve", "--port", str(api_port)], env,
                       f"http://127.0.0.1:{api_port}/api", work, "cim-serve")
        api = Api(f"http://127.0.0.1:{api_port}", create_key("operator", "bench alarm probe", engine=engine)[1],
                  server.pid)
        out = {"seconds_per_phase": seconds, "sensors": SENSORS, "publishers": PUBLISHERS,
               "mosquitto_single": _mosquitto_alone(broker.port, seconds, 1),
               "mosquitto_gateway100": _mosquitto_alone(broker.port, seconds, 100),
               "bare_copy": _bare_copy(url, seconds),
               "ours_single": _ours(engine, env, broker.port, seconds, 1, work, SINGLE_RATE, PROCESSES,
                                    broker.pid, api),
               "ours_gateway100": _ours(engine, env, broker.port, seconds, 100, work, GATEWAY_RATE,
                                        PROCESSES, broker.pid, api)}
        for mode in ("single", "gateway100"):
            slower = min(out[f"mosquitto_{mode}"]["per_s"], out["bare_copy"]["per_s"])
            out[f"ratio_{mode}_to_slower_anchor"] = round(out[f"ours_{mode}"]["stored_per_s"] / slower, 3)
        return out
    finally:
        if server is not None:
            stop_server(server)
        engine.dispose()
        broker.stop()
        emb.stop()

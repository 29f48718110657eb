"""`cim monitor simulate`: sensors placed on the model and realistic readings published over MQTT,
with an incident injected on request.

Placement: combustible gas in gas manholes (else gas nodes), pressure on water nodes, water level in
rain manholes, in the proportions 2:2:1. Readings: a base value with a daily pattern and noise; an
incident moves one sensor (and, for a burst, its neighbours) the way the event would.
"""
from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import sqlalchemy as sa

from cim_core.errors import InputError
from cim_core.sensors import SensorRecord, register_sensors

from .broker import Endpoint

DATASET = "simulated-sensors"
INCIDENTS = {"gas-leak": "gas", "burst": "pressure", "flood": "level"}
# kind -> (base, daily amplitude, noise) in the kind's unit (%LEL, MPa, m)
PROFILE = {"gas": (0.5, 0.2, 0.3), "pressure": (0.32, 0.03, 0.002), "level": (0.4, 0.1, 0.02)}
RAMP_S = 5.0  # an incident builds to its full size in this many seconds
# Ordered by a hash of the key: spread over the whole network and the same each time (by id they all stood
# on the first street generated).
_CANDIDATES = sa.text("""
    select o.key, n.node_type from pipe_nodes n join city_objects o on o.id = n.object_id
    where n.utility = :u and (cast(:t as text) is null or n.node_type = :t) order by md5(o.key), o.id limit :n""")


@dataclass
class SimSensor:
    code: str
    kind: str
    asset: str


def place_sensors(engine: sa.Engine, n: int, period_s: float = 10.0) -> list[SimSensor]:
    """Register up to n sensors on the model's networks (dataset simulated-sensors); the placed sensors."""
    shares = [("gas", "gas", "manhole", 2), ("pressure", "water", None, 2), ("level", "rain", "manhole", 1)]
    placed: list[SimSensor] = []
    with engine.connect() as c:
        for kind, utility, node_type, share in shares:
            want = max(1, n * share // 5)
            rows = c.execute(_CANDIDATES, {"u": utility, "t": node_type, "n": want}).all()
            if not rows and node_type:
                rows = c.execute(_CANDIDATES, {"u": utility, "t": None, "n": want}).all()
            placed += [SimSensor(f"SIM-{kind[:3].upper()}-{i + 1:04d}", kind, r.key) for i, r in enumerate(rows)]
    placed = placed[:n]
    if not placed:
        raise InputError("no gas, water or rain network to place sensors on",
                         hint="load the sample district first: cim sample load")
    register_sensors([SensorRecord(s.code, s.kind, period_s=period_s, asset=s.asset) for s in placed], DATASET,
                     engine=engine)
    return placed


def value(kind: str, t: float, rng: random.Random, incident: float | None) -> float:
    """A reading at epoch time t; `incident`: seconds since the incident began on this sensor."""
    base, amp, noise = PROFILE[kind]
    daily = math.sin(2 * math.pi * ((t / 3600.0) % 24 - 6) / 24)
    v = base + amp * daily + rng.gauss(0, noise)
    if incident is not None and incident >= 0:
        ramp = min(1.0, incident / RAMP_S)
        v += {"gas": 45.0, "pressure": -0.15, "level": 3.0}[kind] * ramp
    return max(0.0, v) if kind != "pressure" else v


def run(sensors: list[SimSensor], broker: Endpoint, *, rate: float, duration: float, incident: str | None = None,
        incident_after: float = 5.0, seed: int = 1, progress: Callable[[int], None] | None = None) -> dict:
    """Publish readings of `sensors` at `rate` a second in all for `duration` seconds; returns counts and
    the sensor the incident hit."""
    target = next((s for s in sensors if incident and s.kind == INCIDENTS[incident]), None)
    if incident and target is None:
        raise InputError(f"no {INCIDENTS[incident]} sensor for the {incident} incident")
    rng = random.Random(seed)
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"cim-simulator-{seed}", protocol=mqtt.MQTTv311)
    if broker.username:
        c.username_pw_set(broker.username, broker.password)
    if broker.tls:
        c.tls_set_context(broker.ssl_context())
    c.max_queued_messages_set(0)
    c.connect(broker.host, broker.port)
    c.loop_start()
    start, sent, infos = time.monotonic(), 0, []
    try:
        while (elapsed := time.monotonic() - start) < duration:
            s = sensors[sent % len(sensors)]
            now = datetime.now(UTC)
            hit = elapsed - incident_after if target is not None and s is target else None
            body = {"time": now.isoformat(), "value": round(value(s.kind, now.timestamp(), rng, hit), 4)}
            infos.append(c.publish(f"cim/{s.code}/reading", json.dumps(body), qos=1))
            sent += 1
            if progress and sent % 100 == 0:
                progress(100)
            time.sleep(max(0.0, start + sent / rate - time.monotonic()))
        for info in infos[-1000:]:
            info.wait_for_publish(10)
    finally:
        c.disconnect()
        c.loop_stop()
    return {"published": sent, "incident": incident, "incident_sensor": target.code if target else None,
            "incident_asset": target.asset if target else None}

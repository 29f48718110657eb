"""Alarms whatever order two ingest processes commit a sensor's readings in: a real Mosquitto deals the
one-reading messages of one sensor round-robin to two ingest loops of one shared subscription, whose
batches commit in either order; every episode of the gas level rule (consecutive = 2, hysteresis 2) is
raised and closed once, and recorded at its second reading past 25 %LEL and its second under 8 %LEL
(an alarm decided while the other process still held a reading of the streak is raised once, later,
and its record gets the time the replay of the late reading finds)."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from monitor_helpers import count, make_sensors, wait_for

from services.monitor.broker import endpoint
from services.monitor.ingest import Ingest

EPISODE = [2.0, 2.0, 30.0, 30.0, 30.0, 5.0, 5.0, 5.0]  # readings 3 and 6 of each complete a streak
EPISODES = 9  # 72 readings 2 s apart: 144 s of reading time, past the replay's 60 s snapshots


@contextmanager
def running(loops: list[Ingest], port: int) -> Iterator[mqtt.Client]:
    """The ingest loops in threads, subscribed, and a publisher; all stopped at the end."""
    threads = [threading.Thread(target=ing.run, kwargs={"report_every": 3600}, daemon=True) for ing in loops]
    for t in threads:
        t.start()
    assert all(ing.subscribed.wait(10) for ing in loops)
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="order-pub", protocol=mqtt.MQTTv311)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    try:
        yield pub
    finally:
        pub.disconnect()
        pub.loop_stop()
        for ing in loops:
            ing.stop()
        for t in threads:
            t.join(10)


def test_two_ingest_processes_raise_and_close_each_alarm_once(db, mosquitto):
    make_sensors(db)
    loops = [Ingest(db, endpoint(start=False), instance=i) for i in ("o-1", "o-2")]
    # in the near future (the ingest takes up to 300 s ahead), so that no offline alarm comes in between
    t0 = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)
    values = EPISODE * EPISODES
    with running(loops, mosquitto.port) as pub:
        for i, v in enumerate(values):
            body = json.dumps({"time": (t0 + timedelta(seconds=2 * i)).isoformat(), "value": v})
            pub.publish("cim/G1/reading", body, qos=1).wait_for_publish(5)
            time.sleep(0.03)  # about seven batches of each process interleave
        assert wait_for(lambda: count(db, "select count(*) from readings") == len(values), timeout=30)
        assert wait_for(lambda: count(db, "select count(*) from alarms where closed_at is not null") == EPISODES,
                        timeout=10)
    with db.connect() as c:
        alarms = c.execute(sa.text("select rule, level, raised_at, closed_at from alarms order by raised_at")).all()
        events = c.scalars(sa.text("select string_agg(event, ',' order by id) from alarm_events "
                                   "group by alarm_id order by alarm_id")).all()
        state = c.scalar(sa.text("select state from sensor_state s join sensors x on x.object_id = s.sensor_id "
                                 "where x.code = 'G1'"))
    n = len(EPISODE)
    assert [(a.rule, a.level) for a in alarms] == [("gas-level", "alarm")] * EPISODES
    assert [a.raised_at for a in alarms] == [t0 + timedelta(seconds=2 * (e * n + 3)) for e in range(EPISODES)]
    assert [a.closed_at for a in alarms] == [t0 + timedelta(seconds=2 * (e * n + 6)) for e in range(EPISODES)]
    assert events == ["raised,closed"] * EPISODES and state == "normal"


def partitioned(db, name: str) -> tuple[list[Ingest], dict[int, set[int]]]:
    """Ingest loops of partitions 1 and 2 of 2, and the sensor ids each one's rules saw."""
    from analyses import alarms

    seen: dict[int, set[int]] = {1: set(), 2: set()}

    def recorder(k):
        def after_store(conn, rows):
            seen[k].update(r[0] for r in rows)
            alarms.evaluate(conn, rows)
        return after_store
    return [Ingest(db, endpoint(start=False), instance=f"{name}-{k}", partition=(k, 2), after_store=recorder(k))
            for k in (1, 2)], seen


GAS = [2.0, 30.0, 5.0, 30.0, 2.0] * 6 + [30.0, 30.0, 2.0, 2.0]  # consecutive 2: only the last 30, 30 raises


def publish_gas(pub: mqtt.Client, t0: datetime, messages) -> None:
    """GAS 2 s apart from t0: messages(i, time, value) gives the (topic, body) pairs of reading i."""
    for i, v in enumerate(GAS):
        for topic, body in messages(i, (t0 + timedelta(seconds=2 * i)).isoformat(), v):
            pub.publish(topic, json.dumps(body), qos=1).wait_for_publish(5)
        time.sleep(0.03)


def one_alarm_at_the_end(db, t0: datetime) -> bool:
    with db.connect() as c:
        alarms_ = c.execute(sa.text("select rule, raised_at, closed_at from alarms")).all()
    n = len(GAS)
    return [(a.rule, a.raised_at, a.closed_at) for a in alarms_] == [
        ("gas-level", t0 + timedelta(seconds=2 * (n - 3)), t0 + timedelta(seconds=2 * (n - 1)))]


def test_partitioned_processes_see_each_sensor_in_order(db, mosquitto):
    """`cim monitor run --processes 2`: child k takes the one-reading messages of the sensors of
    partition k, so one process evaluates each sensor and a reading of a streak is never in flight in
    the other one: 2, 30, 5, 30, 2 (consecutive 2) raises nothing, 30, 30 raises once. Every reading is
    stored once, and each sensor's readings went through one process's rules."""
    ids = make_sensors(db, 5)  # G1..P3 hash to partition 2, P4 to partition 1
    loops, seen = partitioned(db, "p")
    t0 = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)
    with running(loops, mosquitto.port) as pub:
        publish_gas(pub, t0, lambda i, at, v: [(f"cim/{code}/reading", {"time": at, "value": value})
                                               for code, value in (("G1", v), ("P1", 0.3), ("P4", 0.3))])
        assert wait_for(lambda: count(db, "select count(*) from readings") == 3 * len(GAS), timeout=30)
        assert wait_for(lambda: count(db, "select count(*) from alarms where closed_at is not null") == 1, timeout=10)
    assert seen == {1: {ids["P4"]}, 2: {ids["G1"], ids["P1"]}}
    assert sum(ing.stats.messages for ing in loops) == 2 * 3 * len(GAS)  # each took every message, kept its own
    assert one_alarm_at_the_end(db, t0)


def test_partitioned_processes_take_their_sensors_readings_out_of_gateway_messages(db, mosquitto):
    """Gateway messages reach every partition; each process keeps the readings of its own sensors, so a
    sensor's readings spread over messages of two gateways still go through one process in order:
    2, 30, 5, 30, 2 (consecutive 2) raises nothing. A message bad as a whole, and an item naming no
    sensor, are dead letters once (the gateway id's partition), not once per process."""
    ids = make_sensors(db, 5)  # G1..P3 hash to partition 2, P4 to partition 1
    loops, seen = partitioned(db, "g")
    t0 = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)
    def message(i, at, v):
        items = [{"sensor": code, "time": at, "value": value} for code, value in (("G1", v), ("P4", 0.3))]
        if i == 7:
            items.append({"time": at, "value": 1.0})  # no sensor: a dead letter
        # gw-a and gw-d hash to partitions 1 and 2: each process gets both, in turn
        return [(f"cim/gateway/gw-{'ad'[i % 2]}", {"readings": items})]
    with running(loops, mosquitto.port) as pub:
        publish_gas(pub, t0, message)
        pub.publish("cim/gateway/gw-a", b"not json", qos=1).wait_for_publish(5)
        assert wait_for(lambda: count(db, "select count(*) from readings") == 2 * len(GAS), timeout=30)
        assert wait_for(lambda: count(db, "select count(*) from alarms where closed_at is not null") == 1, timeout=10)
        assert wait_for(lambda: count(db, "select count(*) from dead_letters") == 2, timeout=10)
        time.sleep(1)  # a second copy of a dead letter would have come by now
    assert seen == {1: {ids["P4"]}, 2: {ids["G1"]}}
    with db.connect() as c:
        dead = sorted(c.scalars(sa.text("select reason from dead_letters")).all())
    assert dead == ["not-json", "wrong-type"]
    assert one_alarm_at_the_end(db, t0)


def test_a_session_partitioned_later_stores_whole_what_it_held_under_the_groups_filters(db, mosquitto):
    """Messages the broker queued for a session under the group's filters (it ran unpartitioned) reached
    no other partition: when the session comes back as partition 1 of 2 it stores all their readings,
    its own sensors' and the others' (the subscription identifier tells the filters apart)."""
    ids = make_sensors(db, 5)  # P1 hashes to partition 2, P4 to partition 1
    old = Ingest(db, endpoint(start=False), instance="u-1", group="upg")
    old.connect()
    assert old.subscribed.wait(10)
    old.client.stop()  # the session stays, with its subscriptions, and queues what comes
    t0 = datetime.now(UTC).replace(microsecond=0)
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="upg-pub", protocol=mqtt.MQTTv311)
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    for i in range(5):
        at = (t0 - timedelta(seconds=i)).isoformat()
        pub.publish("cim/gateway/gw-a", json.dumps({"readings": [{"sensor": c, "time": at, "value": 0.3}
                                                                 for c in ("P1", "P4")]}), qos=1).wait_for_publish(5)
        half = (t0 - timedelta(seconds=i + 0.5)).isoformat()
        for c in ("P1", "P4"):
            pub.publish(f"cim/{c}/reading", json.dumps({"time": half, "value": 0.2}), qos=1).wait_for_publish(5)
    pub.disconnect()
    pub.loop_stop()
    with running([Ingest(db, endpoint(start=False), instance="u-1", group="upg", partition=(1, 2))],
                 mosquitto.port):
        assert wait_for(lambda: count(db, "select count(*) from readings") == 20, timeout=20)
    with db.connect() as c:
        per_sensor = dict(c.execute(sa.text("select sensor_id, count(*) from readings group by 1")).all())
    assert per_sensor == {ids["P1"]: 10, ids["P4"]: 10}

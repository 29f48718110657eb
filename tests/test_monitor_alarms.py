"""Alarm rules and lifecycle on hand-made readings: levels with hysteresis and consecutive readings,
a pressure fall (burst suspected) with the valves that isolate the main, offline sensors, and
acknowledge/close through the API with the right roles (401/403 otherwise)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import sqlalchemy as sa
from fastapi.testclient import TestClient
from monitor_helpers import X, Y, count, make_sensors
from shapely.geometry import box

from analyses.alarms import check_offline, evaluate, load_rules
from analyses.alarms.coverage import monitored_length
from analyses.alarms.rules import Level, LevelRule, LevelState, step
from cim_core.model import CityObject, DatasetInfo, PipeNode, PipeSegment
from cim_core.sensors import SensorRecord, register_sensors
from cim_core.store import write_dataset
from services.app import create_app
from services.auth import create_key
from services.monitor.messages import Sorted
from services.monitor.writer import Writer

GAS = LevelRule("above", 2.0, 2, (Level("warning", 10, False), Level("alarm", 25, True)), "test", False)


def test_levels_need_consecutive_readings_and_fall_back_past_the_hysteresis():
    st, seen = LevelState(), []
    for v in [5, 12, 9, 12, 12, 30, 26, 30, 24, 24, 9, 9, 7.9, 7.9]:
        seen.append(step(GAS, st, v))
    # 12 then 9 is no streak; 12, 12 raise a warning; 30 then 26 and 30: alarm after two in a row;
    # 24 is under 25 but within the hysteresis (25 - 2): stays; 9, 9 are past it: back to warning;
    # 7.9 twice is below 10 - 2: normal.
    assert [s for s in seen if s] == [(0, 1), (1, 2), (2, 1), (1, 0)]
    assert [i for i, s in enumerate(seen) if s] == [4, 6, 11, 13]


def test_shipped_rules_cite_their_sources():
    rules = load_rules()
    assert rules.kinds["gas"].levels.levels[1].threshold == 25.0 and rules.kinds["gas"].levels.levels[1].confirmed
    assert "GB/T 50493-2019" in rules.kinds["gas"].levels.source
    assert rules.kinds["pressure"].rate.rule == "burst-suspected"
    assert all(k.levels is None or k.levels.source for k in rules.kinds.values())


def water_main(engine: sa.Engine) -> None:
    """V1 (valve) - J1 - J2 - V2 (valve) - J3 along x, 100 m apart; a building and a gas main by MH-1."""
    names = ["V1", "J1", "J2", "V2", "J3"]
    nodes = [CityObject(k, "pipe_node", node=PipeNode("water", "valve" if k[0] == "V" else "junction",
                                                      (X + 100 * i, Y + 500, 50.0), depth=1.2))
             for i, k in enumerate(names)]
    segs = [CityObject(f"W{i}", "pipe_segment", pipe=PipeSegment(
        "water", np.array([[X + 100 * i, Y + 500, 48.8], [X + 100 * i + 100, Y + 500, 48.8]]), diameter_mm=300,
        from_node=names[i], to_node=names[i + 1])) for i in range(4)]
    write_dataset(DatasetInfo("water", "test", "water.gpkg", "w"), nodes + segs, engine=engine)
    house = CityObject("B1", "building", footprint=box(X + 10, Y + 10, X + 30, Y + 30), zmin=50, zmax=60)
    gas = CityObject("GM1", "pipe_segment", pipe=PipeSegment("gas", np.array([[X - 50, Y + 5, 49], [X + 50, Y + 5, 49]])))
    write_dataset(DatasetInfo("town", "test", "town.gpkg", "t"), [house, gas], engine=engine)


def feed(engine: sa.Engine, code: str, values: list[float], start: datetime, step_s: float = 10.0) -> None:
    sid = count(engine, "select object_id from sensors where code = :c", c=code)
    w = Writer(engine, evaluate)
    for i, v in enumerate(values):  # one batch per reading, as a live feed brings them
        w.write(Sorted(readings=[(sid, start + timedelta(seconds=step_s * i), v, None)]))


def alarms_of(engine: sa.Engine, code: str) -> list[dict]:
    with engine.connect() as c:
        return [dict(r._mapping) for r in c.execute(sa.text(
            "select a.* from alarms a join sensors s on s.object_id = a.sensor_id where s.code = :c order by a.id"),
            {"c": code})]


def events_of(engine: sa.Engine, alarm_id: int) -> list[str]:
    with engine.connect() as c:
        return list(c.scalars(sa.text("select event from alarm_events where alarm_id = :i order by id"), {"i": alarm_id}))


def test_gas_alarm_lifecycle_with_context(db):
    make_sensors(db)
    water_main(db)
    t0 = datetime.now(UTC) - timedelta(minutes=10)
    feed(db, "G1", [2, 12, 12, 30, 30], t0)
    [a] = alarms_of(db, "G1")
    assert (a["rule"], a["level"], a["status"], a["value"]) == ("gas-level", "alarm", "escalated", 30.0)
    assert events_of(db, a["id"]) == ["raised", "escalated"]
    ctx = a["context"]
    assert ctx["asset"]["key"] == "MH-1"
    assert [b["key"] for b in ctx["buildings"]] == ["B1"]
    assert {p["utility"] for p in ctx["pipes"]} == {"gas"}
    assert count(db, "select count(*) from sensor_state where state = 'alarm'") == 1
    feed(db, "G1", [5, 5], t0 + timedelta(seconds=60))
    [a] = alarms_of(db, "G1")
    assert a["status"] == "closed" and a["closed_at"] is not None
    assert events_of(db, a["id"]) == ["raised", "escalated", "closed"]


def test_pressure_fall_names_the_isolation_valves(db):
    water_main(db)
    register_sensors([SensorRecord("WP1", "pressure", asset="J1", period_s=10)], engine=db)
    t0 = datetime.now(UTC) - timedelta(minutes=10)
    feed(db, "WP1", [0.32, 0.32, 0.31, 0.25], t0, step_s=30)
    [a] = alarms_of(db, "WP1")
    assert a["rule"] == "burst-suspected" and a["level"] == "alarm"
    assert [v["key"] for v in a["context"]["isolation_valves"]] == ["V1", "V2"]


def test_offline_alarm_raised_and_closed_by_the_next_reading(db):
    make_sensors(db)
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    feed(db, "P1", [0.3], t0)
    assert check_offline(db, t0 + timedelta(seconds=2)) == 0
    assert check_offline(db, t0 + timedelta(seconds=4)) == 1  # period 1 s, three periods
    assert check_offline(db, t0 + timedelta(seconds=9)) == 0  # raised once
    [a] = alarms_of(db, "P1")
    assert (a["rule"], a["status"]) == ("offline", "raised")
    assert count(db, "select count(*) from sensor_state where state = 'offline'") == 1
    feed(db, "P1", [0.3], t0 + timedelta(seconds=30))
    [a] = alarms_of(db, "P1")
    assert a["status"] == "closed"


def test_acknowledge_and_close_through_the_api_with_roles(db):
    make_sensors(db)
    feed(db, "G1", [30, 30], datetime.now(UTC) - timedelta(minutes=1))
    [a] = alarms_of(db, "G1")
    client = TestClient(create_app())
    _, writer = create_key("sensor-writer", engine=db)
    _, operator = create_key("operator", name="duty operator Li", engine=db)
    url = f"/api/alarms/{a['id']}"
    assert client.get("/api/alarms").status_code == 401
    assert client.post(url + "/acknowledge").status_code == 401
    assert client.post(url + "/acknowledge", headers={"X-API-Key": writer}).status_code == 403
    listed = client.get("/api/alarms", headers={"X-API-Key": operator}).json()["alarms"]
    assert [x["id"] for x in listed] == [a["id"]] and listed[0]["sensor"] == "G1"
    ack = client.post(url + "/acknowledge", json={"note": "crew sent"}, headers={"X-API-Key": operator})
    assert ack.status_code == 200, ack.text
    assert (ack.json()["status"], ack.json()["acknowledged_by"], ack.json()["note"]) == \
        ("acknowledged", "duty operator Li", "crew sent")
    assert client.post(url + "/close", headers={"X-API-Key": writer}).status_code == 403
    closed = client.post(url + "/close", json={"note": "vented"}, headers={"X-API-Key": operator}).json()
    assert closed["status"] == "closed"
    again = client.post(url + "/acknowledge", headers={"X-API-Key": operator})
    assert again.status_code == 400
    detail = client.get(url, headers={"X-API-Key": operator}).json()
    assert [e["event"] for e in detail["events"]] == ["raised", "acknowledged", "closed"]
    assert client.get("/api/alarms/999999", headers={"X-API-Key": operator}).status_code == 404


def test_monitored_length_per_network(db):
    water_main(db)  # four 100 m water segments W0..W3 (V1-J1-J2-V2-J3), a 100 m gas main
    register_sensors([SensorRecord("WP1", "pressure", asset="J1")], engine=db)  # J1 ends W0 and W1
    out = monitored_length(db)
    assert out["water"] == {"total_m": 400.0, "monitored_m": 200.0, "share": 0.5}
    assert out["gas"]["monitored_m"] == 0.0
    assert count(db, "select count(*) from analysis_runs where analysis = 'monitoring-coverage'") == 1


def test_readings_committed_out_of_order_raise_and_close_the_alarm_once(db):
    """Two ingest processes (two writers) get consecutive readings of one sensor from a shared
    subscription and the later reading's batch commits first: the rules still take them in time order
    (consecutive = 2 for gas), so the alarm is raised once, at the second reading past 25 %LEL, and
    closed at the second reading back under the hysteresis, whichever batch commits first."""
    make_sensors(db)
    sid = count(db, "select object_id from sensors where code = 'G1'")
    a, b = Writer(db, evaluate), Writer(db, evaluate)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)

    def at(i: int, value: float, writer: Writer) -> None:
        writer.write(Sorted(readings=[(sid, t0 + timedelta(seconds=10 * i), value, None)]))

    at(0, 2, a)
    at(1, 2, b)
    at(3, 30, a)  # the later of the two readings past the threshold commits first: a streak of one
    assert alarms_of(db, "G1") == []
    at(2, 30, b)  # the earlier one, late: with it the streak is two, ending at reading 3
    [al] = alarms_of(db, "G1")
    assert (al["rule"], al["level"], al["status"], al["value"]) == ("gas-level", "alarm", "raised", 30.0)
    assert al["raised_at"] == t0 + timedelta(seconds=30)
    at(2, 30, a)  # a QoS 1 redelivery of the late reading changes nothing
    at(4, 31, b)
    assert [x["id"] for x in alarms_of(db, "G1")] == [al["id"]]
    assert events_of(db, al["id"]) == ["raised"]
    at(6, 5, a)  # back to normal, again the later reading first
    assert alarms_of(db, "G1")[0]["status"] == "raised"
    at(5, 5, b)
    [al] = alarms_of(db, "G1")
    assert al["status"] == "closed" and al["closed_at"] == t0 + timedelta(seconds=60)
    assert events_of(db, al["id"]) == ["raised", "closed"]
    with db.connect() as c:
        st = c.execute(sa.text("select state, last_time, streaks from sensor_state where sensor_id = :s"),
                       {"s": sid}).one()
    assert st.state == "normal" and st.last_time == t0 + timedelta(seconds=60)
    assert (st.streaks["level"], st.streaks["streak"]) == (0, 0)


def test_a_late_reading_that_raises_an_alarm_ends_the_offline_state(db):
    """The offline check marks a sensor offline between the two batches; the late reading's replay
    raises the level alarm, and the sensor's state says alarm (a late reading that moves no level
    leaves offline in place: only a new reading ends an offline spell)."""
    make_sensors(db)
    sid = count(db, "select object_id from sensors where code = 'G1'")
    w = Writer(db, evaluate)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    for i, v in [(0, 2.0), (1, 2.0), (3, 30.0)]:
        w.write(Sorted(readings=[(sid, t0 + timedelta(seconds=i), v, None)]))
    assert check_offline(db, datetime.now(UTC)) == 1
    w.write(Sorted(readings=[(sid, t0 + timedelta(seconds=1, milliseconds=500), 2.0, None)]))  # moves nothing
    assert count(db, "select count(*) from sensor_state where state = 'offline'") == 1
    w.write(Sorted(readings=[(sid, t0 + timedelta(seconds=2), 30.0, None)]))
    assert [(a["rule"], a["status"]) for a in alarms_of(db, "G1")] == [("offline", "raised"), ("gas-level", "raised")]
    assert count(db, "select count(*) from sensor_state where state = 'alarm'") == 1


def test_readings_more_than_a_minute_late_are_replayed_from_the_stored_history(db):
    """A device cut off for a while sends what it buffered after newer readings were stored: readings
    five minutes late (past the replay's 60 s snapshots) still go through the level rule in time order.
    A lone reading past the threshold among normal ones raises nothing; a buffered burst raises the
    alarm at its second reading past 25 %LEL and the stored readings after it close it, at their times."""
    make_sensors(db)
    sid = count(db, "select object_id from sensors where code = 'G1'")
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    feed(db, "G1", [2.0] * 40, t0)  # every 10 s up to t0 + 390 s
    w = Writer(db, evaluate)
    w.write(Sorted(readings=[(sid, t0 + timedelta(seconds=81), 30.0, None)]))  # between 80 and 90: a streak of one
    assert alarms_of(db, "G1") == []
    w.write(Sorted(readings=[(sid, t0 + timedelta(seconds=s), v, None) for s, v in ((101, 30.0), (102, 30.0),
                                                                                  (103, 2.0))]))
    [al] = alarms_of(db, "G1")
    assert (al["level"], al["raised_at"], al["closed_at"]) == ("alarm", t0 + timedelta(seconds=102),
                                                              t0 + timedelta(seconds=110))
    assert events_of(db, al["id"]) == ["raised", "closed"]
    with db.connect() as c:
        assert c.scalar(sa.text("select state from sensor_state where sensor_id = :s"), {"s": sid}) == "normal"

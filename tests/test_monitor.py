"""Monitoring ingest against a real Mosquitto and PostGIS: readings over MQTT (one per message and
gateway batches) and HTTP stored once per sensor and time, rollups, every kind of malformed message a
dead letter with its reason while good readings keep flowing, sensors from CSV and GeoJSON."""
from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from monitor_helpers import X, Y, count, iso, make_sensors, wait_for
from pyproj import Transformer

from cim_core.readings import drop_old_partitions
from importers.sensors import import_file
from services.app import create_app
from services.auth import create_key
from services.monitor.broker import endpoint
from services.monitor.ingest import Ingest


@pytest.fixture
def ingest(db, mosquitto):
    """An ingest process's loop in a thread, on the test database and broker."""
    make_sensors(db)
    ing = Ingest(db, endpoint(start=False), instance="t")
    t = threading.Thread(target=ing.run, kwargs={"report_every": 3600}, daemon=True)
    t.start()
    assert ing.subscribed.wait(10)
    yield ing
    ing.stop()
    t.join(10)


def publisher(port: int) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pub", protocol=mqtt.MQTTv311)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def send(c: mqtt.Client, topic: str, payload) -> None:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    c.publish(topic, body, qos=1).wait_for_publish(5)


def test_mqtt_readings_once_per_sensor_and_time_with_rollups(db, mosquitto, ingest):
    now = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    pub = publisher(mosquitto.port)
    for i in range(30):  # 30 readings 10 s apart: three minutes of P1
        send(pub, "cim/P1/reading", {"time": iso(now + timedelta(seconds=10 * i)), "value": float(i)})
    # the same reading again, as a QoS 1 redelivery would bring it, and in a gateway message
    send(pub, "cim/P1/reading", {"time": iso(now), "value": 0.0})
    send(pub, "cim/gateway/gw1", {"readings": [
        {"sensor": "P1", "time": iso(now), "value": 0.0},
        {"sensor": "P2", "time": now.timestamp(), "value": 1.5, "quality": 1},
        {"sensor": "G1", "time": iso(now), "value": 2.0}]})
    assert wait_for(lambda: count(db, "select count(*) from readings") == 32)
    pub.disconnect()
    assert count(db, "select count(*) from readings r join sensors s on s.object_id = r.sensor_id "
                     "where s.code = 'P1'") == 30
    with db.connect() as c:
        minutes = c.execute(sa.text(
            "select n, vmin, vmax, vsum from readings_1m m join sensors s on s.object_id = m.sensor_id "
            "where s.code = 'P1' order by bucket")).all()
        hour = c.execute(sa.text("select sum(n), sum(vsum) from readings_1h h join sensors s "
                                 "on s.object_id = h.sensor_id where s.code = 'P1'")).one()
        quality = c.scalar(sa.text("select quality from readings r join sensors s on s.object_id = r.sensor_id "
                                   "where s.code = 'P2'"))
    # six readings a minute, values 0..29: duplicates counted once
    assert [tuple(m) for m in minutes] == [(6, 6.0 * k, 6.0 * k + 5, sum(range(6 * k, 6 * k + 6)))
                                           for k in range(5)]
    assert tuple(hour) == (30, float(sum(range(30))))
    assert quality == 1
    assert ingest.stats.dead == 0


MALFORMED = [
    ("cim/P1/reading", b"{not json", "not-json"),
    ("cim/NOPE/reading", {"time": "T", "value": 1.0}, "unknown-sensor"),
    ("cim/P1/reading", b'{"time": "NOW", "value": NaN}', "non-finite"),
    ("cim/P1/reading", b'{"time": "NOW", "value": Infinity}', "non-finite"),
    ("cim/P1/reading", {"time": "NOW", "value": "high"}, "wrong-type"),
    ("cim/P1/reading", {"time": "NOW", "value": True}, "wrong-type"),
    ("cim/P1/reading", {"time": "NOW", "value": 1.0, "quality": "good"}, "wrong-type"),
    ("cim/P1/reading", {"time": "yesterday", "value": 1.0}, "wrong-type"),
    ("cim/P1/reading", {"value": 1.0}, "wrong-type"),
    ("cim/P1/reading", {"time": "2099-01-01T00:00:00+00:00", "value": 1.0}, "time-out-of-range"),
    ("cim/P1/reading", {"time": "2001-01-01T00:00:00+00:00", "value": 1.0}, "time-out-of-range"),
    ("cim/P1/reading", b"[" + b"1," * 200_000 + b"1]", "oversized"),
    ("cim/gateway/gw1", {"readings": "many"}, "wrong-type"),
]


def test_each_malformed_kind_is_a_dead_letter_and_good_readings_flow(db, mosquitto, ingest):
    now = datetime.now(UTC) - timedelta(seconds=30)
    pub = publisher(mosquitto.port)
    for i, (topic, payload, _) in enumerate(MALFORMED):
        if isinstance(payload, dict):
            payload = json.dumps(payload).replace('"NOW"', json.dumps(iso(now))).replace('"T"', json.dumps(iso(now)))
            payload = payload.encode()
        else:
            payload = payload.replace(b'"NOW"', json.dumps(iso(now)).encode())
        send(pub, topic, payload)
        send(pub, "cim/P2/reading", {"time": iso(now + timedelta(seconds=i)), "value": float(i)})
    # one bad reading in a gateway message does not keep its neighbours out
    send(pub, "cim/gateway/gw1", {"readings": [{"sensor": "P1", "time": iso(now), "value": 1.0},
                                               {"sensor": "P1", "time": iso(now), "value": None}]})
    assert wait_for(lambda: count(db, "select count(*) from dead_letters") == len(MALFORMED) + 1), \
        count(db, "select string_agg(reason, ',') from dead_letters")
    assert wait_for(lambda: count(db, "select count(*) from readings") == len(MALFORMED) + 1)
    pub.disconnect()
    with db.connect() as c:
        rows = c.execute(sa.text("select topic, reason, detail, payload from dead_letters order by id")).all()
    assert [(r.topic, r.reason) for r in rows] == [(t, reason) for t, _, reason in MALFORMED] + \
        [("cim/gateway/gw1", "wrong-type")]
    assert all(r.detail for r in rows)
    assert [len(r.payload) for r in rows if r.reason == "oversized"] == [4096]  # kept in part


def test_http_readings_need_a_sensor_writer_and_store_once(db):
    make_sensors(db)
    client = TestClient(create_app())
    now = datetime.now(UTC) - timedelta(seconds=10)
    body = {"readings": [{"sensor": "P1", "time": iso(now), "value": 0.31},
                         {"sensor": "G1", "time": now.timestamp(), "value": 4.0},
                         {"sensor": "ZZ", "time": iso(now), "value": 1.0}]}
    assert client.post("/api/readings", json=body).status_code == 401
    _, operator = create_key("operator", engine=db)
    assert client.post("/api/readings", json=body, headers={"X-API-Key": operator}).status_code == 403
    _, writer = create_key("sensor-writer", engine=db)
    first = client.post("/api/readings", json=body, headers={"X-API-Key": writer})
    assert first.status_code == 200, first.text
    assert first.json() == {"received": 3, "stored": 2,
                            "rejected": [{"reason": "unknown-sensor", "detail": "no sensor with code 'ZZ'"}]}
    again = client.post("/api/readings", json=body, headers={"X-API-Key": writer}).json()
    assert again["stored"] == 0
    assert count(db, "select count(*) from readings") == 2
    assert count(db, "select count(*) from dead_letters where source = 'http'") == 2
    bad = client.post("/api/readings", content=b"{", headers={"X-API-Key": writer}).json()
    assert bad["rejected"][0]["reason"] == "not-json"


def test_sensors_from_csv_and_geojson_bind_to_assets(db, tmp_path):
    make_sensors(db)
    first_id = count(db, "select object_id from sensors where code = 'G1'")
    (tmp_path / "more.csv").write_text("code,kind,period_s,asset,x,y,z,name,vendor\n"
                                       "G1,gas,30,MH-1,,,,manhole gas,acme\n"
                                       f"W1,level,300,,{X + 5},{Y + 5},49,river gauge,\n", encoding="utf-8")
    # G1 belongs to another dataset: refused, nothing written
    with pytest.raises(Exception, match="another dataset"):
        import_file(tmp_path / "more.csv", engine=db)
    (tmp_path / "more.csv").write_text((tmp_path / "more.csv").read_text().replace("G1,", "G2,"))
    found = import_file(tmp_path / "more.csv", engine=db)
    assert set(found) == {"G2", "W1"}
    with db.connect() as c:
        g2 = c.execute(sa.text("select s.kind, s.unit, s.period_s, a.key asset, st_x(s.geom) x, o.class, "
                               "o.attributes->>'vendor' vendor from sensors s join city_objects o on "
                               "o.id = s.object_id join city_objects a on a.id = s.asset_id where code = 'G2'")).one()
    assert tuple(g2) == ("gas", "%LEL", 30.0, "MH-1", X, "sensor", "acme")
    # registered again: updated in place, the same object id (its readings stay its own)
    again = import_file(tmp_path / "more.csv", engine=db)
    assert again == found
    assert count(db, "select object_id from sensors where code = 'G1'") == first_id
    lon, lat = 114.02, 32.98
    (tmp_path / "s.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat, 51.0]},
         "properties": {"code": "T1", "kind": "tilt", "period_s": 60}}]}))
    import_file(tmp_path / "s.geojson", engine=db)
    x, y = Transformer.from_crs("OGC:CRS84", "EPSG:4547", always_xy=True).transform(lon, lat)
    assert count(db, "select count(*) from sensors where code = 'T1' and st_z(geom) = 51 "
                     "and abs(st_x(geom) - :x) < 0.01 and abs(st_y(geom) - :y) < 0.01", x=x, y=y) == 1


def test_old_partitions_are_dropped(db):
    make_sensors(db)
    from services.monitor.messages import Sorted
    from services.monitor.writer import Writer

    old = datetime.now(UTC) - timedelta(days=5)
    sid = count(db, "select object_id from sensors where code = 'P1'")
    Writer(db).write(Sorted(readings=[(sid, old, 1.0, None), (sid, old + timedelta(days=4), 2.0, None)]))
    dropped = drop_old_partitions(db, keep_days=3)
    assert dropped == [f"readings_p{old:%Y%m%d}"]
    assert count(db, "select count(*) from readings") == 1
    assert count(db, "select count(*) from readings_1m") == 2  # rollups stay


def test_sensors_are_a_feature_collection(db):
    make_sensors(db)
    client = TestClient(create_app())
    doc = client.get("/api/collections/sensors/items?filter=kind = 'gas'").json()
    assert [(f["properties"]["class"], f["geometry"]["type"]) for f in doc["features"]] == [("sensor", "Point")], doc
    assert doc["features"][0]["properties"]["code"] == "G1"


def test_retire_stores_what_was_queued_and_ends_the_session(db, mosquitto):
    """A removed instance's session: the readings queued for it while it was stopped are stored by
    `retire`, and the broker then forgets the session (a new connection under its name finds none)."""
    from services.monitor.ingest import retire

    make_sensors(db)
    old = Ingest(db, endpoint(start=False), instance="old")
    t = threading.Thread(target=old.run, kwargs={"report_every": 3600}, daemon=True)
    t.start()
    assert old.subscribed.wait(10)
    old.stop()
    t.join(10)
    pub = publisher(mosquitto.port)
    now = datetime.now(UTC) - timedelta(minutes=1)
    for i in range(20):  # queued for the stopped instance, the group's only member
        send(pub, "cim/P1/reading", {"time": iso(now + timedelta(seconds=i)), "value": float(i)})
    assert count(db, "select count(*) from readings") == 0
    st = retire(db, endpoint(start=False), "old")
    assert (st.messages, st.stored) == (20, 20)
    assert count(db, "select count(*) from readings") == 20
    present: list[bool] = []
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="cim-ingest-cim-old", protocol=mqtt.MQTTv5)
    c.on_connect = lambda cl, u, flags, rc, p: present.append(flags.session_present)
    c.connect("127.0.0.1", mosquitto.port, clean_start=False)
    c.loop_start()
    assert wait_for(lambda: present, timeout=10) == [False]
    c.disconnect()
    c.loop_stop()
    pub.disconnect()


def test_the_subscription_identifier_is_found_among_other_publish_properties():
    """MQTT 5.0, 3.3.2.3: payload format, message expiry, response topic, a user property, then the
    subscription identifier 300 (a two-byte variable integer); none at all gives 0."""
    from services.monitor.mqttwire import string, subscription_id, varint

    props = (b"\x01\x01" + b"\x02\x00\x00\x00\x3c" + b"\x08" + string(b"re/ply") + b"\x26" + string(b"k")
             + string(b"v") + b"\x0b" + varint(300))
    assert subscription_id(props) == 300
    assert subscription_id(b"\x01\x00") == 0
    with pytest.raises(ConnectionError):
        subscription_id(b"\x7f\x00")

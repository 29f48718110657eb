"""The simulator on a hand-made model: sensors placed on the networks, readings published to a real
Mosquitto and stored by the ingest, and a gas leak that raises the gas alarm at its manhole."""
from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from monitor_helpers import count, make_sensors, wait_for
from test_monitor_alarms import water_main

from services.monitor import simulate as sim
from services.monitor.broker import endpoint
from services.monitor.ingest import Ingest


@pytest.fixture
def ingesting(db, mosquitto):
    ing = Ingest(db, endpoint(start=False), instance="sim")
    t = threading.Thread(target=ing.run, kwargs={"report_every": 3600}, daemon=True)
    t.start()
    assert ing.subscribed.wait(10)
    yield ing
    ing.stop()
    t.join(10)


def test_gas_leak_raises_the_alarm_at_its_manhole(db, mosquitto, ingesting):
    make_sensors(db)
    water_main(db)
    placed = sim.place_sensors(db, 6)
    assert {s.kind for s in placed} == {"gas", "pressure"}  # no rain network here
    assert [s.asset for s in placed if s.kind == "gas"] == ["MH-1"]
    out = sim.run(placed, endpoint(start=False), rate=30, duration=8, incident="gas-leak", incident_after=1)
    assert out["incident_asset"] == "MH-1"
    assert wait_for(lambda: count(db, "select count(*) from readings") >= out["published"] - 5)

    def alarm():
        with db.connect() as c:
            return c.execute(sa.text("select a.level, a.rule, a.context from alarms a join sensors s on "
                                     "s.object_id = a.sensor_id where s.code = :c and a.level in ('alarm', 'critical')"),
                             {"c": out["incident_sensor"]}).first()
    found = wait_for(alarm, timeout=10)
    assert found is not None and found.rule == "gas-level"
    assert found.context["asset"]["key"] == "MH-1"
    # the pressure sensors saw nothing but noise
    assert count(db, "select count(*) from alarms a join sensors s on s.object_id = a.sensor_id "
                     "where s.kind = 'pressure'") == 0

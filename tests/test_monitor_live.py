"""The live side against a real uvicorn: the server-sent events stream brings readings, state changes
and alarm events, each only to a caller whose role may see it; sensors with their state; a sensor's
24 h series from the rollups."""
from __future__ import annotations

import signal
import subprocess
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from monitor_helpers import EventReader, make_sensors, start_api, wait_for

from services.auth import create_key


@pytest.fixture
def api(db, cli_env):
    make_sensors(db)
    proc, base = start_api(cli_env)
    yield base
    proc.send_signal(signal.SIGTERM)  # uvicorn waits for open streams: a short grace, then kill
    try:
        proc.wait(3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def test_stream_and_state_by_role(db, api):
    _, writer = create_key("sensor-writer", engine=db)
    _, operator = create_key("operator", engine=db)
    staff = EventReader(f"{api}/api/monitor/stream", {"X-API-Key": operator})
    public = EventReader(f"{api}/api/monitor/stream?")
    t0 = datetime.now(UTC) - timedelta(seconds=30)
    for i, v in enumerate([30.0, 31.0]):  # G1 on manhole MH-1 (a restricted layer): gas alarm
        r = httpx.post(f"{api}/api/readings", headers={"X-API-Key": writer}, json={"readings": [
            {"sensor": "G1", "time": (t0 + timedelta(seconds=i)).isoformat(), "value": v},
            {"sensor": "P1", "time": (t0 + timedelta(seconds=i)).isoformat(), "value": 0.3}]})
        assert r.json()["stored"] == 2
    assert wait_for(lambda: any(k == "alarm" for k, _ in staff.events), timeout=10)
    alarm = next(d for k, d in staff.events if k == "alarm")
    assert (alarm["event"], alarm["sensor"], alarm["level"], alarm["rule"]) == ("raised", "G1", "alarm", "gas-level")
    # the state event is sent in the same commit, after the alarm's: the reader may not have it yet
    assert wait_for(lambda: any(k == "state" and d["sensor"] == "G1" and d["state"] == "alarm"
                                for k, d in staff.events), timeout=5)
    staff_readings = {i[0] for k, d in staff.events if k == "readings" for i in d["items"]}
    assert staff_readings == {"G1", "P1"}
    wait_for(lambda: len([k for k, _ in public.events if k == "readings"]) >= 2, timeout=5)
    # the public sees P1 (no restricted asset) but nothing of G1, and no alarm events
    assert {i[0] for k, d in public.events if k == "readings" for i in d["items"]} == {"P1"}
    assert all(k != "alarm" and d.get("sensor") != "G1" for k, d in public.events)

    seen = {s["code"]: s["state"] for s in httpx.get(f"{api}/api/monitor/sensors",
                                                      headers={"X-API-Key": operator}).json()["sensors"]}
    assert seen["G1"] == "alarm" and seen["P1"] == "normal"
    assert "G1" not in {s["code"] for s in httpx.get(f"{api}/api/monitor/sensors").json()["sensors"]}
    series = httpx.get(f"{api}/api/monitor/sensors/G1/series", headers={"X-API-Key": operator}).json()
    assert series["bucket"] == "1m" and sum(p["n"] for p in series["points"]) == 2
    assert max(p["max"] for p in series["points"]) == 31.0
    assert httpx.get(f"{api}/api/monitor/sensors/G1/series").status_code == 404

"""A run's findings, filtered, from `cim qa --run` and GET /api/runs/{run}/findings, on the hand-made street
of underground_fixture.py (its drawn violations are known: test_underground_clearances.py)."""
from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from test_underground_api import cim
from underground_fixture import street

from analyses.underground import clearances
from cim_core.errors import NotFoundError
from cim_core.findings import run_findings
from services import auth
from services.app import create_app


def _count(engine, run_id: int, where: str = "true") -> int:
    with engine.connect() as c:
        return c.scalar(sa.text(f"select count(*) from qa_findings f where run_id = :r and {where}"), {"r": run_id})


def test_run_findings_filter_by_rule_severity_utility_and_box(db):
    street(db)
    run = clearances.check(engine=db)["run_id"]
    matched, every = run_findings(run, engine=db)
    assert matched == len(every) == _count(db, run)
    n, clash = run_findings(run, rule="clash_3d", engine=db)
    assert n == 1 and (clash[0]["object_key"], clash[0]["related_key"]) == ("S1", "T1")
    assert clash[0]["details"]["measured_m"] == -0.15 and sorted(clash[0]["utilities"]) == ["sewage", "telecom"]
    n, warn = run_findings(run, severity="warning", engine=db)
    assert n == _count(db, run, "severity = 'warning'") == 4
    n, gas = run_findings(run, utility="gas", engine=db)
    assert n >= 1 and all("gas" in f["utilities"] for f in gas)
    assert ("vertical_clearance", "W1", "G1") in {(f["rule"], f["object_key"], f["related_key"]) for f in gas}
    x, y = clash[0]["x"], clash[0]["y"]
    n, boxed = run_findings(run, bbox=(x - 0.01, y - 0.01, x + 0.01, y + 0.01), engine=db)
    assert clash[0]["id"] in {f["id"] for f in boxed} and n == _count(
        db, run, f"st_dwithin(geom, st_setsrid(st_makepoint({x}, {y}), 4547), 0.01 * sqrt(2))")
    assert run_findings(run, limit=2, offset=1, engine=db)[1] == every[1:3]
    with pytest.raises(NotFoundError):
        run_findings(run + 100, engine=db)


def test_findings_over_http_with_access_control(db):
    street(db)
    run = clearances.check(engine=db)["run_id"]
    url = f"/api/runs/{run}/findings"
    with TestClient(create_app()) as c:
        assert c.get(url, params={"rule": "clash_3d"}).status_code == 401
        _, water = auth.create_key("water", engine=db)
        assert c.get(url, params={"rule": "clash_3d"}, headers={"X-API-Key": water}).status_code == 403
        _, key = auth.create_key("utilities", engine=db)
        h = {"X-API-Key": key}
        doc = c.get(url, params={"rule": "clash_3d"}, headers=h).json()
        assert doc["numberMatched"] == doc["numberReturned"] == 1
        f = doc["features"][0]
        assert (f["properties"]["object_key"], f["properties"]["related_key"]) == ("S1", "T1")
        lon, lat = f["geometry"]["coordinates"]
        assert 113 < lon < 115 and 32 < lat < 34  # the street lies in Zhumadian (EPSG:4547 around 114E)
        boxed = c.get(url, params={"bbox": f"{lon - 1e-6},{lat - 1e-6},{lon + 1e-6},{lat + 1e-6}"}, headers=h).json()
        assert f["id"] in [g["id"] for g in boxed["features"]]
        every = c.get(url, headers=h).json()
        assert every["numberMatched"] == _count(db, run)
        warn = c.get(url, params={"severity": "warning", "utility": "sewage"}, headers=h).json()
        assert {g["properties"]["rule"] for g in warn["features"]} == {"horizontal_clearance", "building_clearance"}
        for params in ({"severity": "bad"}, {"bbox": "1,2,3"}, {"limit": 0}):
            r = c.get(url, params=params, headers=h)
            assert 400 <= r.status_code < 500 and r.headers["content-type"].startswith("application/problem+json")
        assert c.get(f"/api/runs/{run + 100}/findings", headers=h).status_code == 404


def test_cim_qa_lists_a_runs_findings(db, cli_env):
    street(db)
    run = clearances.check(engine=db)["run_id"]
    r = cim(cli_env, "qa", "--run", str(run), "--rule", "clash_3d", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["matched"] == 1 and doc["findings"][0]["object_key"] == "S1"
    r = cim(cli_env, "qa", "--run", str(run), "--severity", "warning")
    assert r.returncode == 0 and "4 finding(s)" in r.stdout and "B1" in r.stdout and "1.35 / 2.5" in r.stdout
    r = cim(cli_env, "qa", "--run", str(run), "--bbox", "1,2,3")
    assert r.returncode != 0 and "--bbox" in (r.stderr + r.stdout) and len((r.stderr + r.stdout).strip().splitlines()) == 1
    r = cim(cli_env, "qa")
    assert r.returncode != 0 and "--run" in r.stderr + r.stdout

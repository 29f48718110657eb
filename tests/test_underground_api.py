"""The underground analyses over HTTP (OGC API - Processes, driven by OWSLib against a real server) and
from the `cim` command, on the hand-made street of underground_fixture.py."""
from __future__ import annotations

import json
import subprocess
import sys

import sqlalchemy as sa
from fastapi.testclient import TestClient
from owslib.ogcapi.processes import Processes
from test_api_clients import server  # noqa: F401  (a real uvicorn process on the test database)
from test_underground_excavation import PIT, check_street_pit, polygon
from underground_fixture import street

from services import auth
from services.app import create_app

BOWTIE = {"type": "Polygon", "coordinates": [[[501800, 3649500], [501810, 3649510], [501810, 3649500],
                                              [501800, 3649510], [501800, 3649500]]]}


def runs(engine) -> int:
    with engine.connect() as c:
        return c.scalar(sa.text("select count(*) from analysis_runs"))


def test_owslib_runs_the_underground_processes(db, server):  # noqa: F811
    street(db)
    _, key = auth.create_key("utilities", engine=db)
    client = Processes(f"{server}/api", headers={"X-API-Key": key})
    ids = [p["id"] for p in client.processes()]
    assert {"underground-excavation", "underground-clearances"} <= set(ids)
    assert client.process("underground-excavation")["inputs"]["depth"]["schema"]["type"] == "number"
    out = client.execute("underground-excavation", {"polygon": polygon(PIT), "depth": 2.0})
    check_street_pit(out)
    out = client.execute("underground-clearances", {"dataset": "street-pipes"})
    # the server's own test buildings stand near the street too: only B1 is counted here for certain
    assert {k: v for k, v in out["findings"].items() if k not in ("no_rule", "building_clearance")} == {
        "clash_3d": 1, "cover": 1, "horizontal_clearance": 1, "vertical_clearance": 1}
    with db.connect() as c:
        near_b1 = c.scalar(sa.text("select count(*) from qa_findings f join city_objects b on b.id = f.related_id "
                                   "where f.run_id = :r and b.key = 'B1' and f.rule = 'building_clearance'"),
                           {"r": out["run_id"]})
    assert near_b1 == 1 and out["findings"]["building_clearance"] >= 1


def test_access_and_bad_input_over_http(db):
    street(db)
    with TestClient(create_app()) as c:
        url = "/api/processes/underground-excavation/execution"
        body = {"inputs": {"polygon": polygon(PIT), "depth": 2.0}}
        assert c.post(url, json=body).status_code == 401
        _, water = auth.create_key("water", engine=db)
        assert c.post(url, json=body, headers={"X-API-Key": water}).status_code == 403
        _, key = auth.create_key("utilities", engine=db)
        h = {"X-API-Key": key}
        for inputs, words in (({"polygon": BOWTIE, "depth": 2}, "polygon: not a simple polygon"),
                              ({"polygon": polygon(PIT), "depth": 101}, "depth: 101 m is out of range"),
                              ({"polygon": polygon(PIT), "depth": -1}, "depth: -1 m is out of range"),
                              ({"polygon": polygon(PIT), "depth": 2, "crs": "EPSG:4326"}, "outside")):
            r = c.post(url, json={"inputs": inputs}, headers=h)
            assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")
            assert words in r.json()["detail"], r.text
        assert runs(db) == 0
        r = c.post("/api/processes/underground-clearances/execution", json={"inputs": {"bbox": [1, 2, 3]}},
                   headers=h)
        assert r.status_code == 400


def cim(env, *args):
    return subprocess.run([sys.executable, "-m", "services.cli", *args], capture_output=True, text=True,
                          env={**env, "COLUMNS": "200"}, check=False, timeout=300)


def test_cli(db, cli_env, tmp_path):
    street(db)
    pit = tmp_path / "pit.geojson"
    pit.write_text(json.dumps({"type": "Feature", "geometry": polygon(PIT), "properties": {}}))
    r = cim(cli_env, "analyse", "excavation", str(pit), "--depth", "2", "--json")
    assert r.returncode == 0, r.stderr
    check_street_pit(json.loads(r.stdout))
    r = cim(cli_env, "analyse", "excavation", str(pit), "--depth", "2")
    assert r.returncode == 0 and "water: conflict" in r.stdout and "200.0 m3" in r.stdout
    r = cim(cli_env, "analyse", "excavation", json.dumps(BOWTIE), "--depth", "2")
    assert r.returncode != 0 and "polygon: not a simple polygon" in r.stderr + r.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("table,utility_a,class_a,utility_b,class_b,min_m,confidence,source\n"
                   "4.1.9 horizontal,sewage,,water,,-0.5,local,x\n")
    r = cim(cli_env, "rules", "load", str(bad))
    out = (r.stderr + r.stdout).strip()
    assert r.returncode != 0 and len(out.splitlines()) == 1 and "bad.csv line 2: min_m -0.5" in out
    good = tmp_path / "city.csv"
    good.write_text(bad.read_text().replace("-0.5", "1.6"))
    r = cim(cli_env, "rules", "load", str(good))
    assert r.returncode == 0 and "1 rules loaded from city.csv" in r.stdout
    r = cim(cli_env, "analyse", "clearances", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["findings"]["horizontal_clearance"] == 1  # S1/W1: 1.15 m against 1.6 m
    assert "excavation" in cim(cli_env, "analyse", "--help").stdout

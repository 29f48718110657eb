"""Design storms: the Chicago hyetograph against the intensity formula, and a storm run over a small rain
network whose first pipe is far too small for the parcel that drains to it.

    4 ha residential parcel -> R1 (58) -r1 200 mm-> R2 (57.5) -r2 200 mm-> OUT (57, outfall); ground 60 m

The parcel's peak runoff (about 4 ha x 65 % x 100 mm/h = 0.7 m3/s) is thirty times what a 200 mm pipe at
0.5 % carries full (Manning, n = 0.013: 0.023 m3/s): R1 floods, r1 runs over capacity.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
import sqlalchemy as sa

from analyses.drainage import storm
from cim_core.errors import InputError
from cim_core.network import subcatchments
from cim_core.model import CityObject, DatasetInfo, PipeNode, PipeSegment
from cim_core.store import write_dataset

X0, Y0, GROUND = 501800.0, 3649500.0, 60.0
FORMULA = {"A1": 18.40, "C": 0.892, "b": 15.1, "n": 0.824}


def test_chicago_hyetograph_matches_the_formula():
    i = storm.chicago(3, 120, FORMULA, 0.4, 1.0)
    assert len(i) == 120
    a = 18.40 * (1 + 0.892 * math.log10(3))
    total = a * 120 / (120 + 15.1) ** 0.824  # mm: the formula's depth over the whole duration
    assert i.sum() / 60 == pytest.approx(total, rel=1e-9)
    assert int(np.argmax(i)) in (47, 48)  # the peak at 0.4 x 120 min
    # the wettest 10 minutes around the peak hold the formula's 10-minute depth
    assert np.sort(i)[-10:].sum() / 60 == pytest.approx(a * 10 / (10 + 15.1) ** 0.824, rel=0.02)
    for p, d in ((-1, 60), (3, 0), (3, -5)):
        with pytest.raises(InputError, match="positive return period and duration"):
            storm.chicago(p, d, FORMULA, 0.4)


@pytest.fixture
def low_area(db):
    nodes = {"R1": (0, 58.0, "manhole"), "R2": (100, 57.5, "manhole"), "OUT": (200, 57.0, "outlet")}
    objs = [CityObject(k, "pipe_node", node=PipeNode("rain", t, (X0 + x, Y0, GROUND), depth=GROUND - inv,
                                                     ground_z=GROUND, invert_z=inv))
            for k, (x, inv, t) in nodes.items()]
    for k, a, b in (("r1", "R1", "R2"), ("r2", "R2", "OUT")):
        (xa, ia, _), (xb, ib, _) = nodes[a], nodes[b]
        objs.append(CityObject(k, "pipe_segment", pipe=PipeSegment(
            "rain", np.array([[X0 + xa, Y0, ia], [X0 + xb, Y0, ib]]), diameter_mm=200, start_invert=ia,
            end_invert=ib, from_node=a, to_node=b)))
    write_dataset(DatasetInfo("rain-net", "pipes", "rain.gpkg", "r"), objs, engine=db)
    write_dataset(DatasetInfo("parcels", "gis", "landuse.gpkg", "p"), [
        CityObject("p1", "landuse", footprint=shapely.box(X0 - 210, Y0 - 100, X0 - 10, Y0 + 100),
                   attributes={"landuse": "residential"})], engine=db)
    return db


def test_storm_run_floods_the_undersized_start(low_area, tmp_path):
    out = storm.run("rain-net", return_period=3, duration_min=120, engine=low_area, keep=tmp_path)
    assert out["subcatchments"] == 1 and out["nodes"] == 3 and out["conduits"] == 2
    assert "S" in (tmp_path / "rain-net-storm-P3-120min.inp").read_text()
    with low_area.connect() as c:
        res = {k: r for k, *r in c.execute(sa.text("""
            select o.key, r.kind, r.flooding_m3, r.peak_flow_m3s, r.capacity_ratio from drainage_storm_results r
            join city_objects o on o.id = r.object_id where r.run_id = :r"""), {"r": out["run_id"]})}
        flooded = c.execute(sa.text("select o.key, f.details from qa_findings f join city_objects o "
                                    "on o.id = f.object_id where f.run_id = :r and f.rule = 'flooding' "
                                    "order by (f.details ->> 'flooding_m3')::float desc"),
                            {"r": out["run_id"]}).all()
        rules = c.scalar(sa.text("select rules from analysis_runs where id = :r"), {"r": out["run_id"]})
    assert set(res) == {"R1", "R2", "OUT", "r1", "r2"}
    assert flooded[0][0] == "R1" and flooded[0][1]["flooding_m3"] > 100
    assert res["R1"][1] == pytest.approx(flooded[0][1]["flooding_m3"])
    # r1 runs full and under pressure: more than its Manning full flow, and the ratio says by how much
    full = 1 / 0.013 * math.pi * 0.2 ** 2 / 4 * 0.05 ** (2 / 3) * math.sqrt(0.5 / math.hypot(100, 0.5))
    assert full == pytest.approx(0.0232, rel=0.01)
    assert res["r1"][2] > full and res["r1"][3] == pytest.approx(res["r1"][2] / full, rel=1e-3)
    assert out["flooding_points"] == len(flooded) and "placeholder" in rules["formula"]["source"]
    # waterlogging points: the manholes whose flooding stands over 0.15 m deep on the ponding area, no others
    w = rules["waterlogging"]
    assert w["depth_m"] == 0.15 and "GB 50014" in w["source"] and w["confirmed"] is False
    limit = storm.waterlogging_m3(storm.config())
    assert limit == pytest.approx(w["depth_m"] * w["ponding_area_m2"])
    assert {k for k, _ in flooded} == {k for k, r in res.items() if r[0] == "node" and r[1] > limit}
    assert flooded[0][1]["ponding_depth_m"] == pytest.approx(flooded[0][1]["flooding_m3"] / w["ponding_area_m2"])


def test_parcels_split_to_their_nearest_inlet():
    """Two inlets 100 m apart under one 200 m x 100 m parcel: it drains in two halves, the cut halfway
    between them; a third inlet farther than the reach from a second parcel leaves that one undrained, and a
    parcel within reach of only part of it drains that part."""
    parcels = np.array([shapely.box(0, 0, 200, 100), shapely.box(1000, 0, 1100, 100), shapely.box(-100, 0, 0, 100)])
    inlets = np.array([[50, 50], [150, 50], [150, 50], [700, 50]])
    got = subcatchments.split(parcels, inlets, reach_m=300)
    pieces = sorted(zip(got.parcel.tolist(), got.inlet.tolist(), got.area.round(6).tolist()))
    assert pieces == [(0, 0, 10000.0), (0, 1, 10000.0), (2, 0, 10000.0)]  # parcel 1 is 300 m past inlet 3
    near = subcatchments.split(parcels[2:], inlets[:1], reach_m=100)  # a 100 m disc around (50, 50)
    assert near.parcel.tolist() == [0] and 0 < near.area[0] < 10000
    assert near.area[0] == pytest.approx(shapely.area(shapely.box(-100, 0, 0, 100) & shapely.Point(50, 50).buffer(100)),
                                         rel=0.01)  # the disc as polygons of 32 sides


def test_storm_errors(low_area):
    with pytest.raises(InputError, match="positive"):
        storm.run("rain-net", return_period=-3, duration_min=120, engine=low_area)
    with low_area.begin() as c:
        c.execute(sa.text("update pipe_nodes set node_type = 'manhole'"))
    with pytest.raises(InputError, match="no outfall"):
        storm.run("rain-net", return_period=3, duration_min=120, engine=low_area)


def test_cli_and_process(low_area, cli_env, tmp_path):
    import subprocess
    from pathlib import Path

    from fastapi.testclient import TestClient

    from services import auth
    from services.app import create_app

    root = Path(__file__).parent.parent

    def cim(*args):
        return subprocess.run([str(root / ".venv/bin/python"), "-m", "services.cli", *args], capture_output=True,
                              text=True, cwd=root, env={**cli_env, "PYTHONPATH": str(root), "COLUMNS": "200"},
                              check=False)

    r = cim("export", "swmm", "rain-net", str(tmp_path / "net.inp"))
    assert r.returncode == 0, r.stderr
    assert "[CONDUITS]" in (tmp_path / "net.inp").read_text()
    r = cim("analyse", "storm", "--dataset", "rain-net", "--return-period", "3", "--duration", "120")
    assert r.returncode == 0 and "1 flooding manholes" in r.stdout, r.stdout + r.stderr
    r = cim("analyse", "storm", "--dataset", "rain-net", "--return-period", "3", "--duration", "-5")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "positive" in r.stderr
    _, key = auth.create_key("utilities", engine=low_area)
    with TestClient(create_app()) as c:
        url = "/api/processes/drainage-storm/execution"
        r = c.post(url, json={"inputs": {"dataset": "rain-net", "return_period": 3, "duration_min": -5}},
                   headers={"X-API-Key": key})
        assert r.status_code == 400 and "duration_min" in r.json()["detail"]
        r = c.post(url, json={"inputs": {"dataset": "rain-net", "return_period": 3, "duration_min": 60}},
                   headers={"X-API-Key": key})
        assert r.status_code == 200 and r.json()["run"]["flooding_points"] >= 1, r.text
        assert len(r.json()["flooded"]) == r.json()["run"]["flooding_points"]

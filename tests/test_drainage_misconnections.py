"""Misconnection rules on a hand-made network with one planted case per rule and a clean rest; each
expected finding is worked out here from the drawing below (inverts in brackets).

    combined:  C0 -c1-> C1 -c2-> COUT        stored separated area over c1; an area given to the run over c2

    rain:      R1 (10) -r1-> R2 (9.5) -r2-> ROUT (8, outfall)
                             ^ sx: a sewage pipe from SB (9.9) into the rain node R2
    sewage:           RA (9.8, rain) -rx-> S2: a rain pipe into the sewage network
               S1 (10) -s1-> S2 (9.5) -s2-> S3 (9.0) -s3-> SOUT (8, outfall)
                                              ^ sl from SC (130, 10), 400 mm: joins against the flow
s3 leaves S3 at 9.2, 0.2 m above s2's invert there: a step-up. sl arrives at 9.25, below s3: no step-up.
"""
from __future__ import annotations

import numpy as np
import pytest
import shapely
import sqlalchemy as sa

from analyses.drainage import misconnections
from cim_core.errors import InputError
from cim_core.model import CityObject, DatasetInfo, PipeNode, PipeSegment
from cim_core.store import write_dataset

X0, Y0, GROUND = 501800.0, 3649500.0, 60.0
NODES = {  # key: (x, y, invert, utility, type)
    "S1": (0, 0, 10.0, "sewage", "manhole"), "S2": (50, 0, 9.5, "sewage", "manhole"),
    "S3": (100, 0, 9.0, "sewage", "manhole"), "SOUT": (150, 0, 8.0, "sewage", "outlet"),
    "SC": (130, 10, 9.5, "sewage", "manhole"), "RA": (50, 30, 9.8, "rain", "manhole"),
    "R1": (0, 100, 10.0, "rain", "manhole"), "R2": (50, 100, 9.5, "rain", "manhole"),
    "ROUT": (100, 100, 8.0, "rain", "outlet"), "SB": (50, 130, 9.9, "sewage", "manhole"),
    "C0": (0, 200, 10.0, "combined", "manhole"), "C1": (50, 200, 9.5, "combined", "manhole"),
    "COUT": (100, 200, 9.0, "combined", "outlet"),
}
SEGMENTS = {  # key: (from, to, start invert, end invert, utility, diameter)
    "s1": ("S1", "S2", 10.0, 9.5, "sewage", 400), "s2": ("S2", "S3", 9.5, 9.0, "sewage", 400),
    "s3": ("S3", "SOUT", 9.2, 8.0, "sewage", 500), "sl": ("SC", "S3", 9.5, 9.25, "sewage", 400),
    "rx": ("RA", "S2", 9.8, 9.5, "rain", 300), "r1": ("R1", "R2", 10.0, 9.5, "rain", 600),
    "r2": ("R2", "ROUT", 9.5, 8.0, "rain", 600), "sx": ("SB", "R2", 9.9, 9.5, "sewage", 300),
    "c1": ("C0", "C1", 10.0, 9.5, "combined", 800), "c2": ("C1", "COUT", 9.5, 9.0, "combined", 800),
}


def xy(key):
    return X0 + NODES[key][0], Y0 + NODES[key][1]


def box(x0, y0, x1, y1):
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


@pytest.fixture
def planted(db):
    objs = [CityObject(k, "pipe_node", node=PipeNode(u, t, (*xy(k), GROUND), depth=GROUND - inv, ground_z=GROUND,
                                                     invert_z=inv))
            for k, (_, _, inv, u, t) in NODES.items()]
    objs += [CityObject(k, "pipe_segment", pipe=PipeSegment(u, np.array([[*xy(a), ia], [*xy(b), ib]]), diameter_mm=d,
                                                           start_invert=ia, end_invert=ib, from_node=a, to_node=b))
             for k, (a, b, ia, ib, u, d) in SEGMENTS.items()]
    write_dataset(DatasetInfo("drains", "pipes", "drains.gpkg", "d"), objs, engine=db)
    write_dataset(DatasetInfo("areas", "gis", "areas.gpkg", "a"), [
        CityObject("road-6", "landuse", name="解放大道分流区", footprint=box(-10, 190, 40, 210),
                   attributes={"drainage_system": "separated"}),
        CityObject("other", "landuse", footprint=box(60, 190, 140, 210), attributes={"drainage_system": "combined"})],
        engine=db)
    return db


def key_of(engine) -> dict[int, str]:
    with engine.connect() as c:
        return dict(c.execute(sa.text("select id, key from city_objects")).all())


def test_each_planted_misconnection_is_found_and_nothing_else(planted):
    area = {"name": "new separation", "geometry": shapely.geometry.mapping(box(80, 190, 120, 210))}
    out = misconnections.check("drains", areas=[area], engine=planted)
    assert out["findings"] == {"rain_into_sewage": 1, "sewage_into_rain": 1, "sewage_to_rain_outfall": 1,
                               "combined_in_separated_area": 2, "lateral_against_flow": 1, "step_up": 1}
    k = key_of(planted)
    with planted.connect() as c:
        rows = c.execute(sa.text("select rule, object_id, related_id, details from qa_findings where run_id = :r"),
                         {"r": out["run_id"]}).all()
    got = {(r, k[o], k.get(rel)) for r, o, rel, _ in rows}
    assert got == {("rain_into_sewage", "rx", "s2"), ("sewage_into_rain", "sx", "r2"),
                   ("sewage_to_rain_outfall", "ROUT", "sx"), ("combined_in_separated_area", "c1", "road-6"),
                   ("combined_in_separated_area", "c2", None), ("lateral_against_flow", "sl", "s3"),
                   ("step_up", "s3", "s2")}
    details = {(r, k[o]): d for r, o, _, d in rows}
    assert details[("step_up", "s3")]["rise_m"] == pytest.approx(0.2)
    # sl comes in from (130, 10) towards (100, 0) and s3 leaves towards +x: a turn of 180° - atan(10/30)
    assert details[("lateral_against_flow", "sl")]["turn_deg"] == pytest.approx(180 - np.degrees(np.arctan(1 / 3)),
                                                                                abs=0.1)
    assert "GB 50014" in details[("step_up", "s3")]["source"]


def test_bad_area_is_an_input_error(planted):
    with pytest.raises(InputError, match=r"areas\[0\]"):
        misconnections.check("drains", areas=[{"name": "x"}], engine=planted)


def test_cli_and_process(planted, cli_env, tmp_path):
    import json
    import subprocess
    from pathlib import Path

    from fastapi.testclient import TestClient

    from services import auth
    from services.app import create_app

    root = Path(__file__).parent.parent
    areas = tmp_path / "six_roads.geojson"
    areas.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "new separation"},
         "geometry": shapely.geometry.mapping(box(80, 190, 120, 210))}]}))
    r = subprocess.run([str(root / ".venv/bin/python"), "-m", "services.cli", "drainage", "misconnections",
                        "--dataset", "drains", "--area", str(areas)], capture_output=True, text=True, cwd=root,
                       env={**cli_env, "PYTHONPATH": str(root), "COLUMNS": "200"}, check=False)
    assert r.returncode == 0, r.stderr
    assert "combined_in_separated_area │ 2" in r.stdout
    _, key = auth.create_key("utilities", engine=planted)
    with TestClient(create_app()) as c:
        r = c.post("/api/processes/drainage-misconnections/execution", json={"inputs": {"dataset": "drains"}},
                   headers={"X-API-Key": key})
        assert r.status_code == 200, r.text
        assert r.json()["run"]["findings"]["combined_in_separated_area"] == 1  # the stored area only
        assert "GB 50014" in r.json()["rules"]["step_up"]["source"]
        assert len(r.json()["objects"]) == 6 and {o["rule"] for o in r.json()["objects"]} >= {"step_up"}

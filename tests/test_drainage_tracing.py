"""Drainage tracing on a hand-made network whose answers are worked out here from the drawing below.

    rain (inverts in brackets; OUT1 an outfall):              sewage:               water:
            R4 (9.5)                                         S1 (10) -> S2 (9) ->   W1 --- W2
             | r4 (recorded R2 -> R4, uphill)                S3 (8, outfall)
    R1 (10) -r1-> R2 (9) -r2-> R3 (8) -r3-> OUT1 (7)
                   | r8             ^ r5                     R6 (6) -r6- R7 (6): flat, recorded
                  R9 (8.7)         R5 (8.5)                  R6 -> R7, no outfall

r4 is recorded from R2 to R4, but R4 lies higher: rain flows R4 -> R2. R2 splits: r2 to R3, r8 to R9, where
the flow stops (R9 is no outfall and has no lower pipe). Buildings: B1 next to R1 and parcel P1 next to
R5 drain into R3's catchment; B2 next to OUT1 and B3 next to R9 lie outside it.
"""
from __future__ import annotations

import numpy as np
import pytest
import shapely
import sqlalchemy as sa

from analyses.drainage import tracing
from cim_core.errors import InputError, NotFoundError
from cim_core.model import CityObject, DatasetInfo, PipeNode, PipeSegment
from cim_core.store import write_dataset

X0, Y0, GROUND = 501800.0, 3649500.0, 60.0
NODES = {  # key: (x, y, invert, utility, type)
    "R1": (0, 0, 10.0, "rain", "manhole"), "R2": (50, 0, 9.0, "rain", "manhole"),
    "R3": (100, 0, 8.0, "rain", "manhole"), "OUT1": (150, 0, 7.0, "rain", "outlet"),
    "R4": (50, 50, 9.5, "rain", "manhole"), "R5": (100, -50, 8.5, "rain", "manhole"),
    "R9": (50, -50, 8.7, "rain", "manhole"), "R6": (0, 200, 6.0, "rain", "manhole"),
    "R7": (50, 200, 6.0, "rain", "manhole"), "S1": (0, 100, 10.0, "sewage", "manhole"),
    "S2": (50, 100, 9.0, "sewage", "manhole"), "S3": (100, 100, 8.0, "sewage", "outlet"),
    "W1": (0, 300, 1.0, "water", "valve"), "W2": (50, 300, 2.0, "water", "valve"),
}
SEGMENTS = {  # key: (from, to, utility); inverts are the nodes'
    "r1": ("R1", "R2", "rain"), "r2": ("R2", "R3", "rain"), "r3": ("R3", "OUT1", "rain"),
    "r4": ("R2", "R4", "rain"), "r5": ("R5", "R3", "rain"), "r8": ("R2", "R9", "rain"),
    "r6": ("R6", "R7", "rain"), "s1": ("S1", "S2", "sewage"), "s2": ("S2", "S3", "sewage"),
    "w1": ("W1", "W2", "water"),
}
AREAS = {"B1": ("building", -20, 10), "B2": ("building", 170, 10), "B3": ("building", 60, -60),
         "P1": ("landuse", 120, -70)}


def xy(key):
    return X0 + NODES[key][0], Y0 + NODES[key][1]


def network_objects() -> list[CityObject]:
    objs = [CityObject(k, "pipe_node", node=PipeNode(u, t, (*xy(k), GROUND), depth=GROUND - inv, ground_z=GROUND,
                                                     invert_z=inv))
            for k, (_, _, inv, u, t) in NODES.items()]
    for k, (a, b, u) in SEGMENTS.items():
        ia, ib = NODES[a][2], NODES[b][2]
        objs.append(CityObject(k, "pipe_segment", pipe=PipeSegment(
            u, np.array([[*xy(a), ia], [*xy(b), ib]]), diameter_mm=400, start_invert=ia, end_invert=ib,
            from_node=a, to_node=b)))
    return objs


def area_objects() -> list[CityObject]:
    return [CityObject(k, cls, footprint=shapely.box(X0 + x - 5, Y0 + y - 5, X0 + x + 5, Y0 + y + 5),
                       attributes={"landuse": "residential"} if cls == "landuse" else {})
            for k, (cls, x, y) in AREAS.items()]


@pytest.fixture
def drains(db):
    write_dataset(DatasetInfo("drains", "pipes", "drains.gpkg", "d"), network_objects(), engine=db)
    write_dataset(DatasetInfo("areas", "gis", "areas.gpkg", "a"), area_objects(), engine=db)
    return db


def ids(engine, keys, dataset="drains") -> set[int]:
    with engine.connect() as c:
        return set(c.scalars(sa.text("select o.id from city_objects o join datasets d on d.id = o.dataset_id "
                                     "where d.name = :d and o.key = any(:k)"), {"d": dataset, "k": list(keys)}))


def length(*segments) -> float:
    return sum(float(np.hypot(np.hypot(*(np.subtract(xy(SEGMENTS[s][0]), xy(SEGMENTS[s][1])))),
                              NODES[SEGMENTS[s][0]][2] - NODES[SEGMENTS[s][1]][2])) for s in segments)


def test_trace_from_a_manhole(drains):
    t = tracing.trace(node="R1", direction="down", engine=drains)
    assert t.upstream is None
    assert set(t.downstream.nodes) == ids(drains, ["R1", "R2", "R3", "OUT1", "R9"])
    assert set(t.downstream.segments) == ids(drains, ["r1", "r2", "r3", "r8"])
    assert t.downstream.length_m == pytest.approx(length("r1", "r2", "r3", "r8"))
    assert set(t.outfalls) == ids(drains, ["OUT1"])
    t = tracing.trace(node="R3", direction="up", engine=drains)
    assert set(t.upstream.nodes) == ids(drains, ["R3", "R2", "R1", "R4", "R5"])
    assert set(t.upstream.segments) == ids(drains, ["r1", "r2", "r4", "r5"])
    # the stored from/to decides on flat pipes: R7 lies downstream of R6, not the reverse
    t = tracing.trace(node="R6", engine=drains)
    assert set(t.downstream.nodes) == ids(drains, ["R6", "R7"]) and t.upstream.nodes == list(ids(drains, ["R6"]))
    assert t.outfalls == []


def test_trace_from_a_segment_and_a_point(drains):
    (r2,) = ids(drains, ["r2"])
    t = tracing.trace(segment=r2, engine=drains)
    assert t.start == {"kind": "segment", "id": r2, "key": "r2"}
    assert set(t.upstream.segments) == ids(drains, ["r1", "r2", "r4"])
    assert set(t.upstream.nodes) == ids(drains, ["R2", "R1", "R4"])
    assert set(t.downstream.segments) == ids(drains, ["r2", "r3"])
    assert set(t.downstream.nodes) == ids(drains, ["R3", "OUT1"])
    # a click 1 m beside r2, 25 m from the nearest manhole, picks the pipe; one beside R3 the manhole
    assert tracing.trace(point=(X0 + 75, Y0 + 1), engine=drains).start["key"] == "r2"
    assert tracing.trace(point=(X0 + 100.5, Y0 + 0.5), engine=drains).start["key"] == "R3"


def test_trace_errors(drains):
    with pytest.raises(NotFoundError, match="no drainage node 'W1'"):
        tracing.trace(node="W1", engine=drains)
    with pytest.raises(NotFoundError, match="no drainage segment 'nope'"):
        tracing.trace(segment="nope", engine=drains)
    with pytest.raises(InputError, match="exactly one start"):
        tracing.trace(node="R1", segment="r1", engine=drains)
    with pytest.raises(InputError, match="direction"):
        tracing.trace(node="R1", direction="sideways", engine=drains)


def test_catchment_of_a_manhole(drains):
    c = tracing.catchment("R3", engine=drains)
    assert set(c["segments"]) == ids(drains, ["r1", "r2", "r4", "r5"])
    assert set(c["buildings"]) == ids(drains, ["B1"], "areas")
    assert set(c["parcels"]) == ids(drains, ["P1"], "areas")
    assert c["area_m2"] == pytest.approx(100.0)


def test_outfalls_and_pieces_without_one(drains):
    out = tracing.outfall_check(engine=drains)
    assert set(out["outfall_ids"]) == ids(drains, ["OUT1", "S3"])
    assert (out["pieces"], out["pieces_without_outfall"], out["flow_sinks"]) == (3, 1, 1)
    with drains.connect() as c:
        rows = c.execute(sa.text("select rule, object_id from qa_findings where run_id = :r order by rule"),
                         {"r": out["run_id"]}).all()
    assert [(r, {o}) for r, o in rows] == [("flow_sink", ids(drains, ["R9"])), ("no_outfall", ids(drains, ["R6"]))]


ROOT = __import__("pathlib").Path(__file__).parent.parent


def cim(env, *args):
    import subprocess
    return subprocess.run([str(ROOT / ".venv/bin/python"), "-m", "services.cli", *args], capture_output=True,
                          text=True, env={**env, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}, cwd=ROOT, check=False)


def test_cli(drains, cli_env):
    import json
    r = cim(cli_env, "drainage", "trace", "--node", "R1", "--direction", "down", "--json")
    assert r.returncode == 0, r.stderr
    assert set(json.loads(r.stdout)["downstream"]["segments"]) == ids(drains, ["r1", "r2", "r3", "r8"])
    r = cim(cli_env, "drainage", "trace", "--segment", "r2")
    assert r.returncode == 0 and "upstream" in r.stdout and "downstream" in r.stdout, r.stderr
    r = cim(cli_env, "drainage", "catchment", "R3")
    assert r.returncode == 0 and "1 buildings, 1 parcels" in r.stdout, r.stdout + r.stderr
    r = cim(cli_env, "drainage", "outfalls")
    assert r.returncode == 0 and "2 outfalls, 3 pieces, 1 without an outfall, 1 flow sinks" in r.stdout
    r = cim(cli_env, "drainage", "trace", "--node", "nope")
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [r.stderr.strip()] and "nope" in r.stderr
    r = cim(cli_env, "drainage", "trace", "--point", "1;2")
    assert r.returncode == 1 and "X,Y" in r.stderr


def test_processes(drains):
    from fastapi.testclient import TestClient

    from services import auth
    from services.app import create_app

    _, key = auth.create_key("utilities", engine=drains)
    h = {"X-API-Key": key}
    with TestClient(create_app()) as c:
        url = "/api/processes/drainage-trace/execution"
        assert c.post(url, json={"inputs": {"node": "R1"}}).status_code == 401
        r = c.post(url, json={"inputs": {"node": "R1", "direction": "down"}}, headers=h)
        assert r.status_code == 200, r.text
        assert set(r.json()["outfalls"]) == ids(drains, ["OUT1"])
        r = c.post(url, json={"inputs": {"point": [X0 + 75, Y0 + 1]}}, headers=h)
        assert r.json()["start"]["key"] == "r2"
        for body in ({"node": "R1", "direction": "sideways"}, {"node": "R1", "segment": "r1"}, {}):
            assert c.post(url, json={"inputs": body}, headers=h).status_code == 400
        assert c.post(url, json={"inputs": {"node": "nope"}}, headers=h).status_code == 404
        r = c.post("/api/processes/drainage-catchment/execution", json={"inputs": {"node": "R3"}}, headers=h)
        assert set(r.json()["catchment"]["buildings"]) == ids(drains, ["B1"], "areas")
        r = c.post("/api/processes/drainage-outfalls/execution", json={"inputs": {}}, headers=h)
        assert r.json()["run"]["pieces_without_outfall"] == 1

"""Burst isolation on valve segments: a hand-made network whose answer is worked out here, Net3 against WNTR's
valve_segments with the same valve layer, and bad input."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pyogrio.raw
import pytest
import shapely
import sqlalchemy as sa
from conftest import DATA

from analyses.water import criticality, isolation
from cim_core.errors import InputError
from cim_core.network.graph import Network
from importers import epanet, pipes

X0, Y0 = 501800.0, 3649500.0
# R is the reservoir; V1..V6 valve nodes, V4 seized. Pipes in order (a valve node's first pipe carries it).
NODES = {"R": (0, 0, "reservoir"), "V1": (20, 0, "valve"), "A": (100, 0, "junction"), "V2": (120, 0, "valve"),
         "B": (200, 0, "junction"), "V3": (200, 20, "valve"), "E": (200, 100, "junction"),
         "V4": (220, 0, "valve"), "C": (300, 0, "junction"), "V5": (320, 0, "valve"), "D": (400, 0, "junction"),
         "G": (400, 100, "junction"), "F": (300, 100, "junction"), "V6": (300, 80, "valve")}
PIPES = {"p1": ("R", "V1"), "p2": ("V1", "A"), "p3": ("A", "V2"), "p4": ("V2", "B"), "p5": ("B", "V3"),
         "p6": ("V3", "E"), "p7": ("B", "V4"), "p8": ("V4", "C"), "p9": ("C", "V5"), "p10": ("V5", "D"),
         "p11": ("D", "G"), "p12": ("E", "F"), "p13": ("F", "V6"), "p14": ("V6", "C")}


def write_layer(path: Path, layer: str, geoms: list, **columns) -> None:
    arr = np.array(geoms, dtype=object)
    kind = {0: "Point", 1: "LineString"}[int(shapely.get_type_id(arr[0]))]
    pyogrio.raw.write(path, shapely.to_wkb(arr), [np.asarray(v) for v in columns.values()], list(columns),
                      layer=layer, driver="GPKG", geometry_type=kind, crs="EPSG:4547", append=path.exists())


def hand_made(db, tmp_path) -> dict[str, int]:
    """The network above, imported as a survey; object id by name."""
    gpkg = tmp_path / "valves.gpkg"
    xy = {k: (X0 + x, Y0 + y) for k, (x, y, _) in NODES.items()}
    write_layer(gpkg, "pipe_nodes", [shapely.Point(p) for p in xy.values()], id=list(NODES),
                utility=["water"] * len(NODES), node_type=[t for _, _, t in NODES.values()],
                status=["seized" if k == "V4" else "open" for k in NODES], ground_z=[60.0] * len(NODES))
    write_layer(gpkg, "pipes", [shapely.LineString([xy[a], xy[b]]) for a, b in PIPES.values()], id=list(PIPES),
                utility=["water"] * len(PIPES), diameter_mm=[200] * len(PIPES))
    pipes.import_layer(gpkg, engine=db)
    with db.connect() as c:
        rows = c.execute(sa.text("select key, id from city_objects")).all()
    return {key.rsplit(":", 1)[1]: i for key, i in rows}


def names(ids, index) -> set[str]:
    back = {v: k for k, v in index.items()}
    return {back[i] for i in ids}


def test_hand_made_network(db, tmp_path):
    ids = hand_made(db, tmp_path)
    # a dead end behind V5: close V5; nothing else loses water
    r = isolation.isolate(ids["p11"], engine=db)
    assert names([v["id"] for v in r["valves_to_close"]], ids) == {"V5"}
    assert names(r["isolated"]["pipes"], ids) == {"p10", "p11"}
    assert names(r["isolated"]["nodes"], ids) == {"V5", "D", "G"}
    assert r["cut_off"]["pipes"] == [] and r["inoperable_valves"] == [] and not r["source_assumed"]
    assert r["isolated"]["length_m"] == pytest.approx(180.0)
    # p4: V4 is seized, so the area runs on to C's valves; E-F (fed only through B and C) and D-G lose water too
    r = isolation.isolate(ids["p4"], engine=db)
    assert names([v["id"] for v in r["valves_to_close"]], ids) == {"V2", "V3", "V5", "V6"}
    assert names([v["id"] for v in r["inoperable_valves"]], ids) == {"V4"}
    assert names(r["isolated"]["pipes"], ids) == {"p4", "p5", "p7", "p8", "p9", "p14"}
    assert names(r["isolated"]["nodes"], ids) == {"V2", "B", "V4", "C", "V6"}
    assert names(r["cut_off"]["pipes"], ids) == {"p6", "p12", "p13", "p10", "p11"}
    assert names(r["cut_off"]["nodes"], ids) == {"V3", "E", "F", "V5", "D", "G"}
    # the loop E-F is closed by V3 and V6 alone
    r = isolation.isolate(ids["p12"], engine=db)
    assert names([v["id"] for v in r["valves_to_close"]], ids) == {"V3", "V6"}
    assert names(r["isolated"]["pipes"], ids) == {"p6", "p12", "p13"} and r["cut_off"]["pipes"] == []
    # the main next to the reservoir: everything beyond it is cut off
    r = isolation.isolate(ids["p2"], engine=db)
    assert names([v["id"] for v in r["valves_to_close"]], ids) == {"V1", "V2"}
    assert len(r["cut_off"]["pipes"]) == 11
    # the run and its findings are stored
    with db.connect() as c:
        rules = c.execute(sa.text("select rule, count(*) from qa_findings where run_id = :r group by rule"),
                          {"r": r["run_id"]}).all()
        runs = c.scalar(sa.text("select count(*) from analysis_runs where analysis = 'burst-isolation'"))
    assert dict(rules) == {"unintended_cut_off": 1} and runs == 4


def test_pick_by_point_and_bad_input(db, tmp_path):
    ids = hand_made(db, tmp_path)
    r = isolation.isolate(point=(X0 + 405, Y0 + 50), engine=db)
    assert r["pipe"]["id"] == ids["p11"]
    with pytest.raises(InputError, match=r"no water pipe within 30 m of .* the nearest is \d+ m away"):
        isolation.isolate(point=(X0 + 1000, Y0 + 1000), engine=db)
    with pytest.raises(InputError, match="no pipe 'nope' in the water network"):
        isolation.isolate("nope", engine=db)
    with pytest.raises(InputError, match="no pipe 999999"):
        isolation.isolate(999999, engine=db)
    with pytest.raises(InputError, match="either a pipe"):
        isolation.isolate(engine=db)


def test_net3_segments_equal_wntr(db):
    import wntr

    epanet.import_file(DATA / "Net3.inp", engine=db, crs="EPSG:4547", offset=(X0, Y0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wn = wntr.network.WaterNetworkModel(str(DATA / "Net3.inp"))
        layer = wntr.network.generate_valve_layer(wn, "strategic", 2, seed=123)
        node_seg, link_seg, _ = wntr.metrics.valve_segments(wn.to_graph(), layer)
    pairs = list(zip(layer["link"], layer["node"]))
    iso = isolation.load(db, valves=pairs)
    seg = iso.segments
    net: Network = iso.net
    node_names = [str(n) for n in net.node_attributes["name"]]
    link_names = [str(n) for n in net.segment_attributes["name"]]
    ours = {("N", n): int(s) for n, s in zip(node_names, seg.node[:net.n_nodes])}
    ours |= {("L", n): int(s) for n, s in zip(link_names, seg.link)}
    theirs = {("N", n): int(s) for n, s in node_seg.items()} | {("L", n): int(s) for n, s in link_seg.items()}
    assert set(ours) == set(theirs)

    def partition(labels: dict) -> set[frozenset]:
        groups: dict[int, set] = {}
        for k, s in labels.items():
            groups.setdefault(s, set()).add(k)
        return {frozenset(g) for g in groups.values()}

    assert partition(ours) == partition(theirs)
    assert seg.count == len(partition(theirs)) > 20


def test_criticality_of_every_pipe(db, tmp_path):
    ids = hand_made(db, tmp_path)
    r = criticality.criticality(engine=db)
    by = {p["id"]: p for p in r["by_pipe"]}
    assert r["pipes"] == 14 and r["segments"] == 5 and not r["source_assumed"]
    # the reservoir's own segment: closing it dries the whole network (800 m)
    assert by[ids["p1"]]["out_of_service_m"] == pytest.approx(800.0)
    # the E-F loop closes on its own
    assert (by[ids["p12"]]["length_m"], by[ids["p12"]]["cut_off_length_m"]) == pytest.approx((200.0, 0.0))
    # B and C share a segment (V4 seized): 300 m, and E-F (200 m) and D-G (180 m) fall with it
    assert by[ids["p4"]]["pipes"] == 6 and by[ids["p4"]]["out_of_service_m"] == pytest.approx(680.0)
    assert by[ids["p4"]]["segment"] == by[ids["p8"]]["segment"] != by[ids["p12"]]["segment"]
    with db.connect() as c:
        top = c.scalar(sa.text("select object_id from qa_findings where run_id = :r and rule = 'critical_pipe' "
                               "order by id limit 1"), {"r": r["run_id"]})
    assert top == ids["p1"]


def test_cli_and_process(db, tmp_path, cli_env):
    import subprocess

    from fastapi.testclient import TestClient

    from services import auth
    from services.app import create_app

    ids = hand_made(db, tmp_path)
    root = Path(__file__).parents[1]
    out = subprocess.run([".venv/bin/cim", "water", "isolate", str(ids["p4"])], env=cli_env, cwd=root,
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "close 4 valves" in out.stdout and "inoperable valves met: " in out.stdout and "seized" in out.stdout
    bad = subprocess.run([".venv/bin/cim", "water", "isolate", "--point", f"{X0 + 1000},{Y0 + 1000}"], env=cli_env,
                         cwd=root, capture_output=True, text=True, check=False)
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0 and "no water pipe within 30 m" in bad.stderr
    crit = subprocess.run([".venv/bin/cim", "water", "criticality", "--out", str(tmp_path / "c.csv")], env=cli_env,
                          cwd=root, capture_output=True, text=True, check=False)
    assert crit.returncode == 0, crit.stderr
    assert len((tmp_path / "c.csv").read_text().splitlines()) == 15
    with TestClient(create_app()) as c:
        url = "/api/processes/burst-isolation/execution"
        assert c.post(url, json={"inputs": {"pipe": ids["p11"]}}).status_code == 401
        _, key = auth.create_key("water", engine=db)
        h = {"X-API-Key": key}
        r = c.post(url, json={"inputs": {"point": [X0 + 405, Y0 + 50]}}, headers=h)
        assert r.status_code == 200, r.text
        assert [v["id"] for v in r.json()["isolation"]["valves_to_close"]] == [ids["V5"]]
        for inputs, words in (({"pipe": "nope"}, "no pipe 'nope'"), ({"point": [X0 + 1e4, Y0]}, "no water pipe within"),
                              ({"point": [1]}, "inputs.point"), ({}, "either a pipe")):
            r = c.post(url, json={"inputs": inputs}, headers=h)
            assert r.status_code == 400 and words in r.json()["detail"], r.text
        r = c.post("/api/processes/pipe-criticality/execution", json={"inputs": {}}, headers=h)
        assert r.status_code == 200 and r.json()["criticality"]["pipes"] == 14


def test_pressure_drop_elsewhere_with_the_area_shut(db, tmp_path):
    """Net3 with a valve layer: the pressures the platform reports with the area shut are WNTR's own (PDD)."""
    import wntr

    from analyses.water.hydraulics import service_levels

    epanet.import_file(DATA / "Net3.inp", engine=db, crs="EPSG:4547", offset=(X0, Y0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wn = wntr.network.WaterNetworkModel(str(DATA / "Net3.inp"))
        layer = wntr.network.generate_valve_layer(wn, "strategic", 2, seed=123)
    r = isolation.isolate("101", valves=list(zip(layer["link"], layer["node"])), pressure=True, engine=db)
    drop = r["pressure"]
    assert drop["demand_model"] == "PDD" and drop["max_drop_m"] > 0
    # WNTR on the original file, the same pipes closed
    names = {p["key"].split(":", 1)[1] for p in _keys(db, r["isolated"]["pipes"])}
    skip = {k.split(":", 1)[1] for k in _keys_of_nodes(db, r["isolated"]["nodes"] + r["cut_off"]["nodes"])}

    def lowest(closed: set[str]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w = wntr.network.WaterNetworkModel(str(DATA / "Net3.inp"))
            w.options.time.duration = 24 * 3600
            w.options.hydraulic.demand_model = "PDD"
            w.options.hydraulic.required_pressure = service_levels()["min_service_pressure"]["value_m"]
            for n in closed:
                w.get_link(n).initial_status = wntr.network.LinkStatus.Closed
            res = wntr.sim.EpanetSimulator(w).run_sim(file_prefix=str(tmp_path / f"r{len(closed)}"))
            cols = [j for j in w.junction_name_list if j not in skip]
            return res.node["pressure"][cols].min()

    expected = (lowest(set()) - lowest(names)).max()
    assert drop["max_drop_m"] == pytest.approx(expected, abs=0.01)


def _keys(db, ids):
    with db.connect() as c:
        return [{"key": k} for k, in c.execute(sa.text("select key from city_objects where id = any(:i)"),
                                                {"i": list(ids)}).all()]


def _keys_of_nodes(db, ids):
    return [k["key"] for k in _keys(db, ids)]

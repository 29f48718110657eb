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

from analyses.water import isolation
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

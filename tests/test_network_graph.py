"""The network model as a graph: a small hand-made network stored and loaded back, its parts, its flow
direction and what lies downstream and upstream, each answer worked out here from the drawing below.

    sewage (gravity), inverts in brackets:          water (pressure):      a lone manhole:

              D (9.5)                               W1 ---w1--- W2         G
              | s3
    A (10) -s1- B (9) -s2- C (8)     E (5) -s4- F (4) -s5- (loose end)

s2 is recorded from C to B, uphill: sewage flows B -> C all the same. s4 lies flat: the recorded
direction E -> F stands. w1 is recorded from W2 to W1 and rises, but a pressure main keeps its record.
"""
from __future__ import annotations

import numpy as np
import pytest

from cim_core.errors import NotFoundError
from cim_core.model import CityObject, DatasetInfo, PipeNode, PipeSegment
from cim_core.network.graph import Network
from cim_core.store import write_dataset

X0, Y0, GROUND = 501800.0, 3649500.0, 60.0
NODES = {  # key: (x, y, invert, utility)
    "A": (0, 0, 10.0, "sewage"), "B": (50, 0, 9.0, "sewage"), "C": (100, 0, 8.0, "sewage"),
    "D": (50, 50, 9.5, "sewage"), "E": (200, 0, 5.0, "sewage"), "F": (250, 0, 4.0, "sewage"),
    "G": (400, 0, 3.0, "sewage"), "W1": (0, 100, 1.0, "water"), "W2": (50, 100, 2.0, "water"),
}
SEGMENTS = {  # key: (from, to, start invert, end invert, utility); an end may be a loose point
    "s1": ("A", "B", 10.0, 9.0, "sewage"), "s2": ("C", "B", 8.0, 9.0, "sewage"),
    "s3": ("D", "B", 9.5, 9.0, "sewage"), "s4": ("E", "F", 5.0, 5.0, "sewage"),
    "s5": ("F", (300, 0), 4.0, 3.5, "sewage"), "w1": ("W2", "W1", 2.0, 1.0, "water"),
}


def _point(end) -> tuple[float, float]:
    x, y = NODES[end][:2] if isinstance(end, str) else end
    return X0 + x, Y0 + y


def drains(engine) -> None:
    objs = [CityObject(key=k, cls="pipe_node",
                       node=PipeNode(u, "manhole", (*_point(k), GROUND), depth=GROUND - inv, ground_z=GROUND,
                                     invert_z=inv))
            for k, (_, _, inv, u) in NODES.items()]
    for k, (a, b, ia, ib, u) in SEGMENTS.items():
        line = np.array([[*_point(a), ia + 0.15], [*_point(b), ib + 0.15]])
        objs.append(CityObject(key=k, cls="pipe_segment", pipe=PipeSegment(
            u, line, diameter_mm=300, start_invert=ia, end_invert=ib,
            from_node=a if isinstance(a, str) else None, to_node=b if isinstance(b, str) else None)))
    write_dataset(DatasetInfo("drains", "pipes", "drains.gpkg", "drains"), objs, engine=engine)


def keys(net: Network, nodes) -> set[str]:
    return set(net.node_key[nodes])


def segs(net: Network, idx) -> set[str]:
    return set(net.segment_key[idx])


def test_loaded_network_keeps_topology_and_lengths(db):
    drains(db)
    net = Network.load(db, dataset="drains")
    assert (net.n_nodes, net.n_segments) == (9, 6)
    at = {k: i for i, k in enumerate(net.node_key)}
    s = {k: i for i, k in enumerate(net.segment_key)}
    assert (net.from_idx[s["s2"]], net.to_idx[s["s2"]]) == (at["C"], at["B"])
    assert (net.from_idx[s["s5"]], net.to_idx[s["s5"]]) == (at["F"], -1)
    # s3 runs 50 m in plan and falls 0.5 m: its stored length is the 3D one
    assert net.length[s["s3"]] == pytest.approx(np.hypot(50, 0.5))
    assert net.degree[[at[k] for k in "ABCDEFG"]].tolist() == [1, 3, 1, 1, 1, 2, 0]
    # one vertex per node plus one for the loose end of s5
    assert net.n_vertices == 10 and net.adjacency.shape == (10, 10)
    with pytest.raises(NotFoundError, match="no dataset named 'nope'"):
        Network.load(db, dataset="nope")


def test_components(db):
    drains(db)
    net = Network.load(db, dataset="drains")
    parts = net.components()
    # {A, B, C, D}, {E, F and the loose end}, {W1, W2}, {G}
    assert parts.count == 4
    label = dict(zip(net.node_key, parts.node))
    assert label["A"] == label["B"] == label["C"] == label["D"]
    assert label["E"] == label["F"] != label["A"]
    assert label["W1"] == label["W2"] and len({label["A"], label["E"], label["W1"], label["G"]}) == 4
    seg = dict(zip(net.segment_key, parts.segment))
    assert seg["s1"] == seg["s2"] == seg["s3"] == label["A"] and seg["s4"] == seg["s5"] == label["E"]
    # one utility: the water main is not loaded
    assert Network.load(db, utility="sewage").components().count == 3


def test_flow_direction_and_reachability(db):
    drains(db)
    net = Network.load(db, dataset="drains")
    forward = dict(zip(net.segment_key, net.forward))
    assert forward == {"s1": True, "s2": False, "s3": True, "s4": True, "s5": True, "w1": True}
    at = {k: i for i, k in enumerate(net.node_key)}
    assert keys(net, net.downstream([at["A"]])) == {"A", "B", "C"}
    assert keys(net, net.downstream([at["D"], at["E"]])) == {"D", "B", "C", "E", "F"}
    assert keys(net, net.upstream([at["C"]])) == {"A", "B", "C", "D"}
    assert keys(net, net.upstream([at["B"]])) == {"A", "B", "D"}
    assert segs(net, net.downstream_segments([at["A"]])) == {"s1", "s2"}
    assert segs(net, net.upstream_segments([at["B"]])) == {"s1", "s3"}
    assert segs(net, net.downstream_segments([at["E"]])) == {"s4", "s5"}
    # pressure: the record's direction, W2 -> W1
    assert keys(net, net.downstream([at["W2"]])) == {"W2", "W1"}
    assert keys(net, net.upstream([at["W2"]])) == {"W2"}
    assert keys(net, net.downstream([])) == set()


def test_box_loads_the_nodes_its_segments_reference(db):
    drains(db)
    # a box around B: s1, s2 and s3 cross it; their far nodes come along
    net = Network.load(db, bbox=(X0 + 40, Y0 - 5, X0 + 60, Y0 + 5), geometry=True)
    assert set(net.segment_key) == {"s1", "s2", "s3"} and set(net.node_key) == {"A", "B", "C", "D"}
    assert (net.from_idx >= 0).all() and (net.to_idx >= 0).all()
    start, end = net.end_points()
    s2 = list(net.segment_key).index("s2")
    assert start[s2].tolist() == pytest.approx([X0 + 100, Y0, 8.15]) and end[s2][:2].tolist() == [X0 + 50, Y0]

"""Survey QA of a stored pipe network (CJJ 61 practice): dangling ends, segments too long or too short,
duplicate segments, tees whose degree is not 3, and nodes where the segments that meet disagree on the depth.

`check(dataset)` loads the dataset's network through cim_core, runs the rules and stores their findings
(replacing the earlier findings of these rules); the dataset's report keeps the counts by rule. The
snap tolerance and depth reference of the dataset's import (its stored options) shape two rules: an end
that the import left without a node is dangling within that tolerance, and depths compare at the
reference the source used.
"""
from __future__ import annotations

import json

import numpy as np
import shapely
import sqlalchemy as sa

from cim_core.db import get_engine
from cim_core.findings import dataset_report, qa_counts, replace_findings
from cim_core.model import QAFinding
from cim_core.network.columns import SNAP_TOLERANCE_M
from cim_core.network.graph import Network
from cim_core.network.heights import OWN_SOURCES, refers_to_axis

RULES = ("dangling_end", "segment_too_long", "segment_too_short", "duplicate_segment", "tee_degree",
         "depth_mismatch")
# Plausible segment length, and depth agreement at a node (m).
MAX_SEGMENT_M = 75.0
MIN_SEGMENT_M = 0.05
DEPTH_TOLERANCE_M = 0.10


def check(dataset: str, engine: sa.Engine | None = None, *, depth_tolerance: float = DEPTH_TOLERANCE_M,
          max_length: float = MAX_SEGMENT_M, min_length: float = MIN_SEGMENT_M) -> dict[str, int]:
    """Run the rules on a dataset's network and store their findings; returns their counts by rule."""
    engine = engine or get_engine()
    options = json.loads(dataset_report(dataset, engine).get("options") or "{}")
    net = Network.load(engine, dataset=dataset, geometry=True, node_attributes=("tee",),
                       segment_attributes=("height_source",))
    found = findings(net, tolerance=options.get("snap_tolerance", SNAP_TOLERANCE_M),
                     depth_to=options.get("depth_to", "auto"), depth_tolerance=depth_tolerance,
                     max_length=max_length, min_length=min_length)
    replace_findings(dataset, RULES, found, engine)
    return qa_counts(found)


def findings(net: Network, *, tolerance: float = SNAP_TOLERANCE_M, depth_to: str = "auto",
             depth_tolerance: float = DEPTH_TOLERANCE_M, max_length: float = MAX_SEGMENT_M,
             min_length: float = MIN_SEGMENT_M) -> list[QAFinding]:
    """Every rule's findings on a network loaded with geometry and the attributes `tee` (nodes) and
    `height_source` (segments)."""
    start, end = net.end_points()
    return [*dangling_ends(net, start, end, tolerance), *lengths(net, start, end, max_length, min_length),
            *duplicate_segments(net, start, end, tolerance), *tee_degree(net),
            *depth_mismatch(net, start, end, depth_to, depth_tolerance)]


def dangling_ends(net: Network, start: np.ndarray, end: np.ndarray, tolerance: float) -> list[QAFinding]:
    """Segment ends that the import joined to no node: they touch nothing within the snap tolerance."""
    n = net.n_segments
    pts = np.vstack([start, end])[:, :2]
    out = []
    for e in np.flatnonzero(np.concatenate([net.from_idx, net.to_idx]) < 0):
        key = net.segment_key[e % n]
        out.append(QAFinding("dangling_end", f"{key}: {'start' if e < n else 'end'} connects to nothing "
                             f"within {tolerance:g} m", key, tuple(pts[e])))
    return out


def lengths(net: Network, start: np.ndarray, end: np.ndarray, max_length: float,
            min_length: float) -> list[QAFinding]:
    """Segments longer or shorter (in plan) than a survey segment plausibly is."""
    length = shapely.length(net.centerlines)
    keys = net.segment_key
    out = [QAFinding("segment_too_long", f"{keys[s]}: {length[s]:.2f} m is longer than {max_length:g} m",
                     keys[s], tuple((start[s, :2] + end[s, :2]) / 2))
           for s in np.flatnonzero(length > max_length)]
    out += [QAFinding("segment_too_short", f"{keys[s]}: {length[s]:.3f} m is shorter than {min_length:g} m",
                      keys[s], tuple(start[s, :2])) for s in np.flatnonzero(length < min_length)]
    return out


def duplicate_segments(net: Network, start: np.ndarray, end: np.ndarray, tolerance: float) -> list[QAFinding]:
    """Segments of one utility between the same two ends (a loose end is a place of its own) along the same
    line; the first of them is the original."""
    n = net.n_segments
    if not n:
        return []
    pair = np.sort(np.column_stack(net.edges), axis=1)
    util = np.unique(net.utility.astype(str), return_inverse=True)[1].reshape(-1)
    _, group, size = np.unique(np.column_stack([pair, util]), axis=0, return_inverse=True, return_counts=True)
    group = group.reshape(-1)
    keys, out = net.segment_key, []
    for g in np.flatnonzero(size > 1):
        members = np.flatnonzero(group == g)
        first = members[0]
        for s in members[1:]:
            # the same two nodes may be joined by two routes (a loop); a duplicate runs along the same line
            if shapely.hausdorff_distance(net.centerlines[first], net.centerlines[s]) <= max(tolerance, 0.01):
                out.append(QAFinding("duplicate_segment", f"{keys[s]} duplicates {keys[first]}", keys[s],
                                     tuple((start[s, :2] + end[s, :2]) / 2)))
    return out


def tee_degree(net: Network) -> list[QAFinding]:
    """Nodes the source calls a tee where other than three segments meet."""
    tee = np.array([bool(v) for v in net.node_attributes.get("tee", [None] * net.n_nodes)], bool)
    return [QAFinding("tee_degree",
                      f"{net.node_key[i]}: a tee with {net.degree[i]} connected segments, not 3",
                      net.node_key[i], tuple(net.node_xy[i]))
            for i in np.flatnonzero(tee & (net.degree != 3))]


def depth_mismatch(net: Network, start: np.ndarray, end: np.ndarray, depth_to: str,
                   depth_tolerance: float) -> list[QAFinding]:
    """Nodes where ends whose height the segment itself gives lie at depths more than the tolerance apart,
    below the node's ground: gravity pipes compare invert to invert, pressure pipes and ducts axis to axis
    (as the source's depths refer)."""
    sources = [v or ("", "") for v in net.segment_attributes.get("height_source", [None] * net.n_segments)]
    own = np.concatenate([np.isin(np.array([s[k] for s in sources], object).astype(str), OWN_SOURCES)
                          for k in (0, 1)])
    node_of = np.concatenate([net.from_idx, net.to_idx])
    grav = np.tile(~refers_to_axis(net.utility, depth_to), 2)
    z = np.where(grav, np.concatenate([net.start_invert, net.end_invert]),
                 np.concatenate([start[:, 2], end[:, 2]]))
    ok = own & (node_of >= 0)
    if not ok.any():
        return []
    nodes_ok, depth = node_of[ok], net.node_ground[node_of[ok]] - z[ok]
    lo = np.full(net.n_nodes, np.inf)
    hi = np.full(net.n_nodes, -np.inf)
    np.minimum.at(lo, nodes_ok, depth)
    np.maximum.at(hi, nodes_ok, depth)
    return [QAFinding("depth_mismatch", f"{net.node_key[i]}: segments meet at depths {lo[i]:.2f} m to "
                      f"{hi[i]:.2f} m (more than {depth_tolerance:g} m apart)", net.node_key[i],
                      tuple(net.node_xy[i]))
            for i in np.flatnonzero(hi - lo > depth_tolerance)]

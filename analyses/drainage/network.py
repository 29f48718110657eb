"""The drainage part of the stored network model: rain, sewage and combined segments and their nodes.

The shared `Network` loads every utility of a dataset or a box; drainage analyses keep the gravity
segments (whose flow follows the inverts) and the nodes they use, with the nodes of gravity utilities
that no segment uses (a lone manhole is still part of the drainage network).
"""
from __future__ import annotations

import numpy as np
import sqlalchemy as sa
from scipy.spatial import cKDTree

from cim_core import scenarios
from cim_core.db import get_engine
from cim_core.errors import InputError, NotFoundError
from cim_core.network.columns import GRAVITY, SNAP_TOLERANCE_M
from cim_core.network.graph import Network

OUTFALL = "outlet"  # the node type of an outfall (SWMM [OUTFALLS], the surveys' 出水口)


def _remap(idx: np.ndarray, keep: np.ndarray) -> np.ndarray:
    new = np.full(len(keep), -1)
    new[keep] = np.arange(int(keep.sum()))
    return np.where(idx >= 0, new[np.maximum(idx, 0)], -1)


def drainage(net: Network) -> Network:
    """The gravity part of a loaded network, as a network of its own."""
    seg = net.gravity
    node = np.isin(net.node_utility.astype(str), GRAVITY)
    for idx in (net.from_idx[seg], net.to_idx[seg]):
        node[idx[idx >= 0]] = True
    nodes = ("node_id", "node_key", "node_utility", "node_type", "node_xy", "node_ground", "node_invert")
    segs = ("segment_id", "segment_key", "utility", "length", "start_invert", "end_invert", "diameter_mm")
    return Network(
        **{f: getattr(net, f)[node] for f in nodes}, **{f: getattr(net, f)[seg] for f in segs},
        from_idx=_remap(net.from_idx[seg], node), to_idx=_remap(net.to_idx[seg], node),
        centerlines=None if net.centerlines is None else net.centerlines[seg],
        node_attributes={a: [v for v, k in zip(vals, node) if k] for a, vals in net.node_attributes.items()},
        segment_attributes={a: [v for v, k in zip(vals, seg) if k] for a, vals in net.segment_attributes.items()})


def join_loose_ends(net: Network, tolerance: float = SNAP_TOLERANCE_M) -> None:
    """Connect segment ends without a node to the nearest drainage node within `tolerance`, in place (before
    the graph is used): a survey of connections (排查) records pipes that end in manholes of networks
    imported as other datasets."""
    if net.centerlines is None or not net.n_nodes or not net.n_segments:
        return
    tree = cKDTree(net.node_xy)
    for idx, pts in zip((net.from_idx, net.to_idx), net.end_points()):
        loose = np.flatnonzero(idx < 0)
        if len(loose):
            d, j = tree.query(pts[loose, :2], distance_upper_bound=tolerance)
            hit = np.isfinite(d)
            idx[loose[hit]] = j[hit]


def scenario_id(engine: sa.Engine, scenario: str | None) -> int | None:
    """The id of a renewal scenario (plan) by name; None for the as-is model (no name, or 现状/as-is)."""
    if scenarios.is_as_is(scenario):
        return None
    with engine.connect() as c:
        return scenarios.resolve(c, scenario)


def load(engine: sa.Engine | None = None, *, dataset: str | None = None,
         bbox: tuple[float, float, float, float] | None = None, geometry: bool = False,
         segment_attributes: tuple[str, ...] = (), scenario: str | None = None) -> Network:
    """The stored drainage network of a dataset and/or box (all current drainage networks by default) in the
    model of a scenario (default as-is: `cim_core.scenarios`; a named dataset then loses what the plan
    removes and gains the plan's own datasets); with geometry, loose segment ends join the drainage node they
    lie on."""
    engine = engine or get_engine()
    net = drainage(Network.load(engine, dataset=dataset, bbox=bbox, geometry=geometry,
                                segment_attributes=segment_attributes, scenario_id=scenario_id(engine, scenario)))
    if not net.n_nodes:
        where = (f" in dataset {dataset!r}" if dataset else "") + (f" in scenario {scenario!r}" if scenario else "")
        raise NotFoundError(f"no drainage network (rain, sewage or combined pipes){where}")
    join_loose_ends(net)
    return net


# Loaded networks by (database, dataset, scenario), with the model version they were loaded at.
_CACHE: dict[tuple[str, str | None, str | None], tuple[int, Network]] = {}
CACHE_SIZE = 4


def model_version(engine: sa.Engine) -> int:
    """The last write to the model (every dataset write and removal logs a change)."""
    with engine.connect() as c:
        return int(c.scalar(sa.text("select coalesce(max(id), 0) from change_log")))


def load_cached(engine: sa.Engine | None = None, *, dataset: str | None = None,
                scenario: str | None = None) -> Network:
    """The drainage network with geometry, reloaded only after the model changed (interactive traces)."""
    engine = engine or get_engine()
    scenario = None if scenarios.is_as_is(scenario) else scenario
    key = (engine.url.render_as_string(hide_password=True), dataset, scenario)
    version = model_version(engine)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] == version:
        return hit[1]
    net = load(engine, dataset=dataset, geometry=True, scenario=scenario)
    if len(_CACHE) >= CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = (version, net)
    return net


def outfall_nodes(net: Network) -> np.ndarray:
    """Indices of the outfalls."""
    return np.flatnonzero(net.node_type.astype(str) == OUTFALL)


def node_at(net: Network, ref: int | str) -> int:
    """The index of a node given by object id or key."""
    hit = np.flatnonzero(net.node_id == ref) if isinstance(ref, int) else np.flatnonzero(net.node_key == ref)
    if not len(hit):
        raise NotFoundError(f"no drainage node {ref!r}", hint="give a manhole's object id or key")
    if len(hit) > 1:
        raise InputError(f"{len(hit)} drainage nodes have the key {ref!r}; give its object id or a dataset")
    return int(hit[0])


def segment_at(net: Network, ref: int | str) -> int:
    """The index of a segment given by object id or key."""
    hit = np.flatnonzero(net.segment_id == ref) if isinstance(ref, int) \
        else np.flatnonzero(net.segment_key == ref)
    if not len(hit):
        raise NotFoundError(f"no drainage segment {ref!r}", hint="give a pipe's object id or key")
    if len(hit) > 1:
        raise InputError(f"{len(hit)} drainage segments have the key {ref!r}; give its object id or a dataset")
    return int(hit[0])

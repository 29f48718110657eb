"""Heights of a network being built: ground, true invert and axis elevation at every segment end and node.

Typed columns are consistent across sources: inverts are elevations of the pipe's inside bottom, depths
are ground minus invert, and the stored centreline is the pipe axis (invert + half the section height).
A source's depths and elevations refer either to the invert or to the axis (`refers_to_axis`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cim_core.settings import get_settings

from .columns import GRAVITY, Nodes, Segments

# Where an end's height came from (Heights.source, stored as the segment attribute `height_source`):
# invert, depth, node_invert, node_depth, geometry_z or default_cover. These the segment itself gives:
OWN_SOURCES = ("invert", "depth", "geometry_z")


@dataclass
class Heights:
    """Resolved per segment end: ground, true invert, axis elevation, and where the value came from."""
    ground: tuple[np.ndarray, np.ndarray]
    invert: tuple[np.ndarray, np.ndarray]
    axis: tuple[np.ndarray, np.ndarray]
    source: tuple[np.ndarray, np.ndarray]
    node_ground: np.ndarray
    node_invert: np.ndarray
    node_axis: np.ndarray
    counts: dict[str, int]


def refers_to_axis(utility: np.ndarray, depth_to: str) -> np.ndarray:
    """True where a source's depths and elevations refer to the pipe axis rather than the invert:
    depth_to 'axis' or 'invert', or 'auto': the invert for gravity networks, the centreline for pressure
    pipes and cable ducts, as Chinese survey practice has it."""
    if depth_to == "axis":
        return np.ones(len(utility), bool)
    if depth_to == "invert":
        return np.zeros(len(utility), bool)
    return ~np.isin(np.asarray(utility).astype(str), GRAVITY)


def _at(col: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """col[idx] where idx >= 0, else NaN."""
    out = np.full(len(idx), np.nan)
    ok = idx >= 0
    out[ok] = col[idx[ok]]
    return out


def _fill(value: np.ndarray, candidate: np.ndarray, source: np.ndarray, label: str) -> None:
    take = ~np.isfinite(value) & np.isfinite(candidate)
    value[take] = candidate[take]
    source[take] = label


def _node_ground(segs: Segments, nodes: Nodes) -> np.ndarray:
    """Surveyed, else reference height + depth, else the mean ground of the segment ends there."""
    node_ground = np.where(np.isfinite(nodes.ground), nodes.ground, nodes.ref_z + nodes.depth)
    acc, cnt = np.zeros(len(nodes)), np.zeros(len(nodes))
    for own_ground, idx in ((segs.start_ground, segs.from_idx), (segs.end_ground, segs.to_idx)):
        ok = (idx >= 0) & np.isfinite(own_ground)
        np.add.at(acc, idx[ok], own_ground[ok])
        np.add.at(cnt, idx[ok], 1)
    fill = ~np.isfinite(node_ground) & (cnt > 0)
    node_ground[fill] = acc[fill] / cnt[fill]
    return node_ground


def _end(segs: Segments, nodes: Nodes, node_ground: np.ndarray, end: int, cover: float, counts: dict):
    """(ground, axis, source) at the start (end 0) or end (end 1) of every segment, from the best source
    at hand: the segment's invert, its depth, its node's elevation or depth, its geometry's z, else the
    default cover (ground to crown). The ground: the segment's own, its node's, else its invert + depth."""
    h = segs.section_height()
    seg_half = np.where(segs.ref_is_axis, 0.0, h / 2)  # from the segment's reference height to its axis
    own_ground, own_invert, own_depth, idx = (
        (segs.start_ground, segs.start_invert, segs.start_depth, segs.from_idx) if end == 0 else
        (segs.end_ground, segs.end_invert, segs.end_depth, segs.to_idx))
    node_half = np.where(_at(nodes.ref_is_axis.astype(float), idx) > 0, 0.0, h / 2)
    ground = np.where(np.isfinite(own_ground), own_ground, _at(node_ground, idx))
    # else a surveyed invert and depth give it (depth: ground less the reference height, invert or axis)
    ground = np.where(np.isfinite(ground), ground, own_invert + h / 2 - seg_half + own_depth)
    missing = ~np.isfinite(ground)
    counts["no_ground"] += int(missing.sum())
    ground[missing] = 0.0
    axis = np.full(len(segs), np.nan)
    src = np.full(len(segs), "", object)
    _fill(axis, own_invert + h / 2, src, "invert")
    _fill(axis, ground - own_depth + seg_half, src, "depth")
    _fill(axis, _at(nodes.ref_z, idx) + node_half, src, "node_invert")
    _fill(axis, _at(node_ground - nodes.depth, idx) + node_half, src, "node_depth")
    if segs.line_z:
        vertex = 0 if end == 0 else -1
        z = np.array([ln[vertex, 2] if ln.shape[1] > 2 else np.nan for ln in segs.lines])
        _fill(axis, z + seg_half, src, "geometry_z")
    default = ~np.isfinite(axis)
    counts["default_cover"] += int(default.sum())
    axis[default] = ground[default] - cover - h[default] / 2
    src[default] = "default_cover"
    return ground, axis, src


def _node_levels(segs: Segments, nodes: Nodes, node_ground: np.ndarray, inverts, axes, cover: float,
                 counts: dict) -> tuple[np.ndarray, np.ndarray]:
    """(invert, axis) of every node: the lowest invert and the mean axis of the segments that meet there,
    a surveyed sump below them, else the node's own height, else the default cover."""
    nn = len(nodes)
    node_invert = np.full(nn, np.inf)
    node_axis, cnt = np.zeros(nn), np.zeros(nn)
    for idx, inv, axis in zip((segs.from_idx, segs.to_idx), inverts, axes):
        ok = idx >= 0
        np.minimum.at(node_invert, idx[ok], inv[ok])
        np.add.at(node_axis, idx[ok], axis[ok])
        np.add.at(cnt, idx[ok], 1)
    node_invert[~np.isfinite(node_invert)] = np.nan
    node_axis = np.where(cnt > 0, node_axis / np.maximum(cnt, 1), np.nan)
    own = np.where(np.isfinite(nodes.ref_z), nodes.ref_z, node_ground - nodes.depth)
    # a surveyed manhole bottom (sump) may lie below its pipes
    node_invert = np.where(np.isfinite(own) & ~nodes.ref_is_axis, np.fmin(own, node_invert), node_invert)
    node_axis = np.where(np.isfinite(node_axis), node_axis, own)
    lone = ~np.isfinite(node_ground)
    counts["no_ground"] += int(lone.sum())
    node_ground[lone] = 0.0
    half = get_settings().default_pipe_diameter_mm / 2000
    node_axis = np.where(np.isfinite(node_axis), node_axis, node_ground - cover - half)
    node_invert = np.where(np.isfinite(node_invert), node_invert, node_axis - half)
    return node_invert, node_axis


def resolve_heights(segs: Segments, nodes: Nodes, cover: float) -> Heights:
    """Ground, invert and axis elevation at both ends of every segment and at every node, vectorised over
    all of them; `cover` is the default from ground to crown where nothing else is known."""
    h = segs.section_height()
    node_ground = _node_ground(segs, nodes)
    counts = {"no_ground": 0, "default_cover": 0}
    ground, axis, source = zip(*(_end(segs, nodes, node_ground, end, cover, counts) for end in (0, 1)))
    invert = tuple(a - h / 2 for a in axis)
    node_invert, node_axis = _node_levels(segs, nodes, node_ground, invert, axis, cover, counts)
    return Heights(tuple(ground), invert, tuple(axis), tuple(source), node_ground, node_invert, node_axis,
                   counts)

"""Underground pipe networks from survey layers (CJJ 61 attributes), and the network builder that the
EPANET and SWMM importers share.

A segments layer and its nodes layer go into ONE dataset, so that segments reference their nodes.
Segment ends snap to the nearest node within a tolerance (unless the layer names its from/to nodes);
ends that meet without a surveyed node get a generated junction, and lone ends are dangling.

Heights. Typed columns are consistent across sources: `start_invert`/`end_invert` and a node's
`invert_z` are elevations of the pipe's inside bottom, depths are ground minus invert, and the stored
centreline is the pipe axis (invert + half the section height). Survey depths and node elevations are
read by the source's convention: by default (`depth_to="auto"`) to the invert for gravity networks
(rain, sewage, combined) and to the centreline for pressure pipes and cable ducts, as Chinese survey
practice has it. The source's own values stay in `attributes`.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pyogrio.errors
import pyogrio.raw
import shapely
import sqlalchemy as sa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from cim_core import sweep
from cim_core.crs import check_extent, crs_name, parse_crs, transform
from cim_core.db import get_engine, storage_srid
from cim_core.errors import GeoreferenceError, InputError, NotFoundError
from cim_core.model import (
    NODE_TYPES,
    UTILITIES,
    CityObject,
    DatasetInfo,
    Mesh,
    PipeNode,
    PipeSegment,
    QAFinding,
)
from cim_core.settings import get_settings
from cim_core.store import write_dataset

from .common import ImportResult, already_loaded, expand_sources, import_many, options_key

SUFFIXES = (".gpkg", ".shp", ".geojson", ".json", ".fgb", ".gml", ".kml", ".sqlite")
GRAVITY = ("rain", "sewage", "combined")
# Survey QA limits (CJJ 61 practice): plausible segment length, and depth agreement at a node.
MAX_SEGMENT_M = 75.0
MIN_SEGMENT_M = 0.05
DEPTH_TOLERANCE_M = 0.10
# Drawing sizes where a source gives none (m).
DEFAULT_DIAMETER_MM = 100.0
MANHOLE_RADIUS = 0.5
VALVE_SIZE = 0.4
HYDRANT_RADIUS, HYDRANT_HEIGHT = 0.15, 0.9

SEGMENT_FIELDS = ("id", "utility", "cjj_code", "shape", "diameter_mm", "width_mm", "height_mm", "material",
                  "install_year", "owner", "pressure_class", "start_depth", "end_depth", "start_invert",
                  "end_invert", "from_node", "to_node", "ground_z_start", "ground_z_end", "depth")
NODE_FIELDS = ("id", "utility", "cjj_code", "node_type", "depth", "ground_z", "invert_z", "feature")
# Field names met in survey deliverables, matched case-insensitively after the canonical name.
ALIASES = {
    "id": ("编号", "管线编号", "点号", "物探点号", "ID", "FID_", "OBJECTID", "code"),
    "utility": ("管线类型", "管线类别", "管类", "类别", "type", "network"),
    "cjj_code": ("管线代码", "代码", "CJJ", "layer_code"),
    "shape": ("断面形式", "断面", "section"),
    "diameter_mm": ("管径", "管径mm", "DN", "diameter", "dia", "GJ"),
    "width_mm": ("宽", "宽度", "断面宽", "width"),
    "height_mm": ("高", "高度", "断面高", "height"),
    "material": ("材质", "管材", "CZ", "mat"),
    "install_year": ("建设年代", "埋设年代", "敷设年代", "建设年份", "year", "MSND"),
    "owner": ("权属单位", "权属", "QSDW"),
    "pressure_class": ("压力", "压力等级", "pressure"),
    "start_depth": ("起点埋深", "QDMS"),
    "end_depth": ("终点埋深", "ZDMS"),
    "depth": ("埋深", "MS"),
    "start_invert": ("起点高程", "起点管底高程", "QDGC", "us_invert"),
    "end_invert": ("终点高程", "终点管底高程", "ZDGC", "ds_invert"),
    "from_node": ("起点点号", "起点", "起始点号", "QDDH", "fnode", "from"),
    "to_node": ("终点点号", "终点", "终止点号", "ZDDH", "tnode", "to"),
    "ground_z_start": ("起点地面高程", "QDDMGC"),
    "ground_z_end": ("终点地面高程", "ZDDMGC"),
    "node_type": ("附属物", "点类型", "类型", "kind"),
    "feature": ("特征", "特征点", "fitting"),
    "ground_z": ("地面高程", "DMGC", "ground"),
    "invert_z": ("井底高程", "管底高程", "invert", "JDGC"),
}
UTILITY_WORDS = {
    "water": ("water", "js", "给水", "供水", "上水", "自来水"), "rain": ("rain", "storm", "ys", "雨水"),
    "sewage": ("sewage", "sewer", "ws", "污水"), "combined": ("combined", "ps", "排水", "合流", "drainage"),
    "gas": ("gas", "rq", "燃气", "煤气", "天然气"), "heat": ("heat", "rl", "热力", "供热"),
    "power": ("power", "dl", "电力", "供电"), "telecom": ("telecom", "tx", "通信", "电信", "通讯"),
    "unknown": ("unknown", "bm", "不明"),
}
NODE_WORDS = {
    "manhole": ("检查井", "检修井", "窨井", "雨水井", "污水井", "人孔", "井"), "valve": ("阀门", "阀", "阀门井"),
    "hydrant": ("消防栓", "消火栓"), "outlet": ("出水口", "排放口", "排出口", "outfall"),
    "junction": ("接点", "连接点", "节点", "预留口"), "fitting": ("三通", "四通", "弯头", "变径", "直通", "tee"),
    "meter": ("水表",), "tank": ("水池", "水塔", "storage"), "pump": ("泵", "泵站"),
}
TEE_WORDS = ("tee", "三通")


# ---------------------------------------------------------------- the network in columns
@dataclass
class Nodes:
    """Node columns; missing numbers are NaN. `ref_z` and `depth` follow `ref_is_axis` (see module doc)."""
    keys: list[str]
    xy: np.ndarray
    utility: np.ndarray
    node_type: np.ndarray
    ground: np.ndarray
    depth: np.ndarray
    ref_z: np.ndarray
    ref_is_axis: np.ndarray
    attributes: list[dict]
    names: list[str | None] | None = None
    is_tee: np.ndarray | None = None
    source_ids: list[str | None] | None = None  # the survey's node ids, which segments may reference
    meshes: dict[int, Mesh] = field(default_factory=dict)  # drawings the source knows better (tanks...)

    @classmethod
    def empty(cls) -> Nodes:
        e = np.empty(0)
        return cls([], np.empty((0, 2)), e.astype(object), e.astype(object), e, e, e, e.astype(bool), [])

    def __len__(self):
        return len(self.keys)

    def extend(self, keys, xy, utility, node_type, ground) -> None:
        """Append generated nodes (junctions where segment ends meet)."""
        n = len(keys)
        nan = np.full(n, np.nan)
        self.keys += list(keys)
        self.xy = np.vstack([self.xy, xy])
        self.utility = np.concatenate([self.utility, np.asarray(utility, object)])
        self.node_type = np.concatenate([self.node_type, np.asarray(node_type, object)])
        self.ground = np.concatenate([self.ground, ground])
        self.depth = np.concatenate([self.depth, nan])
        self.ref_z = np.concatenate([self.ref_z, nan])
        self.ref_is_axis = np.concatenate([self.ref_is_axis, np.zeros(n, bool)])
        self.attributes += [{"generated": True} for _ in range(n)]
        if self.names is not None:
            self.names += [None] * n
        if self.is_tee is not None:
            self.is_tee = np.concatenate([self.is_tee, np.zeros(n, bool)])
        if self.source_ids is not None:
            self.source_ids += [None] * n


@dataclass
class Segments:
    """Segment columns; `lines` are (N, 2) or (N, 3) arrays in the storage CRS; NaN where unknown.

    start_/end_invert are true inverts; start_/end_depth and the lines' z follow `ref_is_axis`.
    from_idx/to_idx index `Nodes` (-1: not connected).
    """
    keys: list[str]
    lines: list[np.ndarray]
    utility: np.ndarray
    shape: np.ndarray
    diameter_mm: np.ndarray
    width_mm: np.ndarray
    height_mm: np.ndarray
    start_invert: np.ndarray
    end_invert: np.ndarray
    start_depth: np.ndarray
    end_depth: np.ndarray
    start_ground: np.ndarray
    end_ground: np.ndarray
    ref_is_axis: np.ndarray
    from_idx: np.ndarray
    to_idx: np.ndarray
    attributes: list[dict]
    names: list[str | None] | None = None
    line_z: bool = False  # whether the lines' z is a pipe elevation to use when nothing else is known
    drawn_mm: np.ndarray | None = None  # drawing size where the record has none (EPANET pumps)
    text: dict[str, list] = field(default_factory=dict)  # cjj_code, material, owner, pressure_class, install_year

    @classmethod
    def empty(cls) -> Segments:
        e, o = np.empty(0), np.empty(0, object)
        return cls([], [], o, o, e, e, e, e, e, e, e, e, e, e.astype(bool), e.astype(int), e.astype(int), [])

    def __len__(self):
        return len(self.keys)

    def section_height(self) -> np.ndarray:
        """Outer height of the section in metres: diameter, or culvert height; a default where unknown."""
        rect = self.shape == "rectangular"
        h = np.where(rect, self.height_mm, self.diameter_mm)
        if self.drawn_mm is not None:
            h = np.where(np.isfinite(h), h, self.drawn_mm)
        return np.where(np.isfinite(h) & (h > 0), h, DEFAULT_DIAMETER_MM) / 1000.0

    def ends(self) -> tuple[np.ndarray, np.ndarray]:
        """Start and end points (n, 2)."""
        return (np.array([ln[0, :2] for ln in self.lines]).reshape(-1, 2),
                np.array([ln[-1, :2] for ln in self.lines]).reshape(-1, 2))


# ---------------------------------------------------------------- topology
def snap_ends(segs: Segments, nodes: Nodes, tolerance: float) -> np.ndarray:
    """Connect unconnected segment ends to the nearest node of their utility within `tolerance`; where
    ends of one utility meet without a node, add a generated junction. Returns the indices (into the
    2 * n ends: starts, then ends) of the dangling ends, which touch nothing."""
    n = len(segs)
    a, b = segs.ends()
    pts = np.vstack([a, b])
    idx = np.concatenate([segs.from_idx, segs.to_idx])
    end_utility = np.concatenate([segs.utility, segs.utility]).astype(str)
    node_utility = nodes.utility.astype(str)
    dangling = []
    # networks of different utilities cross without joining: snap within each utility
    for u in np.unique(end_utility):
        open_ = np.flatnonzero((idx < 0) & (end_utility == u))
        candidates = np.flatnonzero(node_utility == u)
        if len(open_) and len(candidates):
            d, j = cKDTree(nodes.xy[candidates]).query(pts[open_], distance_upper_bound=tolerance)
            hit = np.isfinite(d)
            idx[open_[hit]] = candidates[j[hit]]
            open_ = open_[~hit]
        if not len(open_):
            continue
        # ends without a node: those within the tolerance of each other meet at a new junction
        pairs = cKDTree(pts[open_]).query_pairs(tolerance, output_type="ndarray")
        m = len(open_)
        graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(m, m))
        k, label = connected_components(graph, directed=False)
        shared = np.bincount(label, minlength=k)[label] > 1
        dangling.append(open_[~shared])
        if shared.any():
            groups, inverse = np.unique(label[shared], return_inverse=True)
            centre = np.zeros((len(groups), 2))
            np.add.at(centre, inverse, pts[open_[shared]])
            centre /= np.bincount(inverse)[:, None]
            first = len(nodes)
            nodes.extend([f"junction:{first + i}" for i in range(len(groups))], centre,
                         np.full(len(groups), u, object), np.full(len(groups), "junction", object),
                         np.full(len(groups), np.nan))
            idx[open_[shared]] = first + inverse
    segs.from_idx, segs.to_idx = idx[:n], idx[n:]
    return np.sort(np.concatenate(dangling)) if dangling else np.empty(0, int)


# ---------------------------------------------------------------- heights
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


def _fill(value: np.ndarray, candidate: np.ndarray, source: np.ndarray, label: str) -> None:
    take = ~np.isfinite(value) & np.isfinite(candidate)
    value[take] = candidate[take]
    source[take] = label


def resolve_heights(segs: Segments, nodes: Nodes, cover: float) -> Heights:
    """Ground, invert and axis elevation at both ends of every segment, from the best source at hand:
    the segment's inverts, its depths, its nodes' elevations or depths, its geometry's z, else the
    default cover (ground to crown). Vectorised over all segments."""
    n, nn = len(segs), len(nodes)
    h = segs.section_height()
    seg_half = np.where(segs.ref_is_axis, 0.0, h / 2)  # from the segment's reference height to its axis
    ends = ((segs.start_ground, segs.start_invert, segs.start_depth, segs.from_idx, 0),
            (segs.end_ground, segs.end_invert, segs.end_depth, segs.to_idx, -1))

    def at(col: np.ndarray, idx: np.ndarray) -> np.ndarray:
        out = np.full(n, np.nan)
        ok = idx >= 0
        out[ok] = col[idx[ok]]
        return out

    # node ground: surveyed, else reference height + depth, else the mean ground of the segment ends there
    node_ground = np.where(np.isfinite(nodes.ground), nodes.ground, nodes.ref_z + nodes.depth)
    acc, cnt = np.zeros(nn), np.zeros(nn)
    for own_ground, _, _, idx, _ in ends:
        ok = (idx >= 0) & np.isfinite(own_ground)
        np.add.at(acc, idx[ok], own_ground[ok])
        np.add.at(cnt, idx[ok], 1)
    fill = ~np.isfinite(node_ground) & (cnt > 0)
    node_ground[fill] = acc[fill] / cnt[fill]
    node_half = lambda idx: np.where(at(nodes.ref_is_axis.astype(float), idx) > 0, 0.0, h / 2)
    counts = {"no_ground": 0, "default_cover": 0}
    ground_at, invert_at, axis_at, source_at = [], [], [], []
    for own_ground, own_invert, own_depth, idx, vtx in ends:
        ground = np.where(np.isfinite(own_ground), own_ground, at(node_ground, idx))
        missing = ~np.isfinite(ground)
        counts["no_ground"] += int(missing.sum())
        ground[missing] = 0.0
        axis = np.full(n, np.nan)
        src = np.full(n, "", object)
        _fill(axis, own_invert + h / 2, src, "invert")
        _fill(axis, ground - own_depth + seg_half, src, "depth")
        _fill(axis, at(nodes.ref_z, idx) + node_half(idx), src, "node_invert")
        _fill(axis, at(node_ground - nodes.depth, idx) + node_half(idx), src, "node_depth")
        if segs.line_z:
            z = np.array([ln[vtx, 2] if ln.shape[1] > 2 else np.nan for ln in segs.lines])
            _fill(axis, z + seg_half, src, "geometry_z")
        default = ~np.isfinite(axis)
        counts["default_cover"] += int(default.sum())
        axis[default] = ground[default] - cover - h[default] / 2
        src[default] = "default_cover"
        ground_at.append(ground)
        invert_at.append(axis - h / 2)
        axis_at.append(axis)
        source_at.append(src)
    # nodes: the lowest invert and the mean axis of the segments that meet there
    node_invert = np.full(nn, np.inf)
    node_axis, cnt = np.zeros(nn), np.zeros(nn)
    for (_, _, _, idx, _), inv, axis in zip(ends, invert_at, axis_at):
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
    half = DEFAULT_DIAMETER_MM / 2000
    node_axis = np.where(np.isfinite(node_axis), node_axis, node_ground - cover - half)
    node_invert = np.where(np.isfinite(node_invert), node_invert, node_axis - half)
    return Heights(tuple(ground_at), tuple(invert_at), tuple(axis_at), tuple(source_at),
                   node_ground, node_invert, node_axis, counts)


# ---------------------------------------------------------------- survey QA
def survey_qa(segs: Segments, nodes: Nodes, hts: Heights, dangling: np.ndarray, *,
              tolerance: float, depth_tolerance: float = DEPTH_TOLERANCE_M,
              max_length: float = MAX_SEGMENT_M, min_length: float = MIN_SEGMENT_M) -> list[QAFinding]:
    """CJJ 61 survey checks: dangling ends, duplicate segments, implausible lengths, tees whose degree
    is not 3, and nodes where the segments that meet disagree on the depth."""
    n = len(segs)
    out: list[QAFinding] = []
    a, b = segs.ends()
    pts = np.vstack([a, b])
    for e in dangling:
        s = e % n
        out.append(QAFinding("dangling_end", f"{segs.keys[s]}: {'start' if e < n else 'end'} connects to nothing "
                             f"within {tolerance:g} m", segs.keys[s], tuple(pts[e]), "warning"))
    counts = np.array([len(ln) for ln in segs.lines], int)
    geoms = shapely.linestrings(np.vstack([ln[:, :2] for ln in segs.lines]),
                                indices=np.repeat(np.arange(n), counts)) if n else np.empty(0, object)
    length = shapely.length(geoms)
    for s in np.flatnonzero(length > max_length):
        out.append(QAFinding("segment_too_long", f"{segs.keys[s]}: {length[s]:.2f} m is longer than {max_length:g} m",
                             segs.keys[s], tuple((a[s] + b[s]) / 2)))
    for s in np.flatnonzero(length < min_length):
        out.append(QAFinding("segment_too_short", f"{segs.keys[s]}: {length[s]:.3f} m is shorter than "
                             f"{min_length:g} m", segs.keys[s], tuple(a[s])))
    # duplicates: same utility between the same two ends (unconnected ends count as their own place)
    end_id = np.concatenate([segs.from_idx, segs.to_idx])
    loose = end_id < 0
    end_id[loose] = len(nodes) + np.flatnonzero(loose)
    pair = np.sort(end_id.reshape(2, n).T, axis=1)
    util = np.unique(segs.utility.astype(str), return_inverse=True)[1]
    _, group, size = np.unique(np.column_stack([pair, util]), axis=0, return_inverse=True, return_counts=True)
    group = group.reshape(-1)
    for g in np.flatnonzero(size > 1):
        members = np.flatnonzero(group == g)
        first = members[0]
        for s in members[1:]:
            # the same two nodes may be joined by two routes (a loop); a duplicate runs along the same line
            if shapely.hausdorff_distance(geoms[first], geoms[s]) <= max(tolerance, 0.01):
                out.append(QAFinding("duplicate_segment", f"{segs.keys[s]} duplicates {segs.keys[first]}",
                                     segs.keys[s], tuple((a[s] + b[s]) / 2)))
    # degree of every node
    conn = np.concatenate([segs.from_idx, segs.to_idx])
    degree = np.bincount(conn[conn >= 0], minlength=len(nodes))
    if nodes.is_tee is not None:
        for i in np.flatnonzero(nodes.is_tee & (degree != 3)):
            out.append(QAFinding("tee_degree", f"{nodes.keys[i]}: a tee with {degree[i]} connected segments, not 3",
                                 nodes.keys[i], tuple(nodes.xy[i])))
    # depth mismatch: ends whose height the segment itself gives, compared at their node below the node's
    # ground; gravity pipes meet invert to invert, pressure pipes and ducts axis to axis
    own = np.concatenate([np.isin(hts.source[k], ("invert", "depth", "geometry_z")) for k in (0, 1)])
    node_of = np.concatenate([segs.from_idx, segs.to_idx])
    grav = np.concatenate([~segs.ref_is_axis, ~segs.ref_is_axis])
    z = np.where(grav, np.concatenate(hts.invert), np.concatenate(hts.axis))
    ok = own & (node_of >= 0)
    depth = hts.node_ground[np.where(ok, node_of, 0)] - z if len(nodes) else z
    if ok.any():
        nodes_ok, v = node_of[ok], depth[ok]
        lo = np.full(len(nodes), np.inf)
        hi = np.full(len(nodes), -np.inf)
        np.minimum.at(lo, nodes_ok, v)
        np.maximum.at(hi, nodes_ok, v)
        for i in np.flatnonzero(hi - lo > depth_tolerance):
            out.append(QAFinding("depth_mismatch", f"{nodes.keys[i]}: segments meet at depths {lo[i]:.2f} m to "
                                 f"{hi[i]:.2f} m (more than {depth_tolerance:g} m apart)",
                                 nodes.keys[i], tuple(nodes.xy[i])))
    return out


def qa_counts(findings: Iterable[QAFinding]) -> dict[str, int]:
    c: dict[str, int] = {}
    for f in findings:
        c[f.rule] = c.get(f.rule, 0) + 1
    return dict(sorted(c.items()))


# ---------------------------------------------------------------- objects
def utility_materials(engine: sa.Engine) -> dict[str, list[dict]]:
    """CJJ 61 colours per utility, from the pipe_categories table."""
    with engine.connect() as c:
        rows = c.execute(sa.text("select utility, name_en, color from pipe_categories")).all()
    return {u: [{"name": f"{u} ({name})", "color": [x / 255 for x in col] + [1.0]}] for u, name, col in rows}


def _num(v) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None


def _node_meshes(nodes: Nodes, hts: Heights) -> list[Mesh | None]:
    """Manholes as shafts from invert to ground, hydrants as posts above ground, valves and fittings as
    boxes on the pipe axis; all swept in one batch."""
    meshes: list[Mesh | None] = [None] * len(nodes)
    axes, profiles, which = [], [], []
    for i in range(len(nodes)):
        if i in nodes.meshes:
            meshes[i] = nodes.meshes[i]
            continue
        x, y = nodes.xy[i]
        g, inv, ax = hts.node_ground[i], hts.node_invert[i], hts.node_axis[i]
        t = nodes.node_type[i]
        if t == "manhole":
            axes.append(np.array([[x, y, min(inv, g - 0.1)], [x, y, g]]))
            profiles.append(sweep.circle_profile(MANHOLE_RADIUS))
        elif t == "hydrant":
            axes.append(np.array([[x, y, g], [x, y, g + HYDRANT_HEIGHT]]))
            profiles.append(sweep.circle_profile(HYDRANT_RADIUS))
        elif t in ("valve", "meter", "pump", "fitting", "outlet"):
            size = VALVE_SIZE if t in ("valve", "meter", "pump") else max(0.3, (ax - inv) * 2.4)
            axes.append(np.array([[x - size / 2, y, ax], [x + size / 2, y, ax]]))
            profiles.append(sweep.rect_profile(size, size))
        else:
            continue
        which.append(i)
    for i, m in zip(which, sweep.sweep_many(axes, profiles)):
        meshes[i] = m
    return meshes


def build_objects(segs: Segments, nodes: Nodes, hts: Heights, materials: dict[str, list[dict]],
                  *, lod: int = 2) -> Iterator[CityObject]:
    """City objects for nodes and segments: typed pipe records, footprints and swept meshes."""
    h = segs.section_height()
    rect = segs.shape == "rectangular"
    counts = np.array([len(ln) for ln in segs.lines], int)
    xy = np.vstack([ln[:, :2] for ln in segs.lines]) if len(segs) else np.empty((0, 2))
    z = sweep.interpolate_many(xy, counts, hts.axis[0], hts.axis[1])
    axes = np.split(np.column_stack([xy, z]), np.cumsum(counts)[:-1]) if len(segs) else []
    footprints = shapely.linestrings(xy, indices=np.repeat(np.arange(len(segs)), counts)) if len(segs) else []
    width = np.where(np.isfinite(segs.width_mm) & (segs.width_mm > 0), segs.width_mm / 1000, h)
    profiles = [sweep.rect_profile(width[i], h[i]) if rect[i] else sweep.circle_profile(float(h[i] / 2))
                for i in range(len(segs))]
    seg_meshes = sweep.sweep_many(axes, profiles) if axes else []
    node_meshes = _node_meshes(nodes, hts)

    def dress(mesh: Mesh | None, utility: str) -> Mesh | None:
        if mesh is not None:
            mesh.materials = materials.get(utility)
            mesh.face_materials = np.zeros(len(mesh.faces), "<u2") if mesh.materials else None
        return mesh

    for i in range(len(nodes)):
        u = str(nodes.utility[i])
        g = float(hts.node_ground[i])
        inv = float(hts.node_invert[i])
        yield CityObject(
            key=nodes.keys[i], cls="pipe_node", uid=nodes.keys[i], lod=lod,
            name=nodes.names[i] if nodes.names else None, attributes=nodes.attributes[i],
            footprint=shapely.Point(nodes.xy[i]), mesh=dress(node_meshes[i], u),
            node=PipeNode(u, str(nodes.node_type[i]), (float(nodes.xy[i, 0]), float(nodes.xy[i, 1]), g),
                          depth=g - inv, ground_z=g, invert_z=inv))
    none = [None] * len(segs)
    cjj, material, owner, pressure, year = (segs.text.get(k, none) for k in (
        "cjj_code", "material", "owner", "pressure_class", "install_year"))
    # plain Python numbers for the records, converted once
    dia, wid, hei = ([_num(v) for v in col] for col in (segs.diameter_mm, segs.width_mm, segs.height_mm))
    inv0, inv1 = hts.invert[0].tolist(), hts.invert[1].tolist()
    dep0, dep1 = (hts.ground[0] - hts.invert[0]).tolist(), (hts.ground[1] - hts.invert[1]).tolist()
    frm = [nodes.keys[j] if j >= 0 else None for j in segs.from_idx]
    to = [nodes.keys[j] if j >= 0 else None for j in segs.to_idx]
    for i in range(len(segs)):
        u = str(segs.utility[i])
        attrs = dict(segs.attributes[i])
        attrs["height_source"] = [str(hts.source[0][i]), str(hts.source[1][i])]
        yield CityObject(
            key=segs.keys[i], cls="pipe_segment", uid=segs.keys[i], lod=lod,
            name=segs.names[i] if segs.names else None, attributes=attrs,
            footprint=footprints[i], mesh=dress(seg_meshes[i], u),
            pipe=PipeSegment(
                utility=u, centerline=axes[i], cjj_code=cjj[i], shape="rectangular" if rect[i] else "circular",
                diameter_mm=dia[i], width_mm=wid[i], height_mm=hei[i], material=material[i],
                install_year=int(year[i]) if year[i] is not None else None, owner=owner[i],
                pressure_class=pressure[i], start_invert=inv0[i], end_invert=inv1[i], start_depth=dep0[i],
                end_depth=dep1[i], from_node=frm[i], to_node=to[i]))


# ---------------------------------------------------------------- writing, shared by pipes/epanet/swmm
def write_network(path: Path, name: str, kind: str, sha: str, source_crs: str | None, options: dict,
                  segs: Segments, nodes: Nodes, hts: Heights, findings: list[QAFinding], report: dict,
                  engine: sa.Engine, progress: Callable[[int], None] | None) -> ImportResult:
    report = {**report, "options": options_key(options), "heights": hts.counts, "qa": qa_counts(findings)}
    info = DatasetInfo(name=name, kind=kind, source_path=str(path), sha256=sha, source_crs=source_crs, report=report)
    res = write_dataset(info, build_objects(segs, nodes, hts, utility_materials(engine)), findings,
                        engine=engine, progress=progress)
    return ImportResult(path=str(path), dataset=name, counts=res.counts, replaced=res.replaced, report=report)


def place(path: Path, x: np.ndarray, y: np.ndarray, crs: str | None, engine: sa.Engine, *,
          offset: tuple[float, float] | None = None, scale: float = 1.0, local_hint: bool = False):
    """Source coordinates (scaled, then shifted by `offset`, in the source CRS) into the storage CRS,
    refusing an extent outside the storage CRS's area of use."""
    srid = storage_srid(engine)
    src = parse_crs(crs) if crs else parse_crs(srid)
    x = np.asarray(x, float) * scale + (offset[0] if offset else 0.0)
    y = np.asarray(y, float) * scale + (offset[1] if offset else 0.0)
    if len(x):
        try:
            check_extent(str(path), src, (x.min(), y.min(), x.max(), y.max()), srid)
        except GeoreferenceError:
            if not local_hint:
                raise
            raise GeoreferenceError(
                f"{path}: coordinates ({x.min():.1f}, {y.min():.1f})..({x.max():.1f}, {y.max():.1f}) taken as "
                f"{crs_name(src)} lie outside the area of use of the storage CRS EPSG:{srid}",
                hint="a network drawn in local coordinates needs --offset E,N (in the CRS of --crs) to place it"
            ) from None
    if src.equals(parse_crs(srid)):
        return x, y, crs_name(src)
    tx, ty = transform(crs_name(src) if src.to_authority() else src.to_wkt(), srid, x, y)
    return np.asarray(tx), np.asarray(ty), crs_name(src)


# ---------------------------------------------------------------- survey layers
def _layers(path: Path) -> list[tuple[str, str]]:
    try:
        return [(str(n), str(g or "")) for n, g in pyogrio.list_layers(path)]
    except pyogrio.errors.DataSourceError as exc:
        raise InputError(f"{path}: cannot be read as a GIS source: {str(exc).splitlines()[0]}") from None


def _read(path: Path, layer: str):
    try:
        meta, _, geoms, data = pyogrio.raw.read(path, layer=layer)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, pyogrio.errors.FieldError,
            pyogrio.errors.GeometryError, pyogrio.errors.FeatureError) as exc:
        raise InputError(f"{path}: layer {layer!r} cannot be read: {str(exc).splitlines()[0]}") from None
    cols = {str(f): np.asarray(v) for f, v in zip(meta["fields"], data)}
    return meta, shapely.from_wkb(geoms), cols


def _resolve_fields(cols: dict[str, np.ndarray], wanted: tuple[str, ...], field_map: dict[str, str],
                    path: Path, layer: str) -> dict[str, str]:
    """Canonical field -> the layer's field: the user's mapping, the canonical name, then aliases."""
    lower = {c.lower(): c for c in cols}
    out: dict[str, str] = {}
    for canon, src in field_map.items():
        if src not in cols and src.lower() not in lower:
            raise InputError(f"{path}: layer {layer!r} has no field {src!r} (mapped to {canon}); "
                             f"fields: {', '.join(cols)}")
        out[canon] = src if src in cols else lower[src.lower()]
    taken = set(out.values())
    for canon in wanted:
        if canon in out:
            continue
        for cand in (canon, *ALIASES.get(canon, ())):
            real = cand if cand in cols else lower.get(cand.lower())
            if real is not None and real not in taken:
                out[canon] = real
                taken.add(real)
                break
    return out


_NUM = re.compile(r"[-+]?\d+(?:\.\d+)?")
_SECTION = re.compile(r"(\d+(?:\.\d+)?)\s*[x×X*]\s*(\d+(?:\.\d+)?)")


def _numbers(col: np.ndarray | None, n: int) -> np.ndarray:
    """Numbers from a numeric or text column ('DN300', '300mm', '1.2 m'); NaN where none."""
    if col is None:
        return np.full(n, np.nan)
    if col.dtype.kind in "fiu":
        return col.astype(float)
    out = np.full(n, np.nan)
    for i, v in enumerate(col):
        if v is None:
            continue
        m = _NUM.search(str(v))
        if m:
            out[i] = float(m.group())
    return out


def _texts(col: np.ndarray | None, n: int) -> list[str | None]:
    if col is None:
        return [None] * n
    return [None if v is None or (isinstance(v, float) and not np.isfinite(v)) or str(v).strip() == ""
            else str(v).strip() for v in col]


def _lookup(words: dict[str, tuple[str, ...]], value: str | None) -> str | None:
    if value is None:
        return None
    v = value.strip().lower()
    for canon, ws in words.items():
        if v == canon or v in ws:
            return canon
    for canon, ws in words.items():  # '污水检查井', 'DN100阀门': a known word inside
        if any(len(w) > 1 and w in v for w in ws if not w.isascii()):
            return canon
    return None


def _utilities(util: list[str | None], codes: list[str | None], default: str, n: int) -> np.ndarray:
    out = np.empty(n, object)
    for i in range(n):
        u = _lookup(UTILITY_WORDS, util[i]) or _lookup(UTILITY_WORDS, (codes[i] or "")[:2]) or default
        out[i] = u
    return out


def _depth_ref(utility: np.ndarray, depth_to: str) -> np.ndarray:
    """True where the source's depths and elevations refer to the pipe axis rather than the invert."""
    if depth_to == "axis":
        return np.ones(len(utility), bool)
    if depth_to == "invert":
        return np.zeros(len(utility), bool)
    return ~np.isin(utility.astype(str), GRAVITY)


def _attributes(cols: dict[str, np.ndarray], n: int) -> list[dict]:
    names = list(cols)
    vals = [c.tolist() for c in cols.values()]
    return [{k: v[i] for k, v in zip(names, vals) if v[i] is not None and v[i] == v[i]} for i in range(n)]


def _keys(ids: list[str | None], utility: np.ndarray, prefix: str) -> tuple[list[str], list[str]]:
    """Dataset keys from the id column: 'node:ID'; 'node:UTILITY:ID' where utilities number their
    features separately and an id recurs across them; the row number appended to an id repeated within
    one utility (returned as repeated); 'node#ROW' without an id."""
    per_id: dict[str, set] = {}
    for i, u in zip(ids, utility):
        if i is not None:
            per_id.setdefault(i, set()).add(str(u))
    seen: set[str] = set()
    keys, repeated = [], []
    for row, (i, u) in enumerate(zip(ids, utility)):
        if i is None:
            k = f"{prefix}#{row}"
        else:
            k = f"{prefix}:{u}:{i}" if len(per_id[i]) > 1 else f"{prefix}:{i}"
            if k in seen:
                repeated.append(k)
                k = f"{k}#{row}"
        seen.add(k)
        keys.append(k)
    return keys, repeated


def read_nodes(path: Path, layer: str, field_map: dict[str, str], utility: str, depth_to: str,
               crs: str | None, engine: sa.Engine) -> tuple[Nodes, list[QAFinding], str | None]:
    meta, geoms, cols = _read(path, layer)
    ok = ~shapely.is_empty(geoms) & ~shapely.is_missing(geoms)
    geoms, cols = geoms[ok], {k: v[ok] for k, v in cols.items()}
    if len(geoms) and not (shapely.get_type_id(geoms) == 0).all():
        raise InputError(f"{path}: nodes layer {layer!r} must hold points")
    n = len(geoms)
    f = _resolve_fields(cols, NODE_FIELDS, field_map, path, layer)
    get = lambda k: cols.get(f[k]) if k in f else None
    src_crs = crs or meta.get("crs")
    if not src_crs:
        raise InputError(f"{path}: layer {layer!r} has no CRS", hint="give it with --crs EPSG:N")
    xy = shapely.get_coordinates(geoms)
    x, y, crs_used = place(path, xy[:, 0], xy[:, 1], src_crs, engine)
    texts = {k: _texts(get(k), n) for k in ("id", "utility", "cjj_code", "node_type", "feature")}
    util = _utilities(texts["utility"], texts["cjj_code"], utility, n)
    ntype = np.empty(n, object)
    tee = np.zeros(n, bool)
    for i in range(n):
        t = texts["node_type"][i]
        ntype[i] = t.lower() if t and t.lower() in NODE_TYPES else (_lookup(NODE_WORDS, t) or "junction")
        feat = " ".join(filter(None, (t, texts["feature"][i]))).lower()
        tee[i] = any(w in feat for w in TEE_WORDS)
    keys, repeated = _keys(texts["id"], util, "node")
    findings = [QAFinding("duplicate_id", f"node id {k.split(':', 1)[1]!r} is used more than once", None)
                for k in repeated]
    nodes = Nodes(keys, np.column_stack([x, y]), util, ntype, _numbers(get("ground_z"), n),
                  _numbers(get("depth"), n), _numbers(get("invert_z"), n), _depth_ref(util, depth_to),
                  _attributes(cols, n), names=[None] * n, is_tee=tee, source_ids=texts["id"])
    return nodes, findings, crs_used


def read_segments(path: Path, layer: str, field_map: dict[str, str], utility: str, depth_to: str,
                  crs: str | None, engine: sa.Engine, node_ids: dict[tuple[str, str], int]
                  ) -> tuple[Segments, list[QAFinding], str | None]:
    meta, geoms, cols = _read(path, layer)
    ok = ~shapely.is_empty(geoms) & ~shapely.is_missing(geoms)
    geoms, cols = geoms[ok], {k: v[ok] for k, v in cols.items()}
    types = shapely.get_type_id(geoms)
    if len(geoms) and not np.isin(types, (1, 5)).all():
        raise InputError(f"{path}: pipes layer {layer!r} must hold lines")
    # a multi-line becomes one segment per part
    geoms = shapely.line_merge(geoms) if len(geoms) else geoms
    parts, row = shapely.get_parts(geoms, return_index=True)
    cols = {k: v[row] for k, v in cols.items()}
    n = len(parts)
    src_crs = crs or meta.get("crs")
    if not src_crs:
        raise InputError(f"{path}: layer {layer!r} has no CRS", hint="give it with --crs EPSG:N")
    has_z = bool(n) and bool(shapely.has_z(parts).all())
    coords, owner = shapely.get_coordinates(parts, include_z=has_z, return_index=True)
    x, y, crs_used = place(path, coords[:, 0], coords[:, 1], src_crs, engine)
    xyz = np.column_stack([x, y] + ([coords[:, 2]] if has_z else []))
    split = np.flatnonzero(np.diff(owner)) + 1
    lines = np.split(xyz, split) if n else []
    f = _resolve_fields(cols, SEGMENT_FIELDS, field_map, path, layer)
    get = lambda k: cols.get(f[k]) if k in f else None
    texts = {k: _texts(get(k), n) for k in ("id", "utility", "cjj_code", "shape", "material", "owner",
                                             "pressure_class", "from_node", "to_node", "install_year")}
    util = _utilities(texts["utility"], texts["cjj_code"], utility, n)
    diameter = _numbers(get("diameter_mm"), n)
    width, height = _numbers(get("width_mm"), n), _numbers(get("height_mm"), n)
    shape = np.array(["rectangular" if s and s.lower() in ("rectangular", "rect", "box", "方形", "矩形", "方沟")
                      else "circular" for s in texts["shape"]], object)
    # a size written as 'W×H' is a rectangular section
    dcol = get("diameter_mm")
    if dcol is not None and dcol.dtype.kind not in "fiu":
        for i, v in enumerate(dcol):
            m = _SECTION.search(str(v)) if v is not None else None
            if m:
                shape[i], width[i], height[i], diameter[i] = "rectangular", float(m[1]), float(m[2]), np.nan
    if n:
        # a culvert without height is drawn square
        shape[(shape == "rectangular") & ~np.isfinite(height) & ~np.isfinite(width)] = "circular"
        height = np.where((shape == "rectangular") & ~np.isfinite(height), width, height)
    both_depth = _numbers(get("depth"), n)
    start_depth = _numbers(get("start_depth"), n)
    end_depth = _numbers(get("end_depth"), n)
    start_depth = np.where(np.isfinite(start_depth), start_depth, both_depth)
    end_depth = np.where(np.isfinite(end_depth), end_depth, both_depth)
    years = []
    for v in texts["install_year"]:
        m = re.search(r"(18|19|20|21)\d\d", v) if v else None
        years.append(int(m.group()) if m else None)
    keys, repeated = _keys(texts["id"], util, "pipe")
    findings = [QAFinding("duplicate_id", f"pipe id {k.split(':', 1)[1]!r} is used more than once", None)
                for k in repeated]
    from_idx = np.full(n, -1)
    to_idx = np.full(n, -1)
    for col, idx, label in ((texts["from_node"], from_idx, "from_node"), (texts["to_node"], to_idx, "to_node")):
        for i, v in enumerate(col):
            if v is None:
                continue
            j = node_ids.get((str(util[i]), v))
            if j is None and node_ids:
                findings.append(QAFinding("unknown_node", f"{keys[i]}: {label} {v!r} is not in the nodes layer; "
                                          "snapped by position instead", keys[i], tuple(lines[i][0, :2])))
            elif j is not None:
                idx[i] = j
    segs = Segments(
        keys, lines, util, shape, diameter, width, height, _numbers(get("start_invert"), n),
        _numbers(get("end_invert"), n), start_depth, end_depth, _numbers(get("ground_z_start"), n),
        _numbers(get("ground_z_end"), n), _depth_ref(util, depth_to), from_idx, to_idx, _attributes(cols, n),
        names=[None] * n, line_z=has_z,
        text={"cjj_code": texts["cjj_code"], "material": texts["material"], "owner": texts["owner"],
              "pressure_class": texts["pressure_class"], "install_year": years})
    return segs, findings, crs_used


def _pick_layers(path: Path, layer: str | None, nodes_layer: str | None) -> tuple[str | None, str | None]:
    """(segments layer, nodes layer): a point layer alone is a nodes-only import."""
    layers = _layers(path)
    kinds = {n: g.lower() for n, g in layers}
    if layer is not None and layer not in kinds:
        raise InputError(f"{path}: no layer {layer!r}; layers: {', '.join(kinds)}")
    if nodes_layer is not None and nodes_layer not in kinds:
        raise InputError(f"{path}: no layer {nodes_layer!r}; layers: {', '.join(kinds)}")
    if layer is not None and "point" in kinds[layer]:
        return None, layer
    lines = [n for n, g in kinds.items() if "line" in g]
    if layer is None:
        if not lines:
            raise InputError(f"{path}: no line layer of pipes; layers: {', '.join(kinds)}")
        layer = next((n for n in lines if n.lower() in ("pipes", "pipe_segments")), lines[0])
    if nodes_layer is None:
        points = [n for n, g in kinds.items() if "point" in g]
        nodes_layer = next((n for n in points if n.lower() in ("pipe_nodes", f"{layer.lower()}_nodes")), None) or \
            next((n for n in points if n.lower().endswith("_nodes")), None)
    return layer, nodes_layer


def import_layer(path: str | Path, layer: str | None = None, *, nodes_layer: str | None = None,
                 crs: str | None = None, dataset: str | None = None, engine: sa.Engine | None = None,
                 force: bool = False, field_map: dict[str, str] | None = None, utility: str = "unknown",
                 depth_to: str = "auto", snap_tolerance: float = 0.5, depth_tolerance: float = DEPTH_TOLERANCE_M,
                 progress: Callable[[int], None] | None = None) -> ImportResult:
    """Import a survey layer of pipe segments together with its nodes layer, as one dataset.

    layer: the line layer (default: 'pipes', else the first line layer); a point layer given here is
    imported as nodes only. nodes_layer: default a point layer named pipe_nodes or *_nodes in the same
    file. crs: the source CRS when the file has none. field_map: canonical field -> source field
    (e.g. {"diameter_mm": "DN"}); common Chinese survey names are recognised without it. utility:
    for features without a utility field. depth_to: auto | invert | axis, what depths and node
    elevations refer to (see the module doc). snap_tolerance: metres within which segment ends join
    nodes and each other. Survey QA findings are stored with the dataset; their counts are in
    result.report["qa"].
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if utility not in UTILITIES:
        raise InputError(f"unknown utility {utility!r}; one of {', '.join(UTILITIES)}")
    if depth_to not in ("auto", "invert", "axis"):
        raise InputError(f"depth_to must be auto, invert or axis, not {depth_to!r}")
    field_map = dict(field_map or {})
    bad = set(field_map) - set(SEGMENT_FIELDS) - set(NODE_FIELDS)
    if bad:
        raise InputError(f"unknown target field(s) {', '.join(sorted(bad))}; "
                         f"known: {', '.join(sorted(set(SEGMENT_FIELDS) | set(NODE_FIELDS)))}")
    engine = engine or get_engine()
    seg_layer, node_layer = _pick_layers(path, layer, nodes_layer)
    name = dataset or f"{path.stem}_{seg_layer or node_layer}"
    options = {"layer": seg_layer, "nodes_layer": node_layer, "crs": crs, "dataset": name, "field_map": field_map,
               "utility": utility, "depth_to": depth_to, "snap_tolerance": snap_tolerance,
               "depth_tolerance": depth_tolerance, "srid": storage_srid(engine)}
    sha, done = already_loaded(path, force, options, engine)
    if done:
        return ImportResult(path=str(path), dataset=done["name"], skipped=True)
    findings: list[QAFinding] = []
    nodes, crs_used = Nodes.empty(), None
    if node_layer:
        node_map = {k: v for k, v in field_map.items() if k in NODE_FIELDS}
        nodes, f, crs_used = read_nodes(path, node_layer, node_map, utility, depth_to, crs, engine)
        findings += f
    report: dict[str, Any] = {"layer": seg_layer or node_layer, "kind": "pipes" if seg_layer else "pipe-nodes",
                              "nodes_layer": node_layer, "nodes": len(nodes)}
    if seg_layer:
        node_ids: dict[tuple[str, str], int] = {}
        for i, (nid, u) in enumerate(zip(nodes.source_ids or [], nodes.utility)):
            if nid is not None:
                node_ids.setdefault((str(u), nid), i)
        seg_map = {k: v for k, v in field_map.items() if k in SEGMENT_FIELDS}
        segs, f, crs_used = read_segments(path, seg_layer, seg_map, utility, depth_to, crs, engine, node_ids)
        findings += f
        surveyed = len(nodes)
        dangling = snap_ends(segs, nodes, snap_tolerance)
        report.update(segments=len(segs), generated_junctions=len(nodes) - surveyed)
    else:
        segs = Segments.empty()
        dangling = np.empty(0, int)
    hts = resolve_heights(segs, nodes, get_settings().default_pipe_cover)
    findings += survey_qa(segs, nodes, hts, dangling, tolerance=snap_tolerance, depth_tolerance=depth_tolerance)
    return write_network(path, name, "pipes", sha, crs_used, options, segs, nodes, hts, findings, report,
                         engine, progress)


def import_file(path: str | Path, *, dataset: str | None = None, engine: sa.Engine | None = None,
                force: bool = False, progress: Callable[[int], None] | None = None, **options) -> ImportResult:
    """The pipes (and nodes) of one survey file; options as for import_layer."""
    return import_layer(path, options.pop("layer", None), dataset=dataset, engine=engine, force=force,
                        progress=progress, **options)


def import_files(paths, *, workers: int = 1, force: bool = False,
                 progress: Callable[[ImportResult], None] | None = None, **options) -> list[ImportResult]:
    return import_many(import_file, expand_sources(paths, SUFFIXES), workers=workers, force=force,
                       progress=progress, **options)


def qa_summary(dataset: str, engine: sa.Engine | None = None, examples: int = 3) -> dict[str, dict]:
    """Stored QA findings of a dataset: rule -> {"count", "severity", "examples": [message...]}."""
    engine = engine or get_engine()
    with engine.connect() as c:
        ds = c.scalar(sa.text("select id from datasets where name = :n"), {"n": dataset})
        if ds is None:
            raise NotFoundError(f"no dataset named {dataset!r}", hint="`cim datasets` lists them")
        rows = c.execute(sa.text("""
            select rule, max(severity), count(*), (array_agg(message order by id))[1:(:k)]
            from qa_findings where dataset_id = :d group by rule order by rule"""), {"d": ds, "k": examples}).all()
    return {r[0]: {"severity": r[1], "count": r[2], "examples": list(r[3])} for r in rows}

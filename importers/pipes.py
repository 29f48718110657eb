"""Underground pipe networks from survey layers (CJJ 61 attributes): reading the layers and mapping their
fields; the network itself is built by cim_core.network.

A segments layer and its nodes layer go into ONE dataset, so that segments reference their nodes.
Segment ends snap to the nearest node within a tolerance (unless the layer names its from/to nodes);
ends that meet without a surveyed node get a generated junction, and lone ends are left loose (the
survey QA, analyses.network_qa, reports them as dangling).

Heights (see cim_core.network.heights): survey depths and node elevations are read by the source's
convention: by default (`depth_to="auto"`) to the invert for gravity networks (rain, sewage, combined)
and to the centreline for pressure pipes and cable ducts, as Chinese survey practice has it. The
source's own values stay in `attributes`.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio.errors
import pyogrio.raw
import shapely
import sqlalchemy as sa

from cim_core.db import get_engine, storage_srid
from cim_core.errors import InputError
from cim_core.model import NODE_TYPES, UTILITIES, DatasetInfo, QAFinding
from cim_core.network.columns import SNAP_TOLERANCE_M, Nodes, Segments, snap_ends
from cim_core.network.heights import refers_to_axis, resolve_heights
from cim_core.network.objects import write_network
from cim_core.settings import get_settings

from .common import (
    GIS_SUFFIXES,
    ImportResult,
    already_loaded,
    attributes,
    expand_sources,
    import_many,
    layers,
    network_keys,
    numbers,
    options_key,
)
from .placement import place

SUFFIXES = GIS_SUFFIXES

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


_SECTION = re.compile(r"(\d+(?:\.\d+)?)\s*[x×X*]\s*(\d+(?:\.\d+)?)")
RECTANGULAR_WORDS = ("rectangular", "rect", "box", "方形", "矩形", "方沟")


# ---------------------------------------------------------------- fields
def _read(path: Path, layer: str) -> tuple[dict, np.ndarray, dict[str, np.ndarray]]:
    """(meta, geometries, columns by field name) of a layer, without features that have no geometry."""
    try:
        meta, _, wkb, data = pyogrio.raw.read(path, layer=layer)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, pyogrio.errors.FieldError,
            pyogrio.errors.GeometryError, pyogrio.errors.FeatureError) as exc:
        raise InputError(f"{path}: layer {layer!r} cannot be read: {str(exc).splitlines()[0]}") from None
    geoms = shapely.from_wkb(wkb)
    ok = ~shapely.is_empty(geoms) & ~shapely.is_missing(geoms)
    return meta, geoms[ok], {str(f): np.asarray(v)[ok] for f, v in zip(meta["fields"], data)}


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
        out[i] = _lookup(UTILITY_WORDS, util[i]) or _lookup(UTILITY_WORDS, (codes[i] or "")[:2]) or default
    return out


def _source_crs(path: Path, layer: str, meta: dict, crs: str | None) -> str:
    src_crs = crs or meta.get("crs")
    if not src_crs:
        raise InputError(f"{path}: layer {layer!r} has no CRS", hint="give it with --crs EPSG:N")
    return src_crs


# ---------------------------------------------------------------- nodes
def read_nodes(path: Path, layer: str, field_map: dict[str, str], utility: str, depth_to: str,
               crs: str | None, engine: sa.Engine) -> tuple[Nodes, list[QAFinding], str | None]:
    """The nodes of a point layer, with findings about their ids, and the source CRS."""
    meta, geoms, cols = _read(path, layer)
    if len(geoms) and not (shapely.get_type_id(geoms) == 0).all():
        raise InputError(f"{path}: nodes layer {layer!r} must hold points")
    n = len(geoms)
    f = _resolve_fields(cols, NODE_FIELDS, field_map, path, layer)
    get = lambda k: cols.get(f[k]) if k in f else None
    xy = shapely.get_coordinates(geoms)
    x, y, crs_used = place(path, xy[:, 0], xy[:, 1], _source_crs(path, layer, meta, crs), engine)
    texts = {k: _texts(get(k), n) for k in ("id", "utility", "cjj_code", "node_type", "feature")}
    util = _utilities(texts["utility"], texts["cjj_code"], utility, n)
    ntype = np.empty(n, object)
    tee = np.zeros(n, bool)
    for i in range(n):
        t = texts["node_type"][i]
        ntype[i] = t.lower() if t and t.lower() in NODE_TYPES else (_lookup(NODE_WORDS, t) or "junction")
        feat = " ".join(filter(None, (t, texts["feature"][i]))).lower()
        tee[i] = any(w in feat for w in TEE_WORDS)
    keys, repeated = network_keys(texts["id"], util, "node")
    findings = [QAFinding("duplicate_id", f"node id {k.split(':', 1)[1]!r} is used more than once", None)
                for k in repeated]
    nodes = Nodes(keys, np.column_stack([x, y]), util, ntype, numbers(get("ground_z"), n),
                  numbers(get("depth"), n), numbers(get("invert_z"), n), refers_to_axis(util, depth_to),
                  attributes(meta, list(cols.values()), n), names=[None] * n, is_tee=tee,
                  source_ids=texts["id"])
    return nodes, findings, crs_used


# ---------------------------------------------------------------- segments
def _lines(path: Path, layer: str, meta: dict, geoms: np.ndarray, crs: str | None, engine: sa.Engine):
    """(lines in the storage CRS, their source rows, whether they carry z, the source CRS): a multi-line
    becomes one segment per part."""
    if len(geoms) and not np.isin(shapely.get_type_id(geoms), (1, 5)).all():
        raise InputError(f"{path}: pipes layer {layer!r} must hold lines")
    geoms = shapely.line_merge(geoms) if len(geoms) else geoms
    parts, row = shapely.get_parts(geoms, return_index=True)
    src_crs = _source_crs(path, layer, meta, crs)
    has_z = bool(len(parts)) and bool(shapely.has_z(parts).all())
    coords, owner = shapely.get_coordinates(parts, include_z=has_z, return_index=True)
    x, y, crs_used = place(path, coords[:, 0], coords[:, 1], src_crs, engine)
    xyz = np.column_stack([x, y] + ([coords[:, 2]] if has_z else []))
    lines = np.split(xyz, np.flatnonzero(np.diff(owner)) + 1) if len(parts) else []
    return lines, row, has_z, crs_used


def _sections(dcol: np.ndarray | None, shapes: list[str | None], diameter: np.ndarray, width: np.ndarray,
              height: np.ndarray) -> np.ndarray:
    """Section shapes; a size written as 'W×H' is a rectangular section (diameter, width and height are
    updated in place); a culvert without height is drawn square, one without any size as a pipe."""
    shape = np.array(["rectangular" if s and s.lower() in RECTANGULAR_WORDS else "circular" for s in shapes],
                     object)
    if dcol is not None and dcol.dtype.kind not in "fiu":
        for i, v in enumerate(dcol):
            m = _SECTION.search(str(v)) if v is not None else None
            if m:
                shape[i], width[i], height[i], diameter[i] = "rectangular", float(m[1]), float(m[2]), np.nan
    if len(shape):
        shape[(shape == "rectangular") & ~np.isfinite(height) & ~np.isfinite(width)] = "circular"
        height[:] = np.where((shape == "rectangular") & ~np.isfinite(height), width, height)
    return shape


def _node_refs(texts: dict[str, list], util: np.ndarray, keys: list[str], lines: list[np.ndarray],
               node_ids: dict[tuple[str, str], int]) -> tuple[np.ndarray, np.ndarray, list[QAFinding]]:
    """(from_idx, to_idx) of the nodes the layer names, and findings for names not in the nodes layer."""
    n = len(keys)
    ends = {"from_node": np.full(n, -1), "to_node": np.full(n, -1)}
    findings = []
    for label, idx in ends.items():
        for i, v in enumerate(texts[label]):
            if v is None:
                continue
            j = node_ids.get((str(util[i]), v))
            if j is None and node_ids:
                findings.append(QAFinding("unknown_node", f"{keys[i]}: {label} {v!r} is not in the nodes "
                                          "layer; snapped by position instead", keys[i],
                                          tuple(lines[i][0, :2])))
            elif j is not None:
                idx[i] = j
    return ends["from_node"], ends["to_node"], findings


def _years(texts: list[str | None]) -> list[int | None]:
    years = []
    for v in texts:
        m = re.search(r"(18|19|20|21)\d\d", v) if v else None
        years.append(int(m.group()) if m else None)
    return years


def read_segments(path: Path, layer: str, field_map: dict[str, str], utility: str, depth_to: str,
                  crs: str | None, engine: sa.Engine, node_ids: dict[tuple[str, str], int]
                  ) -> tuple[Segments, list[QAFinding], str | None]:
    """The segments of a line layer, joined to the nodes the layer names ((utility, node id) -> index),
    with findings about ids and node names, and the source CRS."""
    meta, geoms, cols = _read(path, layer)
    lines, row, has_z, crs_used = _lines(path, layer, meta, geoms, crs, engine)
    cols = {k: v[row] for k, v in cols.items()}
    n = len(lines)
    f = _resolve_fields(cols, SEGMENT_FIELDS, field_map, path, layer)
    get = lambda k: cols.get(f[k]) if k in f else None
    texts = {k: _texts(get(k), n) for k in ("id", "utility", "cjj_code", "shape", "material", "owner",
                                             "pressure_class", "from_node", "to_node", "install_year")}
    util = _utilities(texts["utility"], texts["cjj_code"], utility, n)
    diameter, width, height = (numbers(get(k), n) for k in ("diameter_mm", "width_mm", "height_mm"))
    shape = _sections(get("diameter_mm"), texts["shape"], diameter, width, height)
    both_depth = numbers(get("depth"), n)
    start_depth, end_depth = (np.where(np.isfinite(d), d, both_depth)
                              for d in (numbers(get("start_depth"), n), numbers(get("end_depth"), n)))
    keys, repeated = network_keys(texts["id"], util, "pipe")
    findings = [QAFinding("duplicate_id", f"pipe id {k.split(':', 1)[1]!r} is used more than once", None)
                for k in repeated]
    from_idx, to_idx, unknown = _node_refs(texts, util, keys, lines, node_ids)
    segs = Segments(
        keys, lines, util, shape, diameter, width, height, numbers(get("start_invert"), n),
        numbers(get("end_invert"), n), start_depth, end_depth, numbers(get("ground_z_start"), n),
        numbers(get("ground_z_end"), n), refers_to_axis(util, depth_to), from_idx, to_idx,
        attributes(meta, list(cols.values()), n), names=[None] * n, line_z=has_z,
        text={"cjj_code": texts["cjj_code"], "material": texts["material"], "owner": texts["owner"],
              "pressure_class": texts["pressure_class"], "install_year": _years(texts["install_year"])})
    return segs, findings + unknown, crs_used


# ---------------------------------------------------------------- import
def _pick_layers(path: Path, layer: str | None, nodes_layer: str | None) -> tuple[str | None, str | None]:
    """(segments layer, nodes layer): a point layer alone is a nodes-only import."""
    kinds = {n: g.lower() for n, g in layers(path)}
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


def _check_options(path: Path, utility: str, depth_to: str,
                   field_map: dict[str, str] | None) -> dict[str, str]:
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
    return field_map


def _read_network(path: Path, seg_layer: str | None, node_layer: str | None, options: dict, engine: sa.Engine
                  ) -> tuple[Segments, Nodes, list[QAFinding], str | None, dict[str, Any]]:
    """(segments, nodes, findings about the source, source CRS, report) of a survey: nodes read, segments
    read and joined to them, loose ends snapped."""
    field_map, utility, depth_to, crs = (options[k] for k in ("field_map", "utility", "depth_to", "crs"))
    findings: list[QAFinding] = []
    nodes, crs_used = Nodes.empty(), None
    if node_layer:
        node_map = {k: v for k, v in field_map.items() if k in NODE_FIELDS}
        nodes, found, crs_used = read_nodes(path, node_layer, node_map, utility, depth_to, crs, engine)
        findings += found
    report: dict[str, Any] = {"layer": seg_layer or node_layer,
                              "kind": "pipes" if seg_layer else "pipe-nodes", "nodes_layer": node_layer,
                              "nodes": len(nodes)}
    if not seg_layer:
        return Segments.empty(), nodes, findings, crs_used, report
    node_ids: dict[tuple[str, str], int] = {}
    for i, (nid, u) in enumerate(zip(nodes.source_ids or [], nodes.utility)):
        if nid is not None:
            node_ids.setdefault((str(u), nid), i)
    seg_map = {k: v for k, v in field_map.items() if k in SEGMENT_FIELDS}
    segs, found, crs_used = read_segments(path, seg_layer, seg_map, utility, depth_to, crs, engine, node_ids)
    surveyed = len(nodes)
    snap_ends(segs, nodes, options["snap_tolerance"])
    report.update(segments=len(segs), generated_junctions=len(nodes) - surveyed)
    return segs, nodes, findings + found, crs_used, report


def import_layer(path: str | Path, layer: str | None = None, *, nodes_layer: str | None = None,
                 crs: str | None = None, dataset: str | None = None, engine: sa.Engine | None = None,
                 force: bool = False, field_map: dict[str, str] | None = None, utility: str = "unknown",
                 depth_to: str = "auto", snap_tolerance: float = SNAP_TOLERANCE_M,
                 on_objects: Callable[[int], None] | None = None) -> ImportResult:
    """Import a survey layer of pipe segments together with its nodes layer, as one dataset.

    layer: the line layer (default: 'pipes', else the first line layer); a point layer given here is
    imported as nodes only. nodes_layer: default a point layer named pipe_nodes or *_nodes in the same
    file. crs: the source CRS when the file has none. field_map: canonical field -> source field
    (e.g. {"diameter_mm": "DN"}); common Chinese survey names are recognised without it. utility:
    for features without a utility field. depth_to: auto | invert | axis, what depths and node
    elevations refer to (see the module doc). snap_tolerance: metres within which segment ends join
    nodes and each other. Findings about the source (repeated ids, unknown node names) are stored with
    the dataset, their counts in result.report["qa"]; the survey QA runs afterwards
    (analyses.network_qa.check).
    """
    path = Path(path)
    field_map = _check_options(path, utility, depth_to, field_map)
    engine = engine or get_engine()
    seg_layer, node_layer = _pick_layers(path, layer, nodes_layer)
    name = dataset or f"{path.stem}_{seg_layer or node_layer}"
    options = {"layer": seg_layer, "nodes_layer": node_layer, "crs": crs, "dataset": name,
               "field_map": field_map, "utility": utility, "depth_to": depth_to, "snap_tolerance": snap_tolerance,
               "srid": storage_srid(engine)}
    sha, done = already_loaded(path, force, options, engine)
    if done:
        return ImportResult(path=str(path), dataset=done["name"], skipped=True)
    segs, nodes, findings, crs_used, report = _read_network(path, seg_layer, node_layer, options, engine)
    hts = resolve_heights(segs, nodes, get_settings().default_pipe_cover)
    info = DatasetInfo(name=name, kind="pipes", source_path=str(path), sha256=sha, source_crs=crs_used,
                       report={**report, "options": options_key(options)})
    res = write_network(info, segs, nodes, hts, findings, engine=engine, on_objects=on_objects)
    return ImportResult.written(path, res, info.report)


def import_file(path: str | Path, *, dataset: str | None = None, engine: sa.Engine | None = None,
                force: bool = False, on_objects: Callable[[int], None] | None = None,
                **options) -> ImportResult:
    """The pipes (and nodes) of one survey file; options as for import_layer."""
    return import_layer(path, options.pop("layer", None), dataset=dataset, engine=engine, force=force,
                        on_objects=on_objects, **options)


def import_files(paths, *, workers: int = 1, force: bool = False,
                 on_file: Callable[[ImportResult], None] | None = None,
                 on_objects: Callable[[int], None] | None = None, **options) -> list[ImportResult]:
    return import_many(import_file, expand_sources(paths, SUFFIXES), workers=workers, force=force,
                       on_file=on_file, on_objects=on_objects, **options)

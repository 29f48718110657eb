"""EPA SWMM 5 models (.inp) as a drainage network: a small parser of the sections that carry the network.

Nodes: [JUNCTIONS] (manholes: invert elevation, maximum depth to the rim), [OUTFALLS] (outlets),
[STORAGE] (tanks), [DIVIDERS] (junctions). Links: [CONDUITS] (inverts from the node inverts and the
inlet/outlet offsets, read as depths or elevations per LINK_OFFSETS), [PUMPS], [ORIFICES], [WEIRS],
[OUTLETS] (`attributes["swmm_type"]`). [XSECTIONS] gives the section: circular shapes a diameter,
rectangular and open-channel shapes a box (other closed shapes are drawn as a circle of their full
height; the shape's name is kept). [COORDINATES] and [VERTICES] give the plan geometry.

Every node and link keeps its section row (`attributes["swmm_row"]`, and `swmm_xsection`), and the
dataset's report keeps the other sections (`report["swmm_model"]`: options, rain gages, subcatchments,
time series, inflows...), so that an export writes a model that runs as the source did.

Units follow FLOW_UNITS: CFS, GPM and MGD models are in feet and are converted to metres; CMS, LPS
and MLD models are in metres. A junction whose maximum depth is 0 reaches up to its highest connecting
crown, as SWMM defines it. Coordinates are placed as in the EPANET importer (`crs`, `scale`, `offset`).
A model whose links name undefined nodes is refused, with nothing written.
"""
from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from cim_core.db import get_engine, storage_srid
from cim_core.errors import InputError
from cim_core.model import DatasetInfo
from cim_core.network.columns import GRAVITY, Nodes, Segments
from cim_core.network.heights import resolve_heights
from cim_core.network.objects import write_network
from cim_core.settings import get_settings

from .common import ImportResult, already_loaded, expand_sources, import_many, options_key
from .placement import place

SUFFIXES = (".inp",)
FEET = 0.3048
US_UNITS = ("CFS", "GPM", "MGD")
NODE_SECTIONS = {"JUNCTIONS": "manhole", "OUTFALLS": "outlet", "STORAGE": "tank", "DIVIDERS": "junction"}
LINK_SECTIONS = {"CONDUITS": "conduit", "PUMPS": "pump", "ORIFICES": "orifice", "WEIRS": "weir", "OUTLETS": "outlet"}
# The column of a node's maximum depth in its section (DIVIDERS has a variable layout: none).
MAX_DEPTH_COLUMN = {"JUNCTIONS": 2, "STORAGE": 2}
# The column of the inlet offset of each link kind (outlet offset for conduits only).
INLET_OFFSET_COLUMN = {"CONDUITS": 5, "ORIFICES": 4, "WEIRS": 4, "OUTLETS": 3}
CIRCULAR = {"CIRCULAR", "FORCE_MAIN", "FILLED_CIRCULAR", "EGG", "HORSESHOE", "GOTHIC", "CATENARY",
            "SEMIELLIPTICAL", "BASKETHANDLE", "SEMICIRCULAR"}
BOXES = {"RECT_CLOSED", "RECT_OPEN", "RECT_TRIANGULAR", "RECT_ROUND", "MODBASKETHANDLE", "TRAPEZOIDAL",
         "TRIANGULAR", "PARABOLIC", "POWER", "ARCH", "HORIZ_ELLIPSE", "VERT_ELLIPSE"}
# Sections an export writes from the stored network, and sections that only draw the model (left out).
REGENERATED = {*NODE_SECTIONS, *LINK_SECTIONS, "XSECTIONS", "COORDINATES", "VERTICES"}
DRAWING = {"MAP", "POLYGONS", "SYMBOLS", "LABELS", "BACKDROP"}
_TOKEN = re.compile(r'"[^"]*"|\S+')


@dataclass
class Model:
    sections: dict[str, list[tuple[int, list[str]]]] = field(default_factory=lambda: defaultdict(list))

    def rows(self, name: str) -> list[tuple[int, list[str]]]:
        return self.sections.get(name, [])

    def option(self, key: str, default: str) -> str:
        for _, t in self.rows("OPTIONS"):
            if t[0].upper() == key and len(t) > 1:
                return t[1].upper()
        return default


def parse(path: Path) -> Model:
    """Sections of an .inp file as (line number, tokens); comments (;) and blank lines dropped."""
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc.strerror}") from None
    model = Model()
    section = None
    for no, line in enumerate(text.splitlines(), 1):
        line = line.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise InputError(f"{path}: line {no}: malformed section header {line!r}")
            section = line[1:-1].strip().upper()
            continue
        if section is None:
            raise InputError(f"{path}: line {no}: data before the first [SECTION]; not a SWMM input file")
        model.sections[section].append((no, [t.strip('"') for t in _TOKEN.findall(line)]))
    if "PIPES" in model.sections and "CONDUITS" not in model.sections:
        raise InputError(f"{path}: an EPANET input ([PIPES]), not SWMM", hint="import it with `cim import epanet`")
    if not any(s in model.sections for s in NODE_SECTIONS):
        raise InputError(f"{path}: no [JUNCTIONS], [OUTFALLS] or [STORAGE] section; not a SWMM network")
    return model


def _float(path: Path, section: str, no: int, tokens: list[str], col: int, what: str, default=None) -> float:
    if col >= len(tokens):
        if default is not None:
            return default
        raise InputError(f"{path}: line {no} ([{section}] {tokens[0]}): missing {what}")
    try:
        return float(tokens[col])
    except ValueError:
        raise InputError(f"{path}: line {no} ([{section}] {tokens[0]}): {what} {tokens[col]!r} is not a number") \
            from None


@dataclass
class _NodeRows:
    names: list[str]
    kinds: list[str]
    inverts: np.ndarray
    max_depth: np.ndarray
    attrs: list[dict]
    index: dict[str, int]


def _nodes(path: Path, model: Model, k: float) -> _NodeRows:
    """Nodes of every node section, in metres (k: metres per model length unit); each name once."""
    names, kinds, inverts, max_depth, attrs = [], [], [], [], []
    for sec, kind in NODE_SECTIONS.items():
        for no, t in model.rows(sec):
            names.append(t[0])
            kinds.append(kind)
            inverts.append(_float(path, sec, no, t, 1, "invert elevation") * k)
            col = MAX_DEPTH_COLUMN.get(sec)
            max_depth.append(_float(path, sec, no, t, col, "maximum depth", 0.0) * k if col else 0.0)
            attrs.append({"swmm_type": sec.lower().rstrip("s"), "name": t[0], "line": no, "swmm_row": t})
    index: dict[str, int] = {}
    for i, nm in enumerate(names):
        if nm in index:
            raise InputError(f"{path}: node {nm!r} is defined twice (line {attrs[index[nm]]['line']} and "
                             f"{attrs[i]['line']})")
        index[nm] = i
    return _NodeRows(names, kinds, np.array(inverts, float), np.array(max_depth, float), attrs, index)


def _links(path: Path, model: Model, index: dict[str, int]) -> list[tuple[str, str, int, list[str]]]:
    """(section, kind, line number, tokens) of every link; a model whose links name undefined nodes, or
    define a link twice, is refused."""
    links, faults = [], []
    for sec, kind in LINK_SECTIONS.items():
        for no, t in model.rows(sec):
            if len(t) < 3:
                raise InputError(f"{path}: line {no} ([{sec}] {t[0]}): needs a name, an inlet and an outlet node")
            bad = [nd for nd in t[1:3] if nd not in index]
            if bad:
                faults.append(f"[{sec}] {t[0]} (line {no}) references undefined node {bad[0]!r}")
            links.append((sec, kind, no, t))
    if faults:
        more = f" and {len(faults) - 1} more" if len(faults) > 1 else ""
        raise InputError(f"{path}: invalid model: {faults[0]}{more}")
    seen: dict[str, int] = {}
    for sec, _, no, t in links:
        if t[0] in seen:
            raise InputError(f"{path}: link {t[0]!r} is defined twice (lines {seen[t[0]]} and {no})")
        seen[t[0]] = no
    return links


def _sections(path: Path, model: Model, links: list, k: float):
    """(shape, diameter, width, height in mm, attributes) of every link, from [CONDUITS] and [XSECTIONS]."""
    xsec = {t[0]: (no, t) for no, t in model.rows("XSECTIONS")}
    m = len(links)
    shape = np.full(m, "circular", object)
    diameter, width, height = np.full(m, np.nan), np.full(m, np.nan), np.full(m, np.nan)
    attrs = []
    for i, (sec, kind, no, t) in enumerate(links):
        a = {"swmm_type": kind, "name": t[0], "line": no, "swmm_row": t}
        if sec == "CONDUITS":
            a.update(length_m=_float(path, sec, no, t, 3, "length") * k,
                     roughness=_float(path, sec, no, t, 4, "roughness"))
        if t[0] in xsec:
            xno, x = xsec[t[0]]
            sh = x[1].upper() if len(x) > 1 else ""
            a["xsection"] = sh
            a["swmm_xsection"] = x
            a["barrels"] = int(_float(path, "XSECTIONS", xno, x, 6, "barrels", 1.0))
            if sh in CIRCULAR or sh in BOXES:
                g1 = _float(path, "XSECTIONS", xno, x, 2, "geom1") * k
                g2 = _float(path, "XSECTIONS", xno, x, 3, "geom2", 0.0) * k
                if sh in CIRCULAR:
                    diameter[i] = g1 * 1000
                else:
                    shape[i], height[i], width[i] = "rectangular", g1 * 1000, (g2 if g2 > 0 else g1) * 1000
        attrs.append(a)
    return shape, diameter, width, height, attrs


def _link_inverts(path: Path, model: Model, links: list, inverts: np.ndarray, start: np.ndarray,
                  end: np.ndarray, k: float) -> tuple[np.ndarray, np.ndarray]:
    """Inverts at both ends: node invert plus the link's offsets (depth mode), or the offsets themselves
    (elevation mode, LINK_OFFSETS)."""
    offsets_as = model.option("LINK_OFFSETS", "DEPTH")
    start_inv, end_inv = inverts[start].copy(), inverts[end].copy()
    for i, (sec, _, no, t) in enumerate(links):
        cols = [(INLET_OFFSET_COLUMN.get(sec), start_inv)] + ([(6, end_inv)] if sec == "CONDUITS" else [])
        for col, target in cols:
            if col is None or col >= len(t) or t[col] == "*":
                continue
            off = _float(path, sec, no, t, col, "offset") * k
            target[i] = off if offsets_as == "ELEVATION" else target[i] + off
    return start_inv, end_inv


def _node_points(path: Path, model: Model, names: list[str]) -> np.ndarray:
    """Model coordinates of the nodes, from [COORDINATES]; every node needs them."""
    xy = {t[0]: (no, t) for no, t in model.rows("COORDINATES")}
    missing = [nm for nm in names if nm not in xy]
    if missing:
        raise InputError(f"{path}: {len(missing)} nodes have no [COORDINATES] (first: {missing[0]!r}); "
                         "the network cannot be placed")
    return np.array([[_float(path, "COORDINATES", no, t, 1, "x"), _float(path, "COORDINATES", no, t, 2, "y")]
                     if len(t) > 2 else [np.nan, np.nan] for no, t in (xy[nm] for nm in names)]).reshape(-1, 2)


def _vertices(path: Path, model: Model, links: list) -> list[np.ndarray]:
    """Model coordinates of the links' inner vertices, from [VERTICES]."""
    vertices = defaultdict(list)
    for no, t in model.rows("VERTICES"):
        vertices[t[0]].append((_float(path, "VERTICES", no, t, 1, "x"), _float(path, "VERTICES", no, t, 2, "y")))
    return [np.asarray(vertices.get(t[0], []), float).reshape(-1, 2) for _, _, _, t in links]


def _place(path: Path, pts: np.ndarray, vlists: list[np.ndarray], crs: str | None, offset, scale: float,
           engine: sa.Engine) -> tuple[np.ndarray, list[np.ndarray], str]:
    """(node xy, vertex lists of the links, source CRS) placed in the storage CRS."""
    all_x = np.concatenate([pts[:, 0]] + [v[:, 0] for v in vlists])
    all_y = np.concatenate([pts[:, 1]] + [v[:, 1] for v in vlists])
    x, y, crs_used = place(path, all_x, all_y, crs, engine, offset=offset, scale=scale, local_hint=True)
    n = len(pts)
    vxy = np.column_stack([x[n:], y[n:]])
    vsplit = np.split(vxy, np.cumsum([len(v) for v in vlists])[:-1]) if vlists else []
    return np.column_stack([x[:n], y[:n]]), vsplit, crs_used


def _network(path: Path, model: Model, utility: str, k: float, crs: str | None, offset, scale: float,
             engine: sa.Engine) -> tuple[Segments, Nodes, str]:
    """(segments, nodes, source CRS) of a parsed model."""
    nd = _nodes(path, model, k)
    pts = _node_points(path, model, nd.names)
    links = _links(path, model, nd.index)
    vlists = _vertices(path, model, links)
    start = np.array([nd.index[t[1]] for _, _, _, t in links], int)
    end = np.array([nd.index[t[2]] for _, _, _, t in links], int)
    shape, diameter, width, height, la = _sections(path, model, links, k)
    start_inv, end_inv = _link_inverts(path, model, links, nd.inverts, start, end, k)
    # ground: the rim (invert + maximum depth), at least the highest crown that connects there
    section = np.where(shape == "rectangular", height, diameter) / 1000
    crown = nd.inverts.copy()
    for node_idx, inv in ((start, start_inv), (end, end_inv)):
        np.maximum.at(crown, node_idx, inv + np.nan_to_num(section))
    ground = np.maximum(nd.inverts + nd.max_depth, crown)
    for a, inv, depth in zip(nd.attrs, nd.inverts.tolist(), nd.max_depth.tolist()):
        a.update(invert_elevation=inv, max_depth=depth)
    node_xy, vsplit, crs_used = _place(path, pts, vlists, crs, offset, scale, engine)
    n, m = len(nd.names), len(links)
    nodes = Nodes([f"node:{nm}" for nm in nd.names], node_xy, np.full(n, utility, object),
                  np.array(nd.kinds, object), ground, ground - nd.inverts, nd.inverts, np.zeros(n, bool),
                  nd.attrs, names=nd.names)
    lines = [np.vstack([node_xy[a], v, node_xy[b]]) for a, b, v in zip(start, end, vsplit)]
    nan = np.full(m, np.nan)
    segs = Segments([f"{kind}:{t[0]}" for _, kind, _, t in links], lines, np.full(m, utility, object), shape,
                    diameter, width, height, start_inv, end_inv, nan, nan, nan, nan, np.zeros(m, bool),
                    start, end, la, names=[t[0] for _, _, _, t in links])
    return segs, nodes, crs_used


def _quoted(token: str) -> str:
    return f'"{token}"' if not token or any(c.isspace() for c in token) else token


def kept_sections(model: Model) -> dict[str, list[str]]:
    """The sections an export needs besides the network (options, rain gages, subcatchments, time series,
    inflows...), as lines of tokens; the network sections are kept per object (`swmm_row`), and drawing-only
    sections are left out."""
    return {sec: [" ".join(_quoted(tok) for tok in t) for _, t in rows]
            for sec, rows in model.sections.items() if sec not in REGENERATED and sec not in DRAWING}


def import_file(path: str | Path, *, crs: str | None = None, offset: tuple[float, float] | None = None,
                scale: float = 1.0, utility: str = "combined", dataset: str | None = None,
                engine: sa.Engine | None = None, force: bool = False,
                on_objects: Callable[[int], None] | None = None) -> ImportResult:
    """Import one SWMM .inp file as a drainage network dataset (default name: the file's stem).

    utility: sewage | rain | combined (default)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if utility not in GRAVITY:
        raise InputError(f"a SWMM network is drainage: utility must be one of {', '.join(GRAVITY)}, not {utility!r}")
    engine = engine or get_engine()
    name = dataset or path.stem
    options = {"crs": crs, "offset": list(offset) if offset else None, "scale": scale, "utility": utility,
               "dataset": name, "srid": storage_srid(engine)}
    sha, done = already_loaded(path, force, options, engine)
    if done:
        return ImportResult(path=str(path), dataset=done["name"], skipped=True)
    model = parse(path)
    flow_units = model.option("FLOW_UNITS", "CFS")
    k = FEET if flow_units in US_UNITS else 1.0
    segs, nodes, crs_used = _network(path, model, utility, k, crs, offset, scale, engine)
    report = {sec.lower(): len(model.rows(sec)) for sec in (*NODE_SECTIONS, *LINK_SECTIONS) if model.rows(sec)}
    report.update(flow_units=flow_units, length_unit="ft" if k != 1.0 else "m",
                  link_offsets=model.option("LINK_OFFSETS", "DEPTH"), options=options_key(options),
                  swmm_model=kept_sections(model))
    info = DatasetInfo(name=name, kind="swmm", source_path=str(path), sha256=sha, source_crs=crs_used,
                       report=report)
    hts = resolve_heights(segs, nodes, get_settings().default_pipe_cover)
    res = write_network(info, segs, nodes, hts, engine=engine, on_objects=on_objects)
    return ImportResult.written(path, res, info.report)


def import_files(paths, *, workers: int = 1, force: bool = False,
                 on_file: Callable[[ImportResult], None] | None = None,
                 on_objects: Callable[[int], None] | None = None, **options) -> list[ImportResult]:
    return import_many(import_file, expand_sources(paths, SUFFIXES), workers=workers, force=force,
                       on_file=on_file, on_objects=on_objects, **options)

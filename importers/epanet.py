"""EPANET water distribution models (.inp), parsed with WNTR, as a water-supply network.

Junctions, reservoirs and tanks become pipe nodes; pipes, pumps and valves become pipe segments
(`attributes["epanet_type"]` tells them apart), with the link's vertices. Node elevations from the
model are taken as the ground; pipes lie at the default cover (setting CIM_DEFAULT_PIPE_COVER, ground
to crown), since an EPANET model carries no depths.

Everything a simulation needs is kept: each element's WNTR record (SI units: demands and their patterns,
elevations, roughness, pump curves, valve settings, tank levels...) in its attribute `hydraulic`, and the
model-wide parts (options and times, patterns, curves, controls, sources) with the dataset
(`cim_core.network.hydraulics`), so that the stored network exports as the same runnable model.

Placing a model: EPANET coordinates are whatever the modeller drew in. With `crs`, they are taken as
coordinates of that CRS (default: the storage CRS); `scale` multiplies them and `offset` (E, N, in that
CRS) is then added, which places a network drawn in local coordinates, e.g. `--crs EPSG:4547 --offset
501800,3649500` puts the model's origin at that point of the district.
"""
from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from cim_core import sweep
from cim_core.db import get_engine, storage_srid
from cim_core.errors import InputError
from cim_core.model import DatasetInfo
from cim_core.network.columns import Nodes, Segments
from cim_core.network.heights import resolve_heights
from cim_core.network.hydraulics import store_model
from cim_core.network.objects import write_network
from cim_core.settings import get_settings
from cim_core.store import remove_dataset

from .common import ImportResult, already_loaded, expand_sources, import_many, options_key
from .placement import place

SUFFIXES = (".inp",)
RESERVOIR_SIZE = 6.0  # m, the marker drawn for a reservoir (source or sink of unbounded volume)
# Fields of WNTR's element records that the stored network itself carries (name, place, topology).
PLACED = ("name", "coordinates", "vertices", "start_node_name", "end_node_name")


def _read(path: Path):
    import wntr  # heavy; only this importer needs it

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return wntr.network.WaterNetworkModel(str(path))
    except Exception as exc:  # noqa: BLE001 - WNTR raises syntax errors, ValueError, KeyError, RuntimeError...
        text = " ".join(str(exc).replace("(%s)", "").split()).replace(" ,", ",")
        code = re.match(r"\(Error (\d+)\)\s*(.*)", text)
        if code:
            text = f"{code[2]} (EPANET error {code[1]})"
        raise InputError(f"{path}: not a valid EPANET input: {text or type(exc).__name__}") from None


def _placed(path: Path, wn, crs: str | None, offset, scale: float, engine: sa.Engine):
    """(node xy, link vertex lists, source CRS) of a model, placed in the storage CRS."""
    objs = [wn.get_node(n) for n in wn.node_name_list]
    coords = np.array([o.coordinates if o.coordinates is not None else (np.nan, np.nan) for o in objs], float)
    if not np.isfinite(coords).all():
        missing = [o.name for o, c in zip(objs, coords) if not np.isfinite(c).all()]
        raise InputError(f"{path}: {len(missing)} nodes have no [COORDINATES] (first: {missing[0]!r}); "
                         "the network cannot be placed")
    verts = [np.asarray(list(wn.get_link(n).vertices or []), float).reshape(-1, 2) for n in wn.link_name_list]
    all_x = np.concatenate([coords[:, 0]] + [v[:, 0] for v in verts])
    all_y = np.concatenate([coords[:, 1]] + [v[:, 1] for v in verts])
    x, y, crs_used = place(path, all_x, all_y, crs, engine, offset=offset, scale=scale, local_hint=True)
    xy = np.column_stack([x, y])
    node_xy, vert_xy = xy[:len(objs)], xy[len(objs):]
    vert_lists = np.split(vert_xy, np.cumsum([len(v) for v in verts])[:-1]) if verts else []
    return node_xy, vert_lists, crs_used


def _node_attributes(o, kind: str) -> dict:
    a = {"epanet_type": kind, "name": o.name}
    if kind == "junction":
        a.update(elevation=o.elevation, base_demand=o.base_demand)
    elif kind == "tank":
        a.update(elevation=o.elevation, init_level=o.init_level, min_level=o.min_level,
                 max_level=o.max_level, diameter_m=o.diameter)
    else:
        a.update(base_head=o.base_head)
    return a


def _records(wn) -> tuple[dict[str, dict], dict[str, dict], dict]:
    """WNTR's records of the nodes and links (by name, without what the network carries) and the rest of
    the model (options, patterns, curves, controls, sources)."""
    import wntr

    model = wntr.network.to_dict(wn)
    nodes = {r["name"]: {k: v for k, v in r.items() if k not in PLACED} for r in model["nodes"]}
    links = {r["name"]: {k: v for k, v in r.items() if k not in PLACED} for r in model["links"]}
    return nodes, links, {k: model[k] for k in ("options", "patterns", "curves", "controls", "sources")}


def _nodes(wn, node_xy: np.ndarray) -> Nodes:
    """Junctions, tanks and reservoirs: the elevation (a reservoir's head) is the ground; tanks and
    reservoirs are drawn as what they are."""
    names = list(wn.node_name_list)
    objs = [wn.get_node(n) for n in names]
    n = len(objs)
    kind = np.array([o.node_type.lower() for o in objs], object)  # junction | tank | reservoir
    ground = np.array([o.base_head if k == "reservoir" else o.elevation for o, k in zip(objs, kind)], float)
    nodes = Nodes([f"node:{nm}" for nm in names], node_xy, np.full(n, "water", object), kind, ground,
                  np.full(n, np.nan), np.full(n, np.nan), np.ones(n, bool),
                  [_node_attributes(o, k) for o, k in zip(objs, kind)], names=names)
    for i, (o, k) in enumerate(zip(objs, kind)):
        px, py = node_xy[i]
        if k == "tank":  # the tank itself, from its bottom up to its maximum level
            nodes.meshes[i] = sweep.vertical_cylinder(px, py, o.elevation, o.elevation + o.max_level,
                                                      o.diameter / 2, 24)
        elif k == "reservoir":
            nodes.meshes[i] = sweep.box((px, py, o.base_head - RESERVOIR_SIZE / 4), RESERVOIR_SIZE,
                                        RESERVOIR_SIZE / 2)
    return nodes


def _link_attributes(lk, kind: str) -> dict:
    a = {"epanet_type": kind, "name": lk.name, "status": str(lk.initial_status)}
    if kind == "pipe":
        a.update(length_m=lk.length, diameter_m=lk.diameter, roughness=lk.roughness, minor_loss=lk.minor_loss,
                 check_valve=bool(lk.check_valve))
    elif kind == "pump":
        a.update(pump_type=lk.pump_type, speed=lk.base_speed)
        curve = getattr(lk, "pump_curve_name", None)
        if curve:
            a["pump_curve"] = curve
        if lk.pump_type == "POWER":
            a["power"] = lk.power
    else:
        a.update(valve_type=lk.valve_type, diameter_m=lk.diameter, setting=lk.initial_setting)
    return a


def _segments(wn, node_xy: np.ndarray, vert_lists: list[np.ndarray]) -> Segments:
    """Pipes, pumps and valves between their nodes, through their vertices; pumps, which have no
    diameter, are drawn as wide as the widest pipe they join."""
    index = {n: i for i, n in enumerate(wn.node_name_list)}
    links = [wn.get_link(n) for n in wn.link_name_list]
    m = len(links)
    ltype = [lk.link_type.lower() for lk in links]  # pipe | pump | valve (EPANET's link kinds)
    diameter = np.array([getattr(lk, "diameter", np.nan) * 1000 for lk in links], float)
    start = np.array([index[lk.start_node_name] for lk in links], int)
    end = np.array([index[lk.end_node_name] for lk in links], int)
    widest = np.zeros(len(index))
    known = np.isfinite(diameter)
    for idx in (start, end):
        np.maximum.at(widest, idx[known], diameter[known])
    drawn = np.where(np.isfinite(diameter) & (diameter > 0), diameter, np.maximum(widest[start], widest[end]))
    drawn[drawn == 0] = np.nan
    lines = [np.vstack([node_xy[a], v, node_xy[b]]) for a, b, v in zip(start, end, vert_lists)]
    nan = np.full(m, np.nan)
    return Segments(
        [f"{t}:{lk.name}" for t, lk in zip(ltype, links)], lines, np.full(m, "water", object),
        np.full(m, "circular", object), diameter, nan, nan, nan, nan, nan, nan, nan, nan, np.ones(m, bool),
        start, end, [_link_attributes(lk, t) for lk, t in zip(links, ltype)], names=[lk.name for lk in links],
        drawn_mm=drawn, text={"cjj_code": ["JS"] * m})


def import_file(path: str | Path, *, crs: str | None = None, offset: tuple[float, float] | None = None,
                scale: float = 1.0, dataset: str | None = None, engine: sa.Engine | None = None,
                force: bool = False, on_objects: Callable[[int], None] | None = None) -> ImportResult:
    """Import one EPANET .inp file as a water network dataset (default name: the file's stem)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    engine = engine or get_engine()
    name = dataset or path.stem
    options = {"crs": crs, "offset": list(offset) if offset else None, "scale": scale, "dataset": name,
               "srid": storage_srid(engine)}
    sha, done = already_loaded(path, force, options, engine)
    if done:
        return ImportResult(path=str(path), dataset=done["name"], skipped=True)
    wn = _read(path)
    if not wn.node_name_list:
        raise InputError(f"{path}: the model has no nodes")
    node_xy, vert_lists, crs_used = _placed(path, wn, crs, offset, scale, engine)
    nodes, segs = _nodes(wn, node_xy), _segments(wn, node_xy, vert_lists)
    node_rec, link_rec, model = _records(wn)
    for element, a in zip(nodes.names, nodes.attributes):
        a["hydraulic"] = node_rec[element]
    for element, a in zip(segs.names, segs.attributes):
        a["hydraulic"] = link_rec[element]
    cover = get_settings().default_pipe_cover
    kinds = [str(a["epanet_type"]) for a in nodes.attributes + segs.attributes]
    report = {"junctions": kinds.count("junction"), "tanks": kinds.count("tank"),
              "reservoirs": kinds.count("reservoir"), "pipes": kinds.count("pipe"),
              "pumps": kinds.count("pump"), "valves": kinds.count("valve"), "units": str(wn.options.hydraulic.inpfile_units),
              "depth": f"default cover {cover} m below the node elevation", "options": options_key(options)}
    info = DatasetInfo(name=name, kind="epanet", source_path=str(path), sha256=sha, source_crs=crs_used,
                       report=report)
    res = write_network(info, segs, nodes, resolve_heights(segs, nodes, cover), engine=engine,
                        on_objects=on_objects)
    try:
        store_model(name, str(wn.options.hydraulic.inpfile_units), model, engine)
    except BaseException:
        remove_dataset(name, engine)  # nothing half-written stays
        raise
    return ImportResult.written(path, res, info.report)


def import_files(paths, *, workers: int = 1, force: bool = False,
                 on_file: Callable[[ImportResult], None] | None = None,
                 on_objects: Callable[[int], None] | None = None, **options) -> list[ImportResult]:
    return import_many(import_file, expand_sources(paths, SUFFIXES), workers=workers, force=force,
                       on_file=on_file, on_objects=on_objects, **options)

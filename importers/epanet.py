"""EPANET water distribution models (.inp), parsed with WNTR, as a water-supply network.

Junctions, reservoirs and tanks become pipe nodes; pipes, pumps and valves become pipe segments
(`attributes["epanet_type"]` tells them apart), with the link's vertices. Node elevations from the
model are taken as the ground; pipes lie at the default cover (setting CIM_DEFAULT_PIPE_COVER, ground
to crown), since an EPANET model carries no depths.

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
from cim_core.settings import get_settings

from .common import ImportResult, already_loaded, expand_sources, import_many
from .pipes import Heights, Nodes, Segments, place, resolve_heights, write_network

SUFFIXES = (".inp",)
RESERVOIR_SIZE = 6.0  # m, the marker drawn for a reservoir (source or sink of unbounded volume)


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


def _link_lines(start_xy, end_xy, vertices):
    return [np.vstack([a, np.asarray(v, float).reshape(-1, 2), b]) for a, b, v in zip(start_xy, end_xy, vertices)]


def import_file(path: str | Path, *, crs: str | None = None, offset: tuple[float, float] | None = None,
                scale: float = 1.0, dataset: str | None = None, engine: sa.Engine | None = None,
                force: bool = False, progress: Callable[[int], None] | None = None) -> ImportResult:
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
    node_names = list(wn.node_name_list)
    if not node_names:
        raise InputError(f"{path}: the model has no nodes")
    index = {n: i for i, n in enumerate(node_names)}
    objs = [wn.get_node(n) for n in node_names]
    coords = np.array([o.coordinates if o.coordinates is not None else (np.nan, np.nan) for o in objs], float)
    if not np.isfinite(coords).all():
        missing = [n for n, c in zip(node_names, coords) if not np.isfinite(c).all()]
        raise InputError(f"{path}: {len(missing)} nodes have no [COORDINATES] (first: {missing[0]!r}); "
                         "the network cannot be placed")
    link_names = list(wn.link_name_list)
    links = [wn.get_link(n) for n in link_names]
    verts = [list(lk.vertices or []) for lk in links]
    all_x = np.concatenate([coords[:, 0]] + [np.asarray(v, float).reshape(-1, 2)[:, 0] for v in verts])
    all_y = np.concatenate([coords[:, 1]] + [np.asarray(v, float).reshape(-1, 2)[:, 1] for v in verts])
    x, y, crs_used = place(path, all_x, all_y, crs, engine, offset=offset, scale=scale, local_hint=True)
    xy = np.column_stack([x, y])
    node_xy, vert_xy = xy[:len(objs)], xy[len(objs):]
    split = np.cumsum([len(v) for v in verts])[:-1]
    vert_lists = np.split(vert_xy, split) if links else []

    n = len(objs)
    kind = np.array([o.node_type.lower() for o in objs], object)  # junction | tank | reservoir
    ground = np.array([o.base_head if k == "reservoir" else o.elevation for o, k in zip(objs, kind)], float)
    attrs = []
    for o, k in zip(objs, kind):
        a = {"epanet_type": k, "name": o.name}
        if k == "junction":
            a.update(elevation=o.elevation, base_demand=o.base_demand)
        elif k == "tank":
            a.update(elevation=o.elevation, init_level=o.init_level, min_level=o.min_level,
                     max_level=o.max_level, diameter_m=o.diameter)
        else:
            a.update(base_head=o.base_head)
        attrs.append(a)
    nodes = Nodes([f"node:{nm}" for nm in node_names], node_xy, np.full(n, "water", object), kind, ground,
                  np.full(n, np.nan), np.full(n, np.nan), np.ones(n, bool), attrs, names=list(node_names))
    for i, (o, k) in enumerate(zip(objs, kind)):
        px, py = node_xy[i]
        if k == "tank":  # the tank itself, from its bottom up to its maximum level
            nodes.meshes[i] = sweep.vertical_cylinder(px, py, o.elevation, o.elevation + o.max_level,
                                                      o.diameter / 2, 24)
        elif k == "reservoir":
            nodes.meshes[i] = sweep.box((px, py, o.base_head - RESERVOIR_SIZE / 4), RESERVOIR_SIZE,
                                        RESERVOIR_SIZE / 2)

    m = len(links)
    ltype = [lk.link_type.lower() for lk in links]  # pipe | pump | valve (EPANET's link kinds)
    diameter = np.array([getattr(lk, "diameter", np.nan) * 1000 for lk in links], float)
    # pumps have no diameter: drawn as wide as the widest pipe they join
    widest = np.zeros(n)
    for lk, d in zip(links, diameter):
        if np.isfinite(d):
            for nn in (lk.start_node_name, lk.end_node_name):
                widest[index[nn]] = max(widest[index[nn]], d)
    drawn = np.array([d if np.isfinite(d) and d > 0 else
                      max(widest[index[lk.start_node_name]], widest[index[lk.end_node_name]]) or np.nan
                      for lk, d in zip(links, diameter)])
    la = []
    for lk, t in zip(links, ltype):
        a = {"epanet_type": t, "name": lk.name, "status": str(lk.initial_status)}
        if t == "pipe":
            a.update(length_m=lk.length, diameter_m=lk.diameter, roughness=lk.roughness, minor_loss=lk.minor_loss,
                     check_valve=bool(lk.check_valve))
        elif t == "pump":
            a.update(pump_type=lk.pump_type, speed=lk.base_speed)
            curve = getattr(lk, "pump_curve_name", None)
            if curve:
                a["pump_curve"] = curve
            if lk.pump_type == "POWER":
                a["power"] = lk.power
        else:
            a.update(valve_type=lk.valve_type, diameter_m=lk.diameter, setting=lk.initial_setting)
        la.append(a)
    start = np.array([index[lk.start_node_name] for lk in links], int)
    end = np.array([index[lk.end_node_name] for lk in links], int)
    nan = np.full(m, np.nan)
    segs = Segments(
        [f"{t}:{lk.name}" for t, lk in zip(ltype, links)],
        _link_lines(node_xy[start], node_xy[end], vert_lists), np.full(m, "water", object),
        np.full(m, "circular", object), diameter, nan, nan, nan, nan, nan, nan, nan, nan, np.ones(m, bool),
        start, end, la, names=[lk.name for lk in links],
        drawn_mm=drawn, text={"cjj_code": ["JS"] * m})
    hts: Heights = resolve_heights(segs, nodes, get_settings().default_pipe_cover)
    report = {"junctions": int((kind == "junction").sum()), "tanks": int((kind == "tank").sum()),
              "reservoirs": int((kind == "reservoir").sum()), "pipes": ltype.count("pipe"),
              "pumps": ltype.count("pump"), "valves": ltype.count("valve"),
              "units": str(wn.options.hydraulic.inpfile_units),
              "depth": f"default cover {get_settings().default_pipe_cover} m below the node elevation"}
    return write_network(path, name, "epanet", sha, crs_used, options, segs, nodes, hts, [], report, engine, progress)


def import_files(paths, *, workers: int = 1, force: bool = False,
                 progress: Callable[[ImportResult], None] | None = None, **options) -> list[ImportResult]:
    return import_many(import_file, expand_sources(paths, SUFFIXES), workers=workers, force=force,
                       progress=progress, **options)

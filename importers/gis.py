"""GIS layers (GeoJSON, Shapefile, GeoPackage, FlatGeobuf, anything GDAL reads) as city objects.

A layer is read at once into numpy arrays (pyogrio's raw WKB API), transformed with one pyproj call,
repaired, and turned into objects in bulk: buildings become LOD1 solids from the ground to their height,
stored as footprint, zmin, zmax and lod 1 without a mesh (which those determine: the tile builder extrudes
it), polygons of the other kinds flat meshes at ground level, road and river lines a ribbon of their width
when the layer has one. Every source attribute is kept. `--as pipes|pipe-nodes` hands
the layer to importers.pipes.

Heights of buildings, in this order: a height field (auto-detected or --height-field), else floors
x CIM_STOREY_HEIGHT (a floors field, auto-detected or --floors-field), else CIM_DEFAULT_BUILDING_HEIGHT;
each source is counted in the report. The ground is a ground field if present, else the footprint's
lowest z, else 0. An OSM-style `min_height` raises the bottom of the solid above the ground.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import shapely
import sqlalchemy as sa

from cim_core import mesh
from cim_core.crs import check_extent, crs_name, parse_crs, transformer
from cim_core.db import get_engine, storage_srid
from cim_core.errors import InputError
from cim_core.model import CityObject, DatasetInfo, Mesh
from cim_core.settings import get_settings
from cim_core.store import BATCH, write_dataset

from .common import (
    GIS_SUFFIXES,
    ImportResult,
    already_loaded,
    attributes,
    expand_sources,
    feature_keys,
    import_many,
    layers,
    numbers,
    options_key,
)

SUFFIXES = GIS_SUFFIXES
KINDS = ("buildings", "roads", "landuse", "water", "green", "facilities", "pipes", "pipe-nodes")
CLASS_OF = {"buildings": "building", "roads": "road", "landuse": "landuse", "water": "water", "green": "green",
            "facilities": "facility"}
# Layer-name words that tell the kind; checked in this order (pipe_nodes before pipes).
LAYER_WORDS = (
    ("pipe-nodes", ("pipe_node", "pipe-node", "pipenode", "manhole", "管点", "窨井")),
    ("pipes", ("pipe", "pipeline", "管线", "管道")),
    ("buildings", ("building", "bldg", "建筑", "房屋")),
    ("roads", ("road", "street", "道路", "街道")),
    ("landuse", ("landuse", "land_use", "parcel", "compound", "zoning", "用地", "地块", "小区")),
    ("water", ("water", "waterway", "river", "lake", "canal", "水系", "河", "湖")),
    ("green", ("green", "park", "绿地", "公园")),
    ("facilities", ("facilit", "poi", "amenit", "设施")),
)
# Source field names per role, compared case-insensitively, first match wins.
HEIGHT_FIELDS = ("height", "height_m", "measuredheight", "building_height", "bldg_height", "hgt", "高度", "建筑高度")
FLOORS_FIELDS = ("floors", "floors_above", "storeys", "stories", "levels", "building:levels", "building_levels",
                 "num_floors", "floor_count", "nfloors", "层数", "楼层数", "地上层数")
GROUND_FIELDS = ("ground_z", "ground", "ground_height", "ground_elevation", "base_z", "terrainheight", "地面高程")
MIN_HEIGHT_FIELDS = ("min_height",)
WIDTH_FIELDS = ("width_m", "width", "road_width", "宽度", "路宽")
ID_FIELDS = ("id", "uid", "osm_id", "objectid", "gid", "code", "编号")
NAME_FIELDS = ("name", "name_zh", "名称", "label")
# Colours of flat meshes by kind (RGBA 0..1); buildings use the shared roof/wall/ground materials.
KIND_MATERIALS = {
    "roads": {"name": "road", "color": [0.36, 0.36, 0.38, 1.0]},
    "landuse": {"name": "landuse", "color": [0.86, 0.82, 0.72, 1.0]},
    "water": {"name": "water", "color": [0.27, 0.52, 0.80, 1.0]},
    "green": {"name": "green", "color": [0.38, 0.66, 0.32, 1.0]},
    "facilities": {"name": "facility", "color": [0.93, 0.62, 0.22, 1.0]},
}
POLYGONAL, LINEAR, PUNTAL = (3, 6), (1, 2, 5), (0, 4)  # shapely type ids


def guess_kind(layer: str) -> str | None:
    """The kind a layer name tells: Latin words match whole words (or plurals, or long prefixes), Chinese
    words anywhere."""
    low = layer.lower()
    tokens = re.split(r"[^0-9a-z]+", low)

    def hit(w: str) -> bool:
        if not w.isascii() or not w.isalnum():
            return w in low
        return any(t == w or t.rstrip("s") == w or (len(w) >= 6 and t.startswith(w)) for t in tokens)

    return next((kind for kind, words in LAYER_WORDS if any(hit(w) for w in words)), None)


def _find(fields: list[str], candidates: tuple[str, ...], given: str | None, path: Path, role: str) -> str | None:
    if given:
        if given not in fields:
            raise InputError(f"{path}: no field {given!r} for the {role}; fields: {', '.join(fields)}")
        return given
    low = {f.lower(): f for f in fields}
    return next((low[c] for c in candidates if c in low), None)


def _column(fields: list[str], data: list[np.ndarray], field: str | None) -> np.ndarray | None:
    return data[fields.index(field)] if field else None


def _pick_layer(path: Path, layer: str | None, names: list[str] | None = None) -> str:
    names = names if names is not None else [n for n, _ in layers(path)]
    if layer is not None:
        if layer not in names:
            raise InputError(f"{path}: no layer {layer!r}; layers: {', '.join(names)}")
        return layer
    if len(names) != 1:
        raise InputError(f"{path}: {len(names)} layers ({', '.join(names)}); choose one with --layer")
    return names[0]


def feature_count(path: str | Path, layer: str | None = None) -> int:
    """Features in the layer that import_file would read (for progress bars)."""
    path = Path(path)
    return int(pyogrio.read_info(path, layer=_pick_layer(path, layer))["features"])


def _source_crs(path: Path, meta: dict, crs: str | None, report: dict):
    file_crs = meta.get("crs")
    if crs:
        src = parse_crs(crs)
        if file_crs and not parse_crs(file_crs).equals(src):
            report["crs_overridden"] = f"{file_crs} -> {crs_name(src)}"
        return src
    if not file_crs:
        raise InputError(f"{path}: the layer has no coordinate reference system",
                         hint="give it with --crs EPSG:N (e.g. EPSG:4490 for CGCS2000 longitude/latitude)")
    return parse_crs(file_crs)


def _to_storage(geoms: np.ndarray, src, srid: int) -> np.ndarray:
    """Geometries (2D) from the source CRS into the storage CRS, one vectorised pyproj call."""
    horizontal = src.sub_crs_list[0] if src.is_compound else src
    if horizontal.equals(parse_crs(srid)):
        return geoms
    t = transformer(crs_name(horizontal) if horizontal.to_authority() else horizontal.to_wkt(), srid)

    def fn(xy):
        x, y = t.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geoms, fn)


def _repair(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """make_valid where needed; a polygon stays polygonal (a repair may add lines or points: dropped).

    Returns (geometries, repaired mask, unusable mask: had a geometry but nothing usable is left)."""
    present = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    invalid = present & ~shapely.is_valid(geoms)
    out = geoms.copy()
    if invalid.any():
        out[invalid] = shapely.make_valid(geoms[invalid], method="structure", keep_collapsed=False)
        mixed = invalid & np.isin(shapely.get_type_id(geoms), POLYGONAL) & \
            ~np.isin(shapely.get_type_id(out), POLYGONAL)
        if mixed.any():
            parts, idx = shapely.get_parts(out[mixed], return_index=True)
            keep = np.isin(shapely.get_type_id(parts), POLYGONAL)
            merged = np.full(mixed.sum(), None, dtype=object)
            if keep.any():
                polys = shapely.get_parts(parts[keep])  # MultiPolygon parts to Polygons
                owner = np.repeat(idx[keep], shapely.get_num_geometries(parts[keep]))
                uniq = np.unique(owner)
                merged[uniq] = shapely.multipolygons(polys, indices=np.searchsorted(uniq, owner))
            out[mixed] = merged
    usable = ~shapely.is_missing(out) & ~shapely.is_empty(out)
    return out, invalid, present & ~usable


def _ground(fields, data, geoms: np.ndarray, field: str | None) -> np.ndarray:
    n = len(geoms)
    ground = numbers(_column(fields, data, field), n)
    # else the lowest z of a 3D footprint
    has_z = shapely.has_z(geoms)
    if (np.isnan(ground) & has_z).any():
        xyz, idx = shapely.get_coordinates(geoms[has_z], include_z=True, return_index=True)
        zmin = np.full(has_z.sum(), np.nan)
        np.fmin.at(zmin, idx, xyz[:, 2])
        g = ground[has_z]
        ground[has_z] = np.where(np.isnan(g), zmin, g)
    return np.nan_to_num(ground, nan=0.0)


def import_layer(path: str | Path, layer: str | None = None, *, kind: str | None = None, crs: str | None = None,
                 height_field: str | None = None, floors_field: str | None = None, dataset: str | None = None,
                 engine: sa.Engine | None = None, force: bool = False,
                 on_objects: Callable[[int], None] | None = None, scenario: str | None = None,
                 **options) -> ImportResult:
    """Import one layer as one dataset (see the module doc); `kind` is guessed from the layer name if not given.
    `scenario` names the renewal plan the dataset belongs to (cim_core.scenarios); none: the as-is model.

    options go to importers.pipes for kind pipes / pipe-nodes (e.g. field_map, utility).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if kind is not None and kind not in KINDS:
        raise InputError(f"{path}: unknown kind {kind!r}; one of {', '.join(KINDS)}")
    layer_names = [n for n, _ in layers(path)]
    layer = _pick_layer(path, layer, layer_names)
    kind = kind or guess_kind(layer)
    if kind is None:
        raise InputError(f"{path}: cannot tell what layer {layer!r} holds", hint=f"give --as {'|'.join(KINDS)}")
    if kind in ("pipes", "pipe-nodes"):
        from . import pipes  # the pipe network builder owns survey layers
        if scenario is not None:
            raise InputError(f"{path}: --scenario applies to buildings and map layers, not to pipe networks")
        return pipes.import_layer(path, layer, crs=crs, dataset=dataset, engine=engine, force=force,
                                  on_objects=on_objects, **options)
    if options:
        raise InputError(f"{path}: option(s) {', '.join(sorted(options))} apply to pipe layers only")
    engine = engine or get_engine()
    name = dataset or (path.stem if len(layer_names) == 1 or layer == path.stem else f"{path.stem}_{layer}")
    key = {"layer": layer, "kind": kind, "crs": crs, "height_field": height_field, "floors_field": floors_field,
           "dataset": name, "srid": storage_srid(engine)}
    if scenario is not None:
        key["scenario"] = scenario
    sha, done = already_loaded(path, force, key, engine)
    if done:
        return ImportResult(path=str(path), dataset=done["name"], skipped=True)
    meta, geoms, data = _read_layer(path, layer, kind)
    fields = [str(f) for f in meta["fields"]]
    report: dict[str, Any] = {"layer": layer, "kind": kind, "features": len(geoms), "fields": fields,
                              "options": options_key(key)}
    src = _source_crs(path, meta, crs, report)
    geoms, ground, unusable = _placed(path, fields, data, geoms, src, key["srid"], report)
    keys, uids = feature_keys(_column(fields, data, _find(fields, ID_FIELDS, None, path, "id")), len(geoms))
    if len(unusable):
        report["unusable_geometry"] = {"count": len(unusable), "uids": [uids[i] for i in unusable[:20]]}
    name_col = _column(fields, data, _find(fields, NAME_FIELDS, None, path, "name"))
    names = [None if v is None or v != v else str(v) for v in name_col.tolist()] if name_col is not None \
        else [None] * len(geoms)
    meshes, zr = _kind_meshes(path, kind, fields, data, geoms, ground, height_field, floors_field, report)
    info = DatasetInfo(name=name, kind="gis", source_path=str(path), sha256=sha, source_crs=crs_name(src),
                       report=report, scenario=scenario)
    lods = np.where(np.isin(shapely.get_type_id(geoms), POLYGONAL), 1, -1) if kind == "buildings" else \
        np.array([-1 if m is None else 0 for m in meshes])
    objects = _objects(keys, uids, names, CLASS_OF[kind], lods.tolist(), meta, data, geoms, meshes, zr)
    res = write_dataset(info, objects, engine=engine, progress=on_objects)
    return ImportResult.written(path, res, report)


def _read_layer(path: Path, layer: str, kind: str) -> tuple[dict, np.ndarray, list[np.ndarray]]:
    """(meta, geometries, columns) of a layer; a buildings layer must hold polygons."""
    try:
        meta, _, wkb, data = pyogrio.raw.read(path, layer=layer)
    except Exception as exc:
        raise InputError(f"{path}: layer {layer!r} cannot be read: {str(exc).strip().splitlines()[0]}") from None
    try:
        geoms = shapely.from_wkb(wkb, on_invalid="raise")
    except shapely.errors.GEOSException as exc:
        raise InputError(f"{path}: layer {layer!r} has an unreadable geometry: {exc}") from None
    types = shapely.get_type_id(geoms)
    present = types >= 0
    if kind == "buildings" and not np.isin(types[present], POLYGONAL).all():
        bad = shapely.GeometryType(int(types[present][~np.isin(types[present], POLYGONAL)][0])).name
        raise InputError(f"{path}: layer {layer!r} has {bad} geometries; buildings need polygons",
                         hint="choose another --as")
    return meta, geoms, data


def _placed(path: Path, fields: list[str], data: list[np.ndarray], geoms: np.ndarray, src, srid: int,
            report: dict) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(2D geometries in the storage CRS, repaired; ground heights; indices of the features with nothing
    usable left after repair), after checking the extent. The report counts repairs and features without
    geometry."""
    present = shapely.get_type_id(geoms) >= 0
    if present.any():
        check_extent(str(path), src, tuple(shapely.total_bounds(geoms[present])), srid)
    ground = _ground(fields, data, geoms, _find(fields, GROUND_FIELDS, None, path, "ground"))
    geoms = _to_storage(shapely.force_2d(geoms), src, srid)
    geoms, repaired, unusable = _repair(geoms)
    report["repaired"] = int(repaired.sum())
    report["no_geometry"] = int((~present).sum())
    return geoms, ground, np.flatnonzero(unusable).tolist()


def _kind_meshes(path: Path, kind: str, fields: list[str], data: list[np.ndarray], geoms: np.ndarray,
                 ground: np.ndarray, height_field: str | None, floors_field: str | None, report: dict):
    """(meshes, (zmin, zmax)): none for buildings (LOD1 solids that the footprint and heights determine),
    other kinds flat at the ground."""
    if kind == "buildings":  # stored meshless: the tile builder extrudes the footprint from zmin to zmax
        return [None] * len(geoms), _building_heights(path, fields, data, ground, height_field, floors_field,
                                                      report)
    width_field = _find(fields, WIDTH_FIELDS, None, path, "width")
    if width_field:
        report["width_field"] = width_field
    return _flat_meshes(kind, geoms, ground,
                        numbers(_column(fields, data, width_field), len(geoms)) if width_field else None)


def _building_heights(path, fields, data, ground, height_field, floors_field, report):
    """(zbase, ztop) per building, and the count of each height source in the report."""
    s = get_settings()
    n = len(ground)
    hf = _find(fields, HEIGHT_FIELDS, height_field, path, "height")
    ff = _find(fields, FLOORS_FIELDS, floors_field, path, "floors")
    mf = _find(fields, MIN_HEIGHT_FIELDS, None, path, "minimum height")
    height = numbers(_column(fields, data, hf), n)
    floors = numbers(_column(fields, data, ff), n)
    from_field = np.isfinite(height) & (height > 0)
    from_floors = ~from_field & np.isfinite(floors) & (floors > 0)
    h = np.where(from_field, height, np.where(from_floors, floors * s.storey_height, s.default_building_height))
    base = numbers(_column(fields, data, mf), n) if mf else np.zeros(n)
    base = np.where(np.isfinite(base) & (base > 0) & (base < h), base, 0.0)
    report["height"] = {"field": hf, "floors_field": ff, "from_field": int(from_field.sum()),
                        "from_floors": int(from_floors.sum()),
                        "default": int((~from_field & ~from_floors).sum()),
                        "storey_height": s.storey_height, "default_height": s.default_building_height}
    return ground + base, ground + h


def _meshes(geoms: np.ndarray, ok: np.ndarray, build: Callable) -> list[Mesh | None]:
    """Meshes for the geometries where ok, built in one batch; None elsewhere."""
    out: list[Mesh | None] = [None] * len(geoms)
    idx = np.flatnonzero(ok)
    if len(idx):
        for i, m in zip(idx.tolist(), build(geoms[idx], idx).meshes()):
            out[i] = m
    return out


def _flat_meshes(kind: str, geoms: np.ndarray, ground: np.ndarray, width: np.ndarray | None):
    """Flat meshes at the ground: polygons as they are, lines as a ribbon of their width."""
    types = shapely.get_type_id(geoms)
    surface = geoms.copy()
    if width is not None:
        lines = np.isin(types, LINEAR) & np.isfinite(width) & (width > 0)
        surface[lines] = shapely.buffer(geoms[lines], width[lines] / 2, cap_style="flat", join_style="mitre",
                                        mitre_limit=2.0)
    ok = np.isin(shapely.get_type_id(surface), POLYGONAL) & ~shapely.is_empty(surface)
    meshes = _meshes(surface, ok, lambda g, i: mesh.flat(g, ground[i], KIND_MATERIALS[kind]))
    return meshes, (ground, ground)


def _objects(keys, uids, names, cls, lods, meta, data, geoms, meshes, zr) -> Iterator[CityObject]:
    """The city objects; lods: per feature, -1 for none. Their attributes are built a batch at a time, as
    write_dataset takes them: while it COPYs the batch before (store._copy_objects)."""
    zlo, zhi, glist = zr[0].tolist(), zr[1].tolist(), geoms.tolist()
    for start in range(0, len(glist), BATCH):
        stop = min(start + BATCH, len(glist))
        attrs = attributes(meta, [c[start:stop] for c in data], stop - start)
        for i in range(start, stop):
            g = glist[i]
            yield CityObject(key=keys[i], cls=cls, uid=uids[i], name=names[i], attributes=attrs[i - start],
                             lod=lods[i] if lods[i] >= 0 else None, footprint=g, mesh=meshes[i],
                             zmin=zlo[i] if g is not None else None, zmax=zhi[i] if g is not None else None)


def import_file(path: str | Path, *, dataset: str | None = None, engine: sa.Engine | None = None,
                force: bool = False, on_objects: Callable[[int], None] | None = None,
                **options) -> ImportResult:
    """One layer of one file (options: layer, kind, crs, height_field, floors_field; see import_layer)."""
    return import_layer(path, options.pop("layer", None), dataset=dataset, engine=engine, force=force,
                        on_objects=on_objects, **options)


def import_files(paths, *, workers: int = 1, force: bool = False,
                 on_file: Callable[[ImportResult], None] | None = None,
                 on_objects: Callable[[int], None] | None = None, **options) -> list[ImportResult]:
    """Many files (paths, directories, globs), one dataset each."""
    return import_many(import_file, expand_sources(paths, SUFFIXES), workers=workers, force=force,
                       on_file=on_file, on_objects=on_objects, **options)

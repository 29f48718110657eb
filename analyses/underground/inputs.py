"""Checked inputs of the underground analyses: a pit polygon or a section line (GeoJSON in any CRS the
storage CRS's area covers), and a depth; every problem an InputError that says what is wrong."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape

from cim_core.crs import check_extent, crs_name, parse_crs, transform
from cim_core.errors import InputError

MAX_DEPTH_M = 100.0


def _geometry(value: Any, what: str):
    """A shapely geometry from GeoJSON (a geometry, a Feature, or its JSON text) or a shapely geometry."""
    if isinstance(value, shapely.Geometry):
        return value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise InputError(f"{what}: not GeoJSON ({exc.msg})") from None
    if isinstance(value, dict) and value.get("type") == "Feature":
        value = value.get("geometry")
    if not isinstance(value, dict) or "type" not in value:
        raise InputError(f"{what}: expected a GeoJSON geometry")
    try:
        return shape(value)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError, shapely.errors.GEOSException) as exc:
        raise InputError(f"{what}: not a valid GeoJSON geometry ({exc})") from None


def to_storage(geom, crs: str | int | None, srid: int, what: str):
    """The geometry in the storage CRS; refused if it lies outside the storage CRS's area of use."""
    src = parse_crs(crs if crs is not None else srid)
    coords = shapely.get_coordinates(geom)
    if not len(coords) or not np.isfinite(coords).all():
        raise InputError(f"{what}: no usable coordinates")
    check_extent(what, src, tuple(shapely.bounds(geom)), srid)
    if src == parse_crs(srid):
        return geom
    x, y = transform(crs_name(src), srid, coords[:, 0], coords[:, 1])
    return shapely.set_coordinates(geom, np.column_stack([x, y]))


def pit_polygon(value: Any, crs: str | int | None, srid: int):
    """A pit outline: one simple polygon (not empty, not self-intersecting), in the storage CRS."""
    geom = _geometry(value, "polygon")
    if geom.geom_type == "MultiPolygon" and len(geom.geoms) == 1:
        geom = geom.geoms[0]
    if geom.geom_type != "Polygon":
        raise InputError(f"polygon: expected a Polygon, got {geom.geom_type}")
    if geom.is_empty:
        raise InputError("polygon: empty (no area)")
    if not geom.is_valid:
        raise InputError(f"polygon: not a simple polygon ({shapely.is_valid_reason(geom)})",
                         hint="the outline must not cross itself")
    if geom.area <= 0:
        raise InputError("polygon: empty (no area)")
    return shapely.force_2d(to_storage(geom, crs, srid, "polygon"))


def section_line(value: Any, crs: str | int | None, srid: int):
    """A section line: a LineString of at least two distinct points, in the storage CRS."""
    geom = _geometry(value, "line")
    if geom.geom_type != "LineString":
        raise InputError(f"line: expected a LineString, got {geom.geom_type}")
    if len(shapely.get_coordinates(geom)) < 2 or geom.length <= 0:
        raise InputError("line: needs at least two distinct points")
    return shapely.force_2d(to_storage(geom, crs, srid, "line"))


def pit_depth(depth: Any) -> float:
    """A depth below ground in metres, more than 0 and at most MAX_DEPTH_M."""
    try:
        d = float(depth)
    except (TypeError, ValueError):
        raise InputError(f"depth: {depth!r} is not a number") from None
    if not 0 < d <= MAX_DEPTH_M:
        raise InputError(f"depth: {d:g} m is out of range", hint=f"more than 0 and at most {MAX_DEPTH_M:g} m")
    return d

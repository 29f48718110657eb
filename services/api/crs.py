"""CRS handling of OGC API - Features Part 2: CRS URIs, axis order, bboxes and filter geometries.

Coordinates follow each CRS's own axis order, as Part 2 requires: CRS84 is lon/lat, while EPSG:4326
and EPSG:4490 are lat/lon (and EPSG:4547 northing/easting). PostGIS always stores x = easting or
longitude, so such CRSs are flipped on the way in and out.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

import shapely
import sqlalchemy as sa

from cim_core.crs import area_of_use, parse_crs

from .cql2 import FilterError

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{}"
# Geographic CRSs offered besides the storage CRS: WGS 84 and CGCS2000.
GEOGRAPHIC = (4326, 4490)


@dataclass(frozen=True)
class OutCrs:
    uri: str
    srid: int
    swap: bool  # the CRS's first axis is northing / latitude
    geographic: bool

    @property
    def digits(self) -> int:
        return 7 if self.geographic else 3


def supported(storage: int) -> list[str]:
    return [CRS84, *(EPSG_URI.format(s) for s in dict.fromkeys((*GEOGRAPHIC, storage)))]


@lru_cache(maxsize=32)
def _axis_swap(srid: int) -> tuple[bool, bool]:
    crs = parse_crs(srid)
    return crs.axis_info[0].direction in ("north", "south"), crs.is_geographic


def resolve(value: str | None, storage: int, param: str) -> OutCrs:
    """A supported CRS from a `crs`, `bbox-crs` or `filter-crs` value (URI, [EPSG:n] or EPSG:n)."""
    if value is None or value.strip() in ("", CRS84, "[OGC:CRS84]", "OGC:CRS84", "CRS84"):
        return OutCrs(CRS84, 4326, False, True)
    text = value.strip()
    m = re.fullmatch(r"(?:https?://www\.opengis\.net/def/crs/EPSG/0/|\[?EPSG:)(\d{1,6})\]?", text)
    srid = int(m.group(1)) if m else None
    if srid not in (*GEOGRAPHIC, storage):
        raise FilterError(f"{param}: unsupported CRS {text[:100]!r}",
                          hint="use " + ", ".join(supported(storage)))
    swap, geographic = _axis_swap(srid)
    return OutCrs(EPSG_URI.format(srid), srid, swap, geographic)


@lru_cache(maxsize=8)
def _valid_area(storage: int) -> tuple[float, float, float, float]:
    """Where transforms into the storage CRS are meaningful: its area of use with a margin, lon/lat."""
    w, s, e, n = area_of_use(parse_crs(storage))
    return max(w - 1.0, -180.0), max(s - 1.0, -90.0), min(e + 1.0, 180.0), min(n + 1.0, 90.0)


def to_storage(geom: shapely.Geometry, crs: OutCrs, storage: int) -> sa.ColumnElement:
    """A filter geometry (in `crs`, in its axis order) as SQL in the storage CRS.

    Geographic input is clipped to the storage CRS's area of use first: PROJ cannot project the
    whole globe into a Gauss-Kruger zone, and nothing is stored outside it anyway.
    """
    if crs.swap:
        geom = shapely.transform(geom, lambda xy: xy[:, ::-1])
    if crs.srid == storage:
        return sa.func.ST_GeomFromWKB(sa.literal(shapely.to_wkb(geom), sa.LargeBinary), storage)
    if crs.geographic:
        geom = shapely.clip_by_rect(geom, *_valid_area(storage)) if geom.geom_type != "Point" else geom
        w, s, e, n = _valid_area(storage)
        if geom.geom_type == "Point" and not (w <= geom.x <= e and s <= geom.y <= n):
            geom = shapely.Point()
    wkb = sa.literal(shapely.to_wkb(geom), sa.LargeBinary)
    return sa.func.ST_Transform(sa.func.ST_GeomFromWKB(wkb, crs.srid), storage)


def parse_bbox(text: str, crs: OutCrs) -> shapely.Geometry:
    """The `bbox` parameter: 4 or 6 comma-separated numbers in `crs` axis order, as a box."""
    try:
        nums = [float(v) for v in text.split(",")]
    except ValueError:
        raise FilterError(f"bbox: {text[:100]!r} is not 4 or 6 comma-separated numbers") from None
    if len(nums) not in (4, 6) or not all(math.isfinite(v) for v in nums):
        raise FilterError(f"bbox: {text[:100]!r} is not 4 or 6 comma-separated numbers")
    x1, y1, x2, y2 = nums if len(nums) == 4 else (nums[0], nums[1], nums[3], nums[4])
    if x1 > x2 or y1 > y2:
        raise FilterError(f"bbox: the lower corner ({x1}, {y1}) lies above the upper corner ({x2}, {y2})")
    if crs.geographic:
        lon = (y1, y2) if crs.swap else (x1, x2)
        lat = (x1, x2) if crs.swap else (y1, y2)
        if min(lon) < -180 or max(lon) > 180 or min(lat) < -90 or max(lat) > 90:
            raise FilterError(f"bbox: {text[:100]!r} lies outside longitude -180..180, latitude -90..90")
    return shapely.box(x1, y1, x2, y2)


def output_geometry(geom: sa.ColumnElement, crs: OutCrs, storage: int) -> sa.ColumnElement:
    """GeoJSON of a storage-CRS geometry in the requested CRS, rounded to its precision."""
    if crs.srid != storage:
        geom = sa.func.ST_Transform(geom, crs.srid)
    if crs.swap:
        geom = sa.func.ST_FlipCoordinates(geom)
    return sa.func.ST_AsGeoJSON(geom, crs.digits)

"""Coordinate reference systems: parsing, vectorised transforms and area-of-use checks.

Every transform here is built with always_xy=True, so geographic CRSs whose official axis
order is latitude first (CGCS2000 EPSG:4490, WGS 84 EPSG:4326) take and give (lon, lat).
"""
from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from pyproj.database import query_utm_crs_info
from pyproj.aoi import AreaOfInterest

from .errors import GeoreferenceError, InputError

CRS84 = "OGC:CRS84"
# CGCS2000 3-degree Gauss-Kruger zones, central meridian given (no zone prefix): EPSG:4534 is 75E.
_CGCS2000_3DEG_FIRST = (4534, 75)
# Tolerance around a CRS's area of use, in degrees: districts on a zone edge are common.
AREA_MARGIN_DEG = 0.5


@lru_cache(maxsize=256)
def parse_crs(value: str | int) -> CRS:
    """A CRS from 'EPSG:4547', '4547', 4547, 'CRS84', an OGC URI or WKT."""
    text = str(value).strip()
    m = re.fullmatch(r"(?:https?://www\.opengis\.net/def/crs/)?(?:EPSG/0/|EPSG:+|epsg:+)?(\d+)", text)
    try:
        if m:
            return CRS.from_epsg(int(m.group(1)))
        if text.upper() in ("CRS84", "OGC:CRS84", "HTTP://WWW.OPENGIS.NET/DEF/CRS/OGC/1.3/CRS84"):
            return CRS.from_user_input("OGC:CRS84")
        return CRS.from_user_input(text)
    except CRSError as exc:
        raise InputError(f"unknown CRS {text!r}: {exc}", hint="give it as EPSG:N") from None


def crs_name(crs: CRS) -> str:
    """'EPSG:4547' where the CRS has an EPSG code, else its name."""
    auth = crs.to_authority()
    return f"{auth[0]}:{auth[1]}" if auth else crs.name


@lru_cache(maxsize=256)
def transformer(src: str | int, dst: str | int) -> Transformer:
    return Transformer.from_crs(parse_crs(src), parse_crs(dst), always_xy=True)


def transform(src: str | int, dst: str | int, x, y, z=None):
    """Vectorised transform of numpy arrays; returns (x, y) or (x, y, z)."""
    t = transformer(src, dst)
    if z is None:
        return t.transform(np.asarray(x, float), np.asarray(y, float))
    return t.transform(np.asarray(x, float), np.asarray(y, float), np.asarray(z, float))


def to_lonlat(srid: int, x, y):
    return transform(srid, 4326, x, y)


def to_ecef(srid: int, xyz: np.ndarray) -> np.ndarray:
    """(N, 3) storage-CRS coordinates with heights to earth-centred EPSG:4978 (float64)."""
    xyz = np.asarray(xyz, dtype=np.float64)
    lon, lat = to_lonlat(srid, xyz[:, 0], xyz[:, 1])
    x, y, z = transformer(4979, 4978).transform(lon, lat, xyz[:, 2])
    return np.column_stack([x, y, z])


def area_of_use(crs: CRS) -> tuple[float, float, float, float]:
    """(west, south, east, north) in degrees; the whole world when the CRS gives none."""
    aou = crs.area_of_use
    if aou is None:
        return (-180.0, -90.0, 180.0, 90.0)
    return (aou.west, aou.south, aou.east, aou.north)


def suggest_crs(lon: float, lat: float) -> str:
    """A projected CRS in metres that fits a place: CGCS2000 3-degree zones in China, else a UTM zone."""
    if 73.5 <= lon <= 135.0 and 18.0 <= lat <= 53.6:
        first, cm0 = _CGCS2000_3DEG_FIRST
        cm = int(round(lon / 3.0) * 3)
        return f"EPSG:{first + (cm - cm0) // 3}"
    # ETRS89 / UTM within Europe (what European data comes in), WGS 84 / UTM elsewhere.
    for datum in ("ETRS89", "WGS 84"):
        infos = query_utm_crs_info(datum_name=datum, area_of_interest=AreaOfInterest(lon, lat, lon, lat))
        plain = [i for i in infos if re.fullmatch(datum + r" / UTM zone \d+[NS]", i.name)]  # not axis variants
        if plain:
            return f"EPSG:{plain[0].code}"
    return "a projected CRS of that place"


def check_extent(source: str, src_crs: CRS, bounds: tuple[float, float, float, float], storage_srid: int) -> None:
    """Refuse a source whose extent (in its own CRS) lies outside the storage CRS's area of use."""
    minx, miny, maxx, maxy = bounds
    if not np.all(np.isfinite(bounds)):
        raise InputError(f"{source}: no usable coordinates")
    xs = np.array([minx, maxx, minx, maxx, (minx + maxx) / 2])
    ys = np.array([miny, miny, maxy, maxy, (miny + maxy) / 2])
    lon, lat = transform(crs_name(src_crs) if src_crs.to_authority() else src_crs.to_wkt(), 4326, xs, ys)
    storage = parse_crs(storage_srid)
    w, s, e, n = area_of_use(storage)
    m = AREA_MARGIN_DEG
    inside = np.isfinite(lon).all() and (lon >= w - m).all() and (lon <= e + m).all() \
        and (lat >= s - m).all() and (lat <= n + m).all()
    if inside:
        return
    looks_geographic = src_crs.is_projected and -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90
    if looks_geographic:
        raise GeoreferenceError(
            f"{source}: coordinates ({minx:.4f}, {miny:.4f}) look like longitude/latitude but the source "
            f"CRS is {crs_name(src_crs)} (projected, in metres), so they fall outside "
            f"EPSG:{storage_srid}'s area of use",
            hint="give --crs EPSG:4490 (CGCS2000) or EPSG:4326 (WGS 84)",
        )
    clon, clat = float(lon[-1]), float(lat[-1])
    where = f"around {clon:.3f}E {clat:.3f}N" if np.isfinite(clon) and np.isfinite(clat) else "nowhere valid"
    raise GeoreferenceError(
        f"{source}: extent lies {where}, outside the area of use of the storage CRS EPSG:{storage_srid} "
        f"({w:.1f}..{e:.1f}E, {s:.1f}..{n:.1f}N)",
        hint=(f"check the source CRS, or load it into a database created for that place: "
              f"CIM_SRID={fit.split(':')[-1]} ({fit})" if (fit := suggest_crs(clon, clat)).startswith("EPSG") else
              "check the source CRS") if np.isfinite(clon) and np.isfinite(clat) else "check the source CRS",
    )

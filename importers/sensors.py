"""Sensors from CSV or GeoJSON, registered on their assets (cim_core.sensors).

CSV columns: code, kind, unit (optional), period_s (optional, 60), asset (key or uid of a city object,
optional), x, y, z (optional; in --crs, default the storage CRS), name (optional). A row without x and
y sits at its asset. GeoJSON: point features (RFC 7946 lon/lat) whose properties carry the same names.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from pyproj import Transformer

from cim_core.db import get_engine, storage_srid
from cim_core.errors import InputError
from cim_core.sensors import SensorRecord, register_sensors

SUFFIXES = (".csv", ".geojson", ".json")
KNOWN = {"code", "kind", "unit", "period_s", "asset", "x", "y", "z", "name"}


def _float(v, what: str, code: str) -> float | None:
    if v is None or v == "":
        return None
    try:
        return float(str(v).replace(",", ".") if isinstance(v, str) else v)
    except ValueError:
        raise InputError(f"sensor {code}: {what} {v!r} is not a number") from None


def _record(props: dict, xyz: tuple | None) -> SensorRecord:
    code = str(props.get("code") or "").strip()
    period = _float(props.get("period_s"), "period_s", code)
    return SensorRecord(code=code, kind=str(props.get("kind") or "").strip(), unit=props.get("unit") or None,
                        period_s=period if period is not None else 60.0, asset=props.get("asset") or None,
                        position=xyz, name=props.get("name") or None,
                        attributes={k: v for k, v in props.items() if k not in KNOWN and v not in (None, "")})


def read_sensors(path: str | Path, srid: int, crs: str | None = None) -> list[SensorRecord]:
    """The sensors of a file, positions transformed to EPSG:`srid`."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise InputError(f"{path.name}: sensors come as CSV or GeoJSON")
    geojson = path.suffix.lower() != ".csv"
    src = "OGC:CRS84" if geojson and not crs else (crs or f"EPSG:{srid}")
    to = Transformer.from_crs(src, f"EPSG:{srid}", always_xy=True)
    out = []
    if geojson:
        doc = json.loads(path.read_text(encoding="utf-8"))
        for f in doc.get("features", []):
            g = f.get("geometry")
            xyz = None
            if g:
                if g.get("type") != "Point":
                    raise InputError(f"{path.name}: sensors are points, not {g.get('type')}")
                lon, lat, *z = g["coordinates"]
                x, y = to.transform(lon, lat)
                xyz = (x, y, float(z[0]) if z else 0.0)
            out.append(_record(f.get("properties") or {}, xyz))
        return out
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            code = row.get("code", "")
            x, y = _float(row.get("x"), "x", code), _float(row.get("y"), "y", code)
            xyz = None
            if x is not None and y is not None:
                tx, ty = to.transform(x, y)
                xyz = (tx, ty, _float(row.get("z"), "z", code) or 0.0)
            out.append(_record(row, xyz))
    return out


def import_file(path: str | Path, *, dataset: str | None = None, crs: str | None = None, engine=None) -> dict[str, int]:
    """Register the sensors of a file in dataset `dataset` (default: the file's stem); {code: object id}."""
    engine = engine or get_engine()
    records = read_sensors(path, storage_srid(engine), crs)
    if not records:
        raise InputError(f"{Path(path).name}: no sensors")
    return register_sensors(records, dataset or Path(path).stem, str(path), engine=engine)

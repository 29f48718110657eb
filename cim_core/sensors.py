"""Sensors: city objects of class `sensor` bound to an asset, registered by code.

Registering again updates a sensor in place: its object id, which its readings carry, never changes.
A sensor without a position takes its asset's; its asset is named by key or uid.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from .db import get_engine
from .errors import InputError
from .store import dumps

# kind -> default unit
KINDS = {"gas": "%LEL", "pressure": "MPa", "flow": "m3/h", "level": "m", "temperature": "degC",
         "tilt": "deg", "vibration": "mm/s"}


@dataclass
class SensorRecord:
    code: str
    kind: str
    unit: str | None = None
    period_s: float = 60.0
    asset: str | None = None
    position: tuple[float, float, float] | None = None  # storage CRS
    name: str | None = None
    attributes: dict = field(default_factory=dict)

    def check(self) -> None:
        if not self.code or "/" in self.code or "+" in self.code or "#" in self.code:
            raise InputError(f"sensor code {self.code!r} is empty or has a character MQTT topics reserve (/ + #)")
        if self.kind not in KINDS:
            raise InputError(f"sensor {self.code}: unknown kind {self.kind!r}", hint=f"kinds: {', '.join(KINDS)}")
        if not self.period_s > 0:
            raise InputError(f"sensor {self.code}: the sampling period must be positive")


_ASSET = sa.text("select id from city_objects where (key = :a or uid = :a) and class <> 'sensor' order by id limit 1")
_ASSET_POINT = sa.text(
    "select coalesce(n.geom, st_force3d(st_pointonsurface(o.footprint), coalesce(o.zmin, 0))) "
    "from city_objects o left join pipe_nodes n on n.object_id = o.id where o.id = :i")
_OBJECT = sa.text(
    "insert into city_objects (dataset_id, key, class, name, attributes, footprint, zmin, zmax) "
    "values (:d, :code, 'sensor', :name, cast(:attrs as jsonb), st_force2d(cast(:g as geometry)), st_z(cast(:g as geometry)), st_z(cast(:g as geometry))) "
    "on conflict (dataset_id, key) do update set name = excluded.name, attributes = excluded.attributes, "
    "footprint = excluded.footprint, zmin = excluded.zmin, zmax = excluded.zmax returning id")
_SENSOR = sa.text(
    "insert into sensors (object_id, code, asset_id, kind, unit, period_s, geom) "
    "values (:id, :code, :asset, :kind, :unit, :period, cast(:g as geometry)) on conflict (object_id) do update set "
    "asset_id = excluded.asset_id, kind = excluded.kind, unit = excluded.unit, period_s = excluded.period_s, "
    "geom = excluded.geom")


def _geometry(c: sa.Connection, rec: SensorRecord, asset_id: int | None, srid: int):
    if rec.position is not None:
        x, y, z = rec.position
        return c.scalar(sa.text("select st_setsrid(st_makepoint(:x, :y, :z), :s)"), {"x": x, "y": y, "z": z, "s": srid})
    if asset_id is None:
        raise InputError(f"sensor {rec.code}: neither a position nor an asset")
    return c.scalar(_ASSET_POINT, {"i": asset_id})


def register_sensors(records: list[SensorRecord], dataset: str = "sensors", source_path: str | None = None,
                     engine: sa.Engine | None = None) -> dict[str, int]:
    """Create or update sensors in one transaction; returns {code: object id}."""
    engine = engine or get_engine()
    for r in records:
        r.check()
    out: dict[str, int] = {}
    with engine.begin() as c:
        srid = int(c.scalar(sa.text("select value from cim_meta where key = 'srid'")))
        ds = c.scalar(sa.text(
            "insert into datasets (name, kind, source_path) values (:n, 'sensors', :p) on conflict (name) "
            "do update set imported_at = now(), source_path = excluded.source_path returning id"),
            {"n": dataset, "p": source_path})
        for r in records:
            taken = c.scalar(sa.text("select o.dataset_id from sensors s join city_objects o on o.id = s.object_id "
                                     "where s.code = :c"), {"c": r.code})
            if taken is not None and taken != ds:
                raise InputError(f"sensor code {r.code} is registered by another dataset")
            asset_id = c.scalar(_ASSET, {"a": r.asset}) if r.asset else None
            if r.asset and asset_id is None:
                raise InputError(f"sensor {r.code}: no city object with key or uid {r.asset!r}")
            g = _geometry(c, r, asset_id, srid)
            attrs = {**r.attributes, "code": r.code, "kind": r.kind, "unit": r.unit or KINDS[r.kind],
                     "period_s": r.period_s}
            oid = c.scalar(_OBJECT, {"d": ds, "code": r.code, "name": r.name, "attrs": dumps(attrs).decode(), "g": g})
            c.execute(_SENSOR, {"id": oid, "code": r.code, "asset": asset_id, "kind": r.kind,
                                "unit": r.unit or KINDS[r.kind], "period": r.period_s, "g": g})
            out[r.code] = oid
        c.execute(sa.text("update datasets set counts = jsonb_build_object('sensor', "
                          "(select count(*) from city_objects where dataset_id = :d)) where id = :d"), {"d": ds})
    return out

"""Indicator sets as data: one TOML file per set, read and checked here.

A set file has `[set]` (id, names, source), `[classes.<name>]` (what in the model each input is: a
city-object class with attribute filters and optional footprint-area bounds), `[units.<level>]`
(the objects that are the units of a level; the district needs none) and `[[indicators]]`. Every error
is one line naming the file, the indicator and the field.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cim_core.errors import InputError

DATA = Path(__file__).parent / "data"
LEVELS = {"城区": "district", "街区": "street", "社区": "community", "小区": "compound"}
DIRECTIONS = (">=", "<=")
# The parameters each computation kind needs: name -> (type, required).
KIND_PARAMS: dict[str, dict[str, tuple[type, bool]]] = {
    "coverage": {"land": (str, True), "services": (list, True), "distance": (str, False),
                 "objects": (str, False)},
    "count": {"of": (str, True)},
    "length_ratio": {"of": (str, True), "over": (str, True)},
    "density": {"of": (str, True), "measure": (str, False)},
    "per_capita_area": {"of": (str, True), "population": (str, True), "area_attribute": (str, False),
                        "population_attribute": (str, False), "persons_per_household": (float, False)},
    "life_circle": {"of": (str, True), "bands": (list, True)},
    "built_before": {"of": (str, True), "year": (int, True), "year_attribute": (str, False),
                     "weight": (str, False), "buildings": (str, False), "floors_attribute": (str, False)},
    "past_design_life": {"of": (str, True)},
    "renewal_progress": {"of": (str, True), "done_attribute": (str, True), "planned_km": (float, False),
                         "plan_attribute": (str, False), "since": (int, False)},
    "area_ratio": {"of": (str, True)},
    "outside_radius": {"of": (str, True), "services": (list, True)},
    "spacing": {"of": (str, True), "along": (str, True), "max_gap": (float, True), "snap": (float, True)},
}
CLASS_PARAMS = ("land", "of", "over", "population", "objects", "along", "buildings")
POSITIVE_PARAMS = ("planned_km", "max_gap", "snap", "persons_per_household")
DISTANCES = ("network", "straight")
MEASURES = ("length", "count")


@dataclass(frozen=True)
class Selector:
    """Objects of one city-object class whose attributes match `where` (a value or a list of values), that
    carry every attribute in `has`, and whose footprint area lies in [min_area, max_area) m2."""
    name: str
    cls: str
    where: dict[str, Any] = field(default_factory=dict)
    has: tuple[str, ...] = ()
    min_area: float | None = None
    max_area: float | None = None
    source: str = ""
    lacks: tuple[str, ...] = ()  # attributes that must be absent
    min_lod: int | None = None  # objects with a 3D model of at least this level of detail


@dataclass(frozen=True)
class Service:
    facility: str
    radius: float


@dataclass(frozen=True)
class Indicator:
    id: str
    name_zh: str
    name_en: str
    level: str  # 城区 | 街区 | 社区 | 小区
    element: str
    kind: str
    params: dict[str, Any]
    unit: str
    target: float | None
    direction: str
    source: str

    @property
    def services(self) -> list[Service]:
        return [Service(s["facility"], float(s["radius"])) for s in self.params.get("services", [])]

    def passes(self, value: float | None) -> bool | None:
        if value is None or self.target is None:
            return None
        return bool(value >= self.target if self.direction == ">=" else value <= self.target)

    def as_json(self) -> dict:
        return {"id": self.id, "name_zh": self.name_zh, "name_en": self.name_en, "level": self.level,
                "element": self.element, "kind": self.kind, "params": self.params, "unit": self.unit,
                "target": self.target, "direction": self.direction, "source": self.source}


@dataclass(frozen=True)
class IndicatorSet:
    id: str
    name: str
    source: str
    path: str
    classes: dict[str, Selector]
    units: dict[str, Selector]
    indicators: list[Indicator]
    cell_m: float = 20.0

    def indicator(self, ident: str) -> Indicator:
        for ind in self.indicators:
            if ind.id == ident:
                return ind
        raise InputError(f"{self.path}: no indicator {ident!r}")

    def as_json(self) -> dict:
        return {"id": self.id, "name": self.name, "source": self.source, "path": self.path,
                "classes": {k: {"class": s.cls, "where": s.where, "has": list(s.has), "min_area": s.min_area, "max_area": s.max_area,
                                "source": s.source} for k, s in self.classes.items()},
                "indicators": [i.as_json() for i in self.indicators]}


def _fail(path: str, indicator: str, fld: str, why: str) -> InputError:
    return InputError(f"{path}: indicator {indicator}: field {fld}: {why}")


def _selector(path: str, name: str, raw: Any, what: str) -> Selector:
    if not isinstance(raw, dict) or not isinstance(raw.get("class"), str):
        raise InputError(f"{path}: {what} {name}: field class: missing or not a string")
    lo, hi = raw.get("min_area"), raw.get("max_area")
    for key, v in (("min_area", lo), ("max_area", hi)):
        if v is not None and (not isinstance(v, (int, float)) or v < 0):
            raise InputError(f"{path}: {what} {name}: field {key}: must be a number >= 0, not {v!r}")
    for key in ("has", "lacks"):
        v = raw.get(key, [])
        if not isinstance(v, list) or not all(isinstance(h, str) for h in v):
            raise InputError(f"{path}: {what} {name}: field {key}: must be a list of attribute names")
    lod = raw.get("min_lod")
    if lod is not None and (not isinstance(lod, int) or lod < 0):
        raise InputError(f"{path}: {what} {name}: field min_lod: must be an integer >= 0, not {lod!r}")
    return Selector(name, raw["class"], dict(raw.get("where", {})), tuple(raw.get("has", [])), lo, hi,
                    str(raw.get("source", "")), tuple(raw.get("lacks", [])), lod)


def _tables(path: str, ident: str, name: str, rows: list, what: str) -> None:
    """A list of tables, each with a positive `radius` (services, life-circle bands)."""
    if not rows:
        raise _fail(path, ident, name, f"needs at least one {what}")
    for k, s in enumerate(rows):
        if not isinstance(s, dict):
            raise _fail(path, ident, f"{name}[{k}]", f"must be a table {what}")
        radius = s.get("radius")
        if not isinstance(radius, (int, float)) or isinstance(radius, bool) or radius <= 0:
            raise _fail(path, ident, f"{name}[{k}].radius", f"must be a positive distance in m, not {radius!r}")


def _check_services(path: str, ident: str, services: list, classes: dict) -> None:
    _tables(path, ident, "services", services, "{facility, radius}")
    for k, s in enumerate(services):
        if s.get("facility") not in classes:
            raise _fail(path, ident, f"services[{k}].facility", f"unknown facility class {s.get('facility')!r}")


def _check_bands(path: str, ident: str, bands: list, classes: dict) -> None:
    """Life-circle bands: [{radius, classes = [facility class, ...]}, ...]."""
    _tables(path, ident, "bands", bands, "{radius, classes}")
    for k, b in enumerate(bands):
        names = b.get("classes")
        if not isinstance(names, list) or not names:
            raise _fail(path, ident, f"bands[{k}].classes", "must be a non-empty list of facility classes")
        for name in names:
            if name not in classes:
                raise _fail(path, ident, f"bands[{k}].classes", f"unknown facility class {name!r}")


def _check_params(path: str, ident: str, kind: str, params: dict, classes: dict) -> None:
    spec = KIND_PARAMS[kind]
    for name, (typ, required) in spec.items():
        if name not in params:
            if required:
                raise _fail(path, ident, name, f"missing (kind {kind} needs {', '.join(spec)})")
            continue
        ok = (int, float) if typ is float else typ
        if not isinstance(params[name], ok) or isinstance(params[name], bool):
            raise _fail(path, ident, name, f"must be a {typ.__name__}")
        if name in POSITIVE_PARAMS and params[name] <= 0:
            raise _fail(path, ident, name, f"must be positive, not {params[name]!r}")
    for name in params:
        if name not in spec:
            raise _fail(path, ident, name, f"not a parameter of kind {kind} ({', '.join(spec)})")
    for name in CLASS_PARAMS:
        if name in params and params[name] not in classes:
            raise _fail(path, ident, name, f"unknown facility class {params[name]!r}")
    if kind in ("coverage", "outside_radius"):
        _check_services(path, ident, params["services"], classes)
    if kind == "life_circle":
        _check_bands(path, ident, params["bands"], classes)
    if kind == "renewal_progress" and ("planned_km" in params) == ("plan_attribute" in params):
        raise _fail(path, ident, "planned_km", "give either planned_km (a fixed plan) or plan_attribute")
        if params.get("distance", "network") not in DISTANCES:
            raise _fail(path, ident, "distance", f"must be one of {', '.join(DISTANCES)}")
    if kind == "density" and params.get("measure", "length") not in MEASURES:
        raise _fail(path, ident, "measure", f"must be one of {', '.join(MEASURES)}")


def _indicator(path: str, k: int, raw: dict, classes: dict) -> Indicator:
    ident = raw.get("id") if isinstance(raw.get("id"), str) else f"#{k + 1}"
    for name in ("id", "name_zh", "name_en", "level", "kind", "unit", "source"):
        if not isinstance(raw.get(name), str) or not raw[name]:
            raise _fail(path, ident, name, "missing or not a string")
    if raw["kind"] not in KIND_PARAMS:
        raise _fail(path, ident, "kind", f"unknown computation kind {raw['kind']!r} ({', '.join(KIND_PARAMS)})")
    if raw["level"] not in LEVELS:
        raise _fail(path, ident, "level", f"must be one of {', '.join(LEVELS)}")
    target = raw.get("target")
    if target is not None and (not isinstance(target, (int, float)) or isinstance(target, bool)):
        raise _fail(path, ident, "target", f"must be a number, not {target!r}")
    direction = raw.get("direction", ">=")
    if direction not in DIRECTIONS:
        raise _fail(path, ident, "direction", f"must be one of {', '.join(DIRECTIONS)}")
    params = dict(raw.get("params", {}))
    _check_params(path, ident, raw["kind"], params, classes)
    return Indicator(ident, raw["name_zh"], raw["name_en"], raw["level"], str(raw.get("element", "")),
                     raw["kind"], params, raw["unit"], None if target is None else float(target), direction,
                     raw["source"])


def parse(text: str, path: str) -> IndicatorSet:
    """An indicator set from TOML text; `path` names it in errors."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path}: not valid TOML: {e}") from None
    meta = raw.get("set", {})
    classes = {n: _selector(path, n, v, "class") for n, v in raw.get("classes", {}).items()}
    units = {}
    for level, v in raw.get("units", {}).items():
        if level not in LEVELS.values():
            raise InputError(f"{path}: units {level}: not a unit level ({', '.join(LEVELS.values())})")
        units[level] = _selector(path, level, v, "units")
    indicators = [_indicator(path, k, r, classes) for k, r in enumerate(raw.get("indicators", []))]
    ids = [i.id for i in indicators]
    dup = next((i for i in ids if ids.count(i) > 1), None)
    if dup:
        raise _fail(path, dup, "id", "appears twice")
    cell = meta.get("cell_m", 20.0)
    if not isinstance(cell, (int, float)) or cell <= 0:
        raise InputError(f"{path}: set: field cell_m: must be a positive size in m")
    return IndicatorSet(str(meta.get("id", Path(path).stem)), str(meta.get("name", "")),
                        str(meta.get("source", "")), path, classes, units, indicators, float(cell))


def load(path: str | Path | None = None) -> IndicatorSet:
    """An indicator set file (default: the national base set shipped in data/)."""
    p = Path(path) if path else DATA / "national_2022.toml"
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"{p}: cannot read indicator set ({e.strerror})") from None
    return parse(text, str(p))

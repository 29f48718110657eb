"""Yearly runs of an indicator set: values per unit stored with the run's provenance, the problem list
(问题清单) as the run's findings, and the comparison of two years."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import shapely
import sqlalchemy as sa

from cim_core.db import get_engine, storage_srid
from cim_core.errors import InputError, NotFoundError
from cim_core.runs import Finding, now, record_run
from cim_core.store import dumps

from . import definitions
from .definitions import LEVELS, Indicator, IndicatorSet
from .inputs import ModelInputs
from . import assets, kinds, lifecircle, safety
from .kinds import Value

KINDS = {**kinds.KINDS, **assets.KINDS, **safety.KINDS, **lifecircle.KINDS}
# What an object behind a missed target is, by computation kind (default: outside the service radius).
BEHIND = {"life_circle": "生活圈设施不全", "outside_radius": "不在保护半径内", "spacing": "设施间距超标",
          "past_design_life": "超过设计使用年限", "renewal_progress": "计划改造未完成", "built_before": "建成年代较早"}

ANALYSIS = "healthcheck"


@dataclass
class HealthRun:
    run_id: int
    year: int
    values: list[tuple[Indicator, Value]]
    problems: int

    def value(self, indicator: str, level: str = "district", unit: str | None = None) -> Value:
        for ind, v in self.values:
            if ind.id == indicator and v.unit.level == level and (unit is None or v.unit.key == unit):
                return v
        raise NotFoundError(f"no value of {indicator} for {level} {unit or ''}".strip())


def compute(iset: IndicatorSet, inputs: ModelInputs, only: list[str] | None = None) -> list[tuple[Indicator, Value]]:
    """Every indicator (or those named) for the units of its level and for the whole district."""
    chosen = [iset.indicator(i) for i in only] if only else iset.indicators
    units = {level: inputs.units(level) for level in ("district", *iset.units)}
    out = []
    for ind in chosen:
        level = LEVELS[ind.level]
        # compound indicators are summed up for the streets too
        todo = units["district"] + (units.get("street", []) if level == "compound" else []) + \
            (units.get(level, []) if level != "district" else [])
        out += [(ind, v) for v in KINDS[ind.kind](ind, todo, inputs)]
    return out


def _fmt(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".")


def problems_of(values: list[tuple[Indicator, Value]]) -> list[Finding]:
    """A finding for every unit that misses its target, and one for each object behind it."""
    found = []
    for ind, v in values:
        if ind.passes(v.value) is not False:
            continue
        where = shapely.point_on_surface(v.unit.geom)
        found.append(Finding(
            ind.id, f"{v.unit.name}: {ind.name_zh} {_fmt(v.value)} {ind.unit}，目标 {ind.direction} "
            f"{_fmt(ind.target)}", object_id=v.unit.object_id, location=(where.x, where.y),
            details={"unit": v.unit.key, "level": v.unit.level, "value": v.value, "target": ind.target,
                     "direction": ind.direction, "source": ind.source, "objects": len(v.objects)}))
        behind = BEHIND.get(ind.kind, "不在服务范围内")
        found += [Finding(ind.id, f"{name}: {behind} ({ind.name_zh}, {v.unit.name})", object_id=oid,
                          severity="info", details={"unit": v.unit.key, "level": v.unit.level, "behind": True})
                  for oid, name in v.objects]
    return found


def _rows(run_id: int, year: int, values: list[tuple[Indicator, Value]]) -> list[dict]:
    return [{"run": run_id, "year": year, "ind": ind.id, "level": v.unit.level, "key": v.unit.key,
             "name": v.unit.name, "oid": v.unit.object_id, "value": v.value, "straight": v.straight,
             "target": ind.target, "passes": ind.passes(v.value),
             "details": dumps({**v.details, "objects": [o for o, _ in v.objects]}).decode(),
             "wkb": shapely.to_wkb(v.unit.geom)} for ind, v in values]


def run(year: int, *, indicator_set: str | Path | None = None, only: list[str] | None = None,
        engine: sa.Engine | None = None, requested_by: str | None = None) -> HealthRun:
    """Compute the set for `year` on the model as it is now and store the values, the problems and the
    provenance (the set and its sources, the datasets read) as one analysis run."""
    if not 1900 <= year <= 2200:
        raise InputError(f"year {year}: expected a calendar year such as 2025")
    engine = engine or get_engine()
    started = now()
    iset = definitions.load(indicator_set)
    values = compute(iset, ModelInputs(iset, engine, year), only)
    found = problems_of(values)
    summary = {"year": year, "set": iset.id, "values": len(values),
               "failing": sum(ind.passes(v.value) is False for ind, v in values),
               "no_data": sum(v.value is None for _, v in values)}
    srid = storage_srid(engine)  # once: it asks the database
    rec = record_run(ANALYSIS, {"year": year, "set": iset.path, "only": only}, iset.as_json(), found, summary,
                     started_at=started, requested_by=requested_by, engine=engine, srid=srid)
    try:
        with engine.begin() as c:
            c.execute(sa.text("""
                insert into healthcheck_results (run_id, year, indicator, level, unit_key, unit_name,
                    unit_object_id, value, straight_value, target, passes, details, geom)
                values (:run, :year, :ind, :level, :key, :name, :oid, :value, :straight, :target, :passes,
                        cast(:details as jsonb), st_setsrid(st_geomfromwkb(:wkb), :srid))"""),
                      [{**r, "srid": srid} for r in _rows(rec.id, year, values)])
    except Exception:
        with engine.begin() as c:
            c.execute(sa.text("delete from analysis_runs where id = :i"), {"i": rec.id})
        raise
    return HealthRun(rec.id, year, values, len(found))


def latest_run(year: int, engine: sa.Engine | None = None) -> int:
    """The id of the last run stored for a year."""
    engine = engine or get_engine()
    with engine.connect() as c:
        rid = c.scalar(sa.text("select max(run_id) from healthcheck_results where year = :y"), {"y": year})
    if rid is None:
        raise NotFoundError(f"no health-check run for {year} (run: cim healthcheck run --year {year})")
    return rid


def results(year: int, engine: sa.Engine | None = None) -> list[dict]:
    """The values of the last run of a year, one row per indicator and unit."""
    engine = engine or get_engine()
    rid = latest_run(year, engine)
    with engine.connect() as c:
        rows = c.execute(sa.text("""
            select indicator, level, unit_key, unit_name, unit_object_id, value, straight_value, target, passes,
                   details, run_id, year from healthcheck_results where run_id = :r order by indicator, level, unit_key"""),
                         {"r": rid}).mappings().all()
    return [dict(r) for r in rows]


def problems(year: int, engine: sa.Engine | None = None) -> list[dict]:
    """The problem list of a year's last run: units that miss a target, then the objects behind each."""
    engine = engine or get_engine()
    rid = latest_run(year, engine)
    with engine.connect() as c:
        rows = c.execute(sa.text("""
            select indicator, severity, message, object_id, object_key, details, st_x(at) as x, st_y(at) as y,
                   st_x(st_transform(at, 4326)) as lon, st_y(st_transform(at, 4326)) as lat
            from (select f.id, f.rule as indicator, f.severity, f.message, f.object_id, o.key as object_key,
                         f.details, coalesce(f.geom, st_pointonsurface(o.footprint)) as at
                  from qa_findings f left join city_objects o on o.id = f.object_id where f.run_id = :r) p
            order by id"""), {"r": rid}).mappings().all()
    return [dict(r) for r in rows]


def compare(year_a: int, year_b: int, engine: sa.Engine | None = None) -> list[dict]:
    """Each indicator and unit in the last runs of two years: both values and the change."""
    engine = engine or get_engine()
    a = {(r["indicator"], r["level"], r["unit_key"]): r for r in results(year_a, engine)}
    b = {(r["indicator"], r["level"], r["unit_key"]): r for r in results(year_b, engine)}
    out = []
    for key in sorted(a.keys() | b.keys()):
        va = a.get(key, {}).get("value")
        vb = b.get(key, {}).get("value")
        row = a.get(key) or b[key]
        out.append({"indicator": key[0], "level": key[1], "unit_key": key[2], "unit_name": row["unit_name"],
                    str(year_a): va, str(year_b): vb,
                    "change": None if va is None or vb is None else vb - va, "target": row["target"]})
    return out

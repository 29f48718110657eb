"""The comparison of a renewal scenario with the as-is model (现状): buildings demolished, new and changed,
floor area, households, green area, and the health-check indicators of the district for both models.

Buildings: the plan removes the as-is buildings that are not in its model and adds those of its own
datasets. One real building may stand in the model twice (a GIS footprint and its IFC model on it):
removed (or added) buildings whose footprints overlap by more than half of the smaller are one building,
counted once (its largest floor area). An added building whose footprint overlaps a removed one by more
than half of the smaller replaces it: "changed"; a removed building no added one overlaps is "demolished";
an added one on no removed footprint is "new". Our rule, not a standard's.
Floor area of a building: footprint area x storeys above ground (attributes floors / storeys /
NumberOfStoreys, also inside property sets; else its height / CIM_STOREY_HEIGHT, at least 1), the
gross-floor-area convention of GB/T 50353-2013 for storeys of full height, without its half-area rules.
Households: the sum of the `households` attribute over the model (compounds, buildings). Green area: the
union of the `green` objects' footprints.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

import shapely
import sqlalchemy as sa

from analyses.healthcheck import definitions
from analyses.healthcheck.inputs import ModelInputs
from analyses.healthcheck.yearly import compute
from cim_core import scenarios
from cim_core.db import get_engine
from cim_core.errors import InputError
from cim_core.runs import Finding, now, record_run
from cim_core.settings import get_settings

ANALYSIS = "scenario_comparison"
SAME = 0.5  # overlap, as a share of the smaller footprint, that makes two footprints one site
FLOOR_KEYS = ("floors", "storeys", "NumberOfStoreys", "storeysAboveGround", "floors_above_ground")


@dataclass
class Building:
    id: int
    name: str | None
    dataset: str
    key: str
    footprint: Any
    floors: float
    floor_area: float

    def as_json(self) -> dict:
        return {"id": self.id, "name": self.name, "dataset": self.dataset, "key": self.key,
                "floors": self.floors, "floor_area_m2": round(self.floor_area, 1)}


@dataclass
class Comparison:
    scenario: str
    title: str | None
    demolished: list[Building] = field(default_factory=list)
    new: list[Building] = field(default_factory=list)
    changed: list[tuple[Building, Building]] = field(default_factory=list)  # (plan's, as-is's)
    totals: dict[str, dict[str, float]] = field(default_factory=dict)
    healthcheck: list[dict] | None = None
    started_at: datetime.datetime | None = None
    run_id: int | None = None  # set by record()

    def as_json(self) -> dict:
        return {"scenario": self.scenario, "title": self.title, "run_id": self.run_id,
                "buildings": {"demolished": len(self.demolished), "new": len(self.new), "changed": len(self.changed)},
                "totals": self.totals,
                "demolished": [b.as_json() for b in self.demolished], "new": [b.as_json() for b in self.new],
                "changed": [{"plan": p.as_json(), "as_is": a.as_json()} for p, a in self.changed],
                "healthcheck": self.healthcheck}


def floors_of(attrs: dict, height: float | None) -> float:
    """Storeys above ground from the attributes (searched into nested property sets), else from the height."""
    stack = [attrs or {}]
    while stack:
        d = stack.pop()
        for k in FLOOR_KEYS:
            try:
                v = float(d.get(k))
                if v > 0:
                    return v
            except (TypeError, ValueError):
                pass
        stack += [v for v in d.values() if isinstance(v, dict)]
    if height is not None and height > 0:
        return max(1.0, round(height / get_settings().storey_height))
    return 1.0


def _buildings(conn: sa.Connection, where: str) -> list[Building]:
    rows = conn.execute(sa.text(f"""
        select o.id, o.name, d.name dataset, o.key, o.attributes, o.zmin, o.zmax, st_asbinary(o.footprint) fp
        from city_objects o join datasets d on d.id = o.dataset_id
        where o.class = 'building' and st_dimension(o.footprint) = 2 and {where} order by o.id""")).all()
    out = []
    for r in rows:
        fp = shapely.from_wkb(bytes(r.fp))
        height = (r.zmax - r.zmin) if r.zmax is not None and r.zmin is not None else None
        floors = floors_of(r.attributes, (r.attributes or {}).get("height_m") or height)
        out.append(Building(r.id, r.name, r.dataset, r.key, fp, floors, float(shapely.area(fp)) * floors))
    return out


def _overlaps(a: Building, b: Building) -> bool:
    inter = shapely.area(shapely.intersection(a.footprint, b.footprint))
    return inter > SAME * min(shapely.area(a.footprint), shapely.area(b.footprint))


def one_per_building(buildings: list[Building]) -> list[Building]:
    """Overlapping records of one building (a footprint and its IFC model) as one: the largest floor area."""
    kept: list[Building] = []
    for b in sorted(buildings, key=lambda b: -b.floor_area):
        if not any(_overlaps(b, k) for k in kept):
            kept.append(b)
    return sorted(kept, key=lambda b: b.id)


def _sum(conn: sa.Connection, sql: str) -> float:
    return float(conn.scalar(sa.text(sql)) or 0.0)


def _totals(conn: sa.Connection, sid: int | None) -> dict[str, float]:
    cur = scenarios.current(sid)
    return {
        "households": _sum(conn, f"""select sum((o.attributes->>'households')::numeric) from city_objects o
                                    where o.attributes ? 'households'
                                      and jsonb_typeof(o.attributes->'households') = 'number' and {cur}"""),
        "green_area_m2": round(_sum(conn, f"""select st_area(st_union(o.footprint)) from city_objects o
                                             where o.class = 'green' and st_dimension(o.footprint) = 2
                                               and {cur}"""), 1),
        "buildings": _sum(conn, f"select count(*) from city_objects o where o.class = 'building' and {cur}"),
    }


def _healthcheck(engine: sa.Engine, sid: int) -> list[dict]:
    """The district's indicator values of the as-is model and of the plan (not stored as yearly runs)."""
    iset = definitions.load(None)
    both = [compute(iset, ModelInputs(iset, engine, datetime.date.today().year, s)) for s in (None, sid)]
    plan = {ind.id: v for ind, v in both[1] if v.unit.level == "district"}
    out = []
    for ind, v in both[0]:
        if v.unit.level != "district":
            continue
        p = plan.get(ind.id)
        out.append({"indicator": ind.id, "name_zh": ind.name_zh, "name_en": ind.name_en, "unit": ind.unit, "as_is": v.value,
                    "plan": p.value if p else None, "target": ind.target,
                    "passes_as_is": ind.passes(v.value), "passes_plan": ind.passes(p.value) if p else None})
    return out


def compare(name: str, *, healthcheck: bool = True, engine: sa.Engine | None = None) -> Comparison:
    """Compare scenario `name` with the as-is model; writes nothing (record() stores it as a run)."""
    engine = engine or get_engine()
    started = now()
    with engine.connect() as conn:
        sid = scenarios.resolve(conn, name)
        if sid is None:
            raise InputError("compare a plan with the as-is model: name a scenario other than as-is")
        title = conn.scalar(sa.text("select title from scenarios where id = :i"), {"i": sid})
        removed = one_per_building(_buildings(conn, f"{scenarios.current(None)} and not {scenarios.visible(sid)}"))
        added = one_per_building(_buildings(conn, f"{scenarios.current(sid)} and not {scenarios.visible(None)}"))
        totals = {"as_is": _totals(conn, None), "plan": _totals(conn, sid)}
    cmp = Comparison(name, title, started_at=started)
    for a in removed:
        if not any(_overlaps(a, p) for p in added):
            cmp.demolished.append(a)
    for p in added:
        was = [a for a in removed if _overlaps(a, p)]
        if was:
            cmp.changed.append((p, max(was, key=lambda a: a.floor_area)))
        else:
            cmp.new.append(p)
    fa_removed, fa_added = sum(b.floor_area for b in removed), sum(b.floor_area for b in added)
    totals["floor_area_m2"] = {"removed": round(fa_removed, 1), "added": round(fa_added, 1),
                               "change": round(fa_added - fa_removed, 1)}
    totals["change"] = {k: round(totals["plan"][k] - totals["as_is"][k], 1) for k in totals["as_is"]}
    cmp.totals = totals
    if healthcheck:
        cmp.healthcheck = _healthcheck(engine, sid)
    return cmp


def record(cmp: Comparison, *, requested_by: str | None = None, engine: sa.Engine | None = None) -> int:
    """Store a comparison as an analysis run (findings: each building demolished, new or changed); its id."""
    findings = [Finding("demolished", f"{b.name or b.key} demolished ({b.floor_area:.0f} m2)", object_id=b.id,
                        severity="info", details=b.as_json()) for b in cmp.demolished]
    findings += [Finding("new", f"{b.name or b.key} built ({b.floor_area:.0f} m2)", object_id=b.id,
                         severity="info", details=b.as_json()) for b in cmp.new]
    findings += [Finding("changed", f"{a.name or a.key} replaced by {p.name or p.key}", object_id=p.id,
                         related_id=a.id, severity="info", details={"plan": p.as_json(), "as_is": a.as_json()})
                 for p, a in cmp.changed]
    summary = {k: v for k, v in cmp.as_json().items() if k in ("buildings", "totals")}
    rules = {"same_site": f"footprints overlapping by more than {SAME:.0%} of the smaller",
             "floor_area": "footprint area x storeys above ground (GB/T 50353-2013, full-height storeys)"}
    cmp.run_id = record_run(ANALYSIS, {"scenario": cmp.scenario, "healthcheck": cmp.healthcheck is not None},
                            rules, findings, summary, started_at=cmp.started_at, requested_by=requested_by,
                            engine=engine or get_engine()).id
    return cmp.run_id

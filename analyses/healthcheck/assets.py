"""Computation kinds on the city's stock: its age (compounds built before a year, mains past their material's
design life), renewal progress against a plan, and the share of the ground covered by 3D models.

As in `kinds`, a value is None ("no data") when an input is absent — no object of the class, or an
attribute (install year, build year, renewal year) that no object records — never 0.
"""
from __future__ import annotations

import numpy as np
import shapely

from analyses.water.renewal import design_life

from .definitions import Indicator
from .kinds import Inputs, Layer, Unit, Value, _inside, _length_in, _nodata


def _names(layer: Layer, mask: np.ndarray) -> list[tuple[int, str]]:
    return [(int(layer.ids[i]), layer.names[i]) for i in np.flatnonzero(mask)]


def floor_areas(homes: Layer, buildings: Layer, floors_attribute: str = "floors") -> np.ndarray:
    """Floor area of each compound: footprint area x floors of the buildings whose representative point lies
    in it (NaN for a compound without a building that records its floors)."""
    out = np.full(len(homes), np.nan)
    if not len(buildings) or not len(homes):
        return out
    floors = buildings.numbers(floors_attribute)
    area = shapely.area(buildings.geoms) * floors
    home_idx, b_idx = shapely.STRtree(buildings.points()).query(homes.geoms, "contains")
    ok = ~np.isnan(area[b_idx])
    sums = np.zeros(len(homes))
    np.add.at(sums, home_idx[ok], area[b_idx[ok]])
    has = np.unique(home_idx[ok])
    out[has] = sums[has]
    return out


def built_before(ind: Indicator, units: list[Unit], data: Inputs) -> list[Value]:
    """Share (%) of the compounds built before `year`, counted (`weight` = count), by an attribute such as
    households, or by floor area (`weight` = floor_area: their buildings' footprint x floors). Compounds
    that do not record their build year (or weight) are left out of both sides and counted in details."""
    p = ind.params
    homes = data.layer(p["of"])
    years = homes.numbers(p.get("year_attribute", "build_year"))
    if not len(homes) or np.isnan(years).all():
        return _nodata(units, f"no object of class {p['of']} records its build year")
    weight = p.get("weight", "count")
    if weight == "count":
        w = np.ones(len(homes))
    elif weight == "floor_area":
        w = floor_areas(homes, data.layer(p["buildings"]) if "buildings" in p else Layer(
            np.zeros(0, np.int64), [], np.zeros(0, object), []), p.get("floors_attribute", "floors"))
    else:
        w = homes.numbers(weight)
    if np.isnan(w).all():
        return _nodata(units, f"no object of class {p['of']} records {weight}")
    known = ~np.isnan(years) & ~np.isnan(w)
    old = known & (years < p["year"])
    out = []
    for u in units:
        inside = _inside(homes, u)
        total = float(w[inside & known].sum())
        value = 100.0 * float(w[inside & old].sum()) / total if total > 0 else None
        out.append(Value(u, value, objects=_names(homes, inside & old),
                         details={"weight": weight, "before": round(float(w[inside & old].sum()), 1),
                                  "total": round(total, 1), "unknown": int((inside & ~known).sum())}))
    return out


def past_design_life(ind: Indicator, units: list[Unit], data: Inputs) -> list[Value]:
    """Share (%) of the length of mains whose age in the run's year reaches their material's design life
    (the table of analyses/water/renewal, data/design_life.csv, with its sources). Mains of unknown install
    year count in the total and are reported apart (`unknown_age_m`); the value is no data when none records
    its install year."""
    mains = data.layer(ind.params["of"])
    built = mains.numbers("install_year")
    if not len(mains) or np.isnan(built).all():
        return _nodata(units, f"no object of class {ind.params['of']} records its install year")
    table = design_life()
    life = np.array([table.get(str(a.get("material") or "unknown").lower(), table["unknown"])["life"]
                     for a in mains.attrs], float)
    past = ~np.isnan(built) & (data.year - built >= life)
    old, unknown = mains.take(past), mains.take(np.isnan(built))
    out = []
    for u in units:
        total = _length_in(mains, u)
        length = _length_in(old, u)
        out.append(Value(u, 100.0 * length / total if total > 0 else None,
                         objects=_names(mains, past & _inside(mains, u)),
                         details={"length_m": round(length, 1), "total_m": round(total, 1),
                                  "unknown_age_m": round(_length_in(unknown, u), 1)}))
    return out


def renewal_progress(ind: Indicator, units: list[Unit], data: Inputs) -> list[Value]:
    """Renewed length over planned length, %. With `planned_km` (a fixed programme such as the 144.34 km of
    water mains) the renewed mains are those whose `done_attribute` (the year they were relaid) lies in
    [since, run year]; the plan is city-wide, so only the district has a value. With `plan_attribute` (the
    year a main is planned for renewal) the plan is the mains planned for the run's year and the renewed
    ones are those of them relaid by that year; the objects behind a miss are the planned mains not done."""
    p = ind.params
    mains = data.layer(p["of"])
    done_year = mains.numbers(p["done_attribute"])
    fixed = "planned_km" in p
    key = p["done_attribute"] if fixed else p["plan_attribute"]
    if not len(mains) or np.isnan(mains.numbers(key)).all():
        return _nodata(units, f"no object of class {p['of']} records {key}")
    if fixed:
        done = (done_year >= p.get("since", -np.inf)) & (done_year <= data.year)
        planned = np.zeros(len(mains), bool)
    else:
        planned = mains.numbers(p["plan_attribute"]) == data.year
        done = planned & (done_year <= data.year)
    out = []
    for u in units:
        length = _length_in(mains.take(done), u)
        plan = p["planned_km"] * 1000.0 if fixed else _length_in(mains.take(planned), u)
        if fixed and u.level != "district":
            out.append(Value(u, None, details={"no_data": "the plan is city-wide"}))
            continue
        out.append(Value(u, 100.0 * length / plan if plan > 0 else None,
                         objects=_names(mains, planned & ~done & _inside(mains, u)),
                         details={"renewed_m": round(length, 1), "planned_m": round(plan, 1)}
                         | ({} if plan > 0 else {"no_data": f"nothing planned for {data.year}"})))
    return out


def area_ratio(ind: Indicator, units: list[Unit], data: Inputs) -> list[Value]:
    """Projected area of the class (the union of its footprints, e.g. the objects with a 3D model) inside the
    unit over the unit's area, %."""
    things = data.layer(ind.params["of"])
    if not len(things):
        return _nodata(units, f"no objects of class {ind.params['of']} in the model")
    out = []
    for u in units:
        near = things.geoms[things.tree().query(u.geom, "intersects")]
        covered = shapely.union_all(shapely.intersection(near, u.geom)).area if len(near) else 0.0
        out.append(Value(u, 100.0 * covered / u.geom.area if u.geom.area > 0 else None,
                         details={"area_m2": round(covered, 1), "unit_m2": round(u.geom.area, 1)}))
    return out


KINDS = {"built_before": built_before, "past_design_life": past_design_life,
         "renewal_progress": renewal_progress, "area_ratio": area_ratio}

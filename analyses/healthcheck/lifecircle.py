"""The 15-minute life circle (十五分钟生活圈) per compound: which facility classes of GB 50180-2018 lie within
their band's walking distance (300 / 500 / 1,000 m) of the compound.

A compound's value is the share (%) of the classes it reaches, its details the walking (and straight-line)
distance to the nearest facility of each class; a street's or the district's value is the share (%) of its
compounds that reach every class, with the incomplete ones as the objects behind it. A compound is its
representative point, joined to the street network as in `walking`. No data when the model has no compound
or no facility of a class the bands name.
"""
from __future__ import annotations

import numpy as np
import shapely

from .definitions import Indicator
from .kinds import Inputs, Unit, Value, _inside, _nodata
from .walking import access_points


def _distances(data: Inputs, pts: np.ndarray, name: str, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """(walking, straight) distance from each point to the nearest facility of a class; walking is inf
    beyond the radius (the search stops there) and equals straight when the model has no streets."""
    fac = data.layer(name)
    _, straight = fac.tree().query_nearest(shapely.points(pts), return_distance=True, all_matches=False)
    walk = data.walk()
    if walk is None:
        return straight, straight
    return walk.reach(pts, walk.distances_from(access_points(fac.geoms), radius)), straight


def _rounded(d: float) -> float | None:
    return round(float(d), 1) if np.isfinite(d) else None


def life_circle(ind: Indicator, units: list[Unit], data: Inputs) -> list[Value]:
    homes = data.layer(ind.params["of"])
    bands = [(float(b["radius"]), name) for b in ind.params["bands"] for name in b["classes"]]
    absent = [name for _, name in bands if not len(data.layer(name))]
    if not len(homes) or absent:
        return _nodata(units, f"no objects of class {ind.params['of'] if not len(homes) else ', '.join(absent)}")
    pts = shapely.get_coordinates(homes.points())
    walking, straight = {}, {}
    for radius, name in bands:
        walking[name], straight[name] = _distances(data, pts, name, radius)
    reach = np.column_stack([walking[n] <= r for r, n in bands])
    reach_straight = np.column_stack([straight[n] <= r for r, n in bands])
    complete, complete_straight = reach.all(axis=1), reach_straight.all(axis=1)
    row = {int(i): k for k, i in enumerate(homes.ids)}
    out = []
    for u in units:
        k = row.get(u.object_id) if u.level == "compound" else None
        if k is not None:
            classes = {n: {"radius": r, "walking_m": _rounded(walking[n][k]), "straight_m": _rounded(straight[n][k]),
                           "within": bool(reach[k, j])} for j, (r, n) in enumerate(bands)}
            out.append(Value(u, float(100.0 * reach[k].mean()), float(100.0 * reach_straight[k].mean()), details={
                "classes": classes, "missing": [n for j, (_, n) in enumerate(bands) if not reach[k, j]]}))
            continue
        inside = _inside(homes, u)
        if not inside.any():
            out.append(Value(u, None, details={"no_data": "no compound in the unit"}))
            continue
        out.append(Value(u, float(100.0 * complete[inside].mean()), float(100.0 * complete_straight[inside].mean()),
                         [(int(homes.ids[i]), homes.names[i]) for i in np.flatnonzero(inside & ~complete)],
                         {"compounds": int(inside.sum()), "complete": int((inside & complete).sum())}))
    return out


KINDS = {"life_circle": life_circle}

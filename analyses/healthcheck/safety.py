"""Computation kinds of fire safety (智慧消防): objects outside every facility's protection radius (buildings
and municipal hydrants, 150 m) and gaps in the spacing of facilities along the streets (hydrants, 120 m).

Both count straight-line distances: the hydrant rule is a radius and a spacing (GB 50974-2014 7.2.5, see
the indicator set for the clause and its confidence). Absent inputs are "no data", never 0.
"""
from __future__ import annotations

import numpy as np
import shapely

from .definitions import Indicator
from .kinds import Inputs, Unit, Value, _bands, _inside, _nodata


def outside_radius(ind: Indicator, units: list[Unit], data: Inputs) -> list[Value]:
    """Number of objects (buildings) whose representative point is farther than the radius from every
    facility (hydrant) in a straight line; they are the objects behind the value."""
    things, bands = data.layer(ind.params["of"]), _bands(ind, data)
    if not len(things) or bands is None:
        return _nodata(units, "no " + ("objects" if not len(things) else "facilities") + " of the classes named")
    served = np.zeros(len(things), bool)
    for fac, radius in bands:
        if len(fac):
            near, _ = fac.tree().query(things.points(), "dwithin", distance=radius)
            served[near] = True
    out = []
    for u in units:
        left = _inside(things, u) & ~served
        out.append(Value(u, float(left.sum()), float(left.sum()),
                         [(int(things.ids[i]), things.names[i]) for i in np.flatnonzero(left)],
                         {"distance": "straight", "objects_in_unit": int(_inside(things, u).sum())}))
    return out


def _gaps(roads, points: np.ndarray, snap: float, max_gap: float) -> list[tuple[int, float, float, object]]:
    """(road index, from m, to m, midpoint) of every stretch between consecutive points along a road longer
    than `max_gap`; each point belongs to its nearest road within `snap`."""
    p_idx, r_idx = roads.tree().query(points, "dwithin", distance=snap)
    if not len(p_idx):
        return []
    d = shapely.distance(points[p_idx], roads.geoms[r_idx])
    order = np.lexsort((d, p_idx))  # per point, nearest road first
    first = np.r_[True, p_idx[order][1:] != p_idx[order][:-1]]
    p_idx, r_idx = p_idx[order][first], r_idx[order][first]
    at = shapely.line_locate_point(roads.geoms[r_idx], points[p_idx])
    out = []
    for r in np.unique(r_idx):
        pos = np.sort(at[r_idx == r])
        for a, b in zip(pos[:-1], pos[1:]):
            if b - a > max_gap:
                out.append((int(r), float(a), float(b), shapely.line_interpolate_point(roads.geoms[r], (a + b) / 2)))
    return out


def spacing(ind: Indicator, units: list[Unit], data: Inputs) -> list[Value]:
    """Number of stretches of street between consecutive facilities (hydrants within `snap` m of its centre
    line, in order along it) longer than `max_gap` m, counted in the unit that holds the stretch's middle;
    the streets with such a stretch are the objects behind. A street with fewer than two hydrants has no
    stretch (the protection radius answers for it)."""
    p = ind.params
    points, roads = data.layer(p["of"]), data.layer(p["along"])
    if not len(points) or not len(roads):
        return _nodata(units, f"no objects of class {p['of'] if not len(points) else p['along']} in the model")
    gaps = _gaps(roads, points.points(), float(p["snap"]), float(p["max_gap"]))
    mids = np.array([g[3] for g in gaps], dtype=object)
    out = []
    for u in units:
        shapely.prepare(u.geom)
        mine = [g for g, ok in zip(gaps, shapely.contains(u.geom, mids) if len(mids) else []) if ok]
        streets = sorted({g[0] for g in mine})
        out.append(Value(u, float(len(mine)), float(len(mine)),
                         [(int(roads.ids[r]), roads.names[r]) for r in streets],
                         {"gaps": [{"street": roads.names[r], "from_m": round(a, 1), "to_m": round(b, 1),
                                    "gap_m": round(b - a, 1)} for r, a, b, _ in mine[:100]]}))
    return out


KINDS = {"outside_radius": outside_radius, "spacing": spacing}

"""The computation kinds of indicators, over layers held in memory (shapely geometries, storage CRS in m).

Each kind gives one `Value` per unit. A value is None ("no data") when an input the indicator needs is
absent from the model, never 0: no objects of a class at all, no residential land in the unit, no
population, or an attribute that no object carries.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import shapely

from .definitions import Indicator
from .walking import WalkNetwork, access_points


@dataclass
class Layer:
    """The objects of one class: database ids, names, geometries, attributes."""
    ids: np.ndarray
    names: list[str]
    geoms: np.ndarray
    attrs: list[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, mask: np.ndarray) -> Layer:
        idx = np.flatnonzero(mask)
        return Layer(self.ids[idx], [self.names[i] for i in idx], self.geoms[idx], [self.attrs[i] for i in idx])

    def points(self) -> np.ndarray:
        """Representative points (computed once)."""
        if "_points" not in self.__dict__:
            self.__dict__["_points"] = shapely.point_on_surface(self.geoms)
        return self.__dict__["_points"]

    def tree(self) -> shapely.STRtree:
        if "_tree" not in self.__dict__:
            self.__dict__["_tree"] = shapely.STRtree(self.geoms)
        return self.__dict__["_tree"]

    def numbers(self, attribute: str) -> np.ndarray:
        """An attribute as floats, NaN where absent or not a number."""
        out = np.full(len(self), np.nan)
        for i, a in enumerate(self.attrs):
            v = a.get(attribute)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out[i] = v
        return out


@dataclass
class Unit:
    level: str  # district | street | community | compound
    key: str
    name: str
    geom: Any
    object_id: int | None = None


@dataclass
class Value:
    unit: Unit
    value: float | None
    straight: float | None = None
    objects: list[tuple[int, str]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


class Inputs(Protocol):
    cell_m: float
    year: int  # the run's year (ages, renewal plans)

    def layer(self, name: str) -> Layer: ...

    def walk(self) -> WalkNetwork | None: ...

    def selector_keys(self, name: str) -> set[str]: ...


def _nodata(units: list[Unit], why: str) -> list[Value]:
    return [Value(u, None, details={"no_data": why}) for u in units]


def _inside(layer: Layer, unit: Unit) -> np.ndarray:
    """Which objects have their representative point in the unit."""
    if not len(layer):
        return np.zeros(0, bool)
    shapely.prepare(unit.geom)
    return shapely.contains(unit.geom, layer.points())


def _cells(region, size: float) -> tuple[np.ndarray, np.ndarray]:
    """`region` cut by a grid of `size` m (aligned to the CRS origin): piece areas and representative points.
    Cells wholly inside a part of the region are taken whole; only those on its edges are clipped."""
    parts = shapely.get_parts(region)
    parts = parts[shapely.area(parts) > 0]
    if len(parts) == 0:
        return np.zeros(0), np.zeros((0, 2))
    b = shapely.bounds(parts)
    ix0, iy0 = np.floor(b[:, 0] / size).astype(np.int64), np.floor(b[:, 1] / size).astype(np.int64)
    nx = np.ceil(b[:, 2] / size).astype(np.int64) - ix0
    ny = np.ceil(b[:, 3] / size).astype(np.int64) - iy0
    counts = nx * ny
    part = np.repeat(np.arange(len(parts)), counts)
    k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    x0 = (ix0[part] + k % nx[part]) * size
    y0 = (iy0[part] + k // nx[part]) * size
    # A part that is an axis-aligned rectangle (its area is its bounds' area) cuts its cells arithmetically;
    # the others are tested and clipped as geometries.
    rect = np.isclose(shapely.area(parts), (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), rtol=1e-9)[part]
    pb = b[part[rect]]
    lo_x, hi_x = np.maximum(x0[rect], pb[:, 0]), np.minimum(x0[rect] + size, pb[:, 2])
    lo_y, hi_y = np.maximum(y0[rect], pb[:, 1]), np.minimum(y0[rect] + size, pb[:, 3])
    areas = np.zeros(len(part))
    pts = np.column_stack([x0 + size / 2, y0 + size / 2])
    areas[rect] = np.clip(hi_x - lo_x, 0, None) * np.clip(hi_y - lo_y, 0, None)
    pts[rect] = np.column_stack([(lo_x + hi_x) / 2, (lo_y + hi_y) / 2])
    other = np.flatnonzero(~rect)
    boxes = shapely.box(x0[other], y0[other], x0[other] + size, y0[other] + size)
    shapely.prepare(parts)
    inside = shapely.contains_properly(parts[part[other]], boxes)
    areas[other[inside]] = size * size
    # a cell that does not meet the part stays out (area 0); one on its edge is clipped by its rectangle
    # (GEOS' rectangle clip: the same piece as an overlay, in a third of the time; shapely.clip_by_rect
    # takes one rectangle per call, its ufunc `shapely.lib.clip_by_rect` one per geometry)
    meets = ~inside & shapely.intersects(parts[part[other]], boxes)
    edge = other[meets]
    pieces = shapely.lib.clip_by_rect(parts[part[edge]], x0[edge], y0[edge], x0[edge] + size, y0[edge] + size)
    areas[edge] = shapely.area(pieces)
    ok = areas[edge] > 0
    pts[edge[ok]] = shapely.get_coordinates(shapely.point_on_surface(pieces[ok]))
    keep = areas > 0
    return areas[keep], pts[keep]


def _bands(ind: Indicator, data: Inputs) -> list[tuple[Layer, float]] | None:
    bands = [(data.layer(s.facility), s.radius) for s in ind.services]
    return bands if any(len(f) for f, _ in bands) else None


def _reach(points: np.ndarray, bands, walk: WalkNetwork, dists: list[np.ndarray]) -> np.ndarray:
    """Which points lie within some band's radius of its facilities, walking."""
    ok = np.zeros(len(points), bool)
    if not len(points):
        return ok
    leg, near = walk.nearest(points)  # once for all bands
    for (_, radius), d in zip(bands, dists):
        ok |= leg + d[near] <= radius
    return ok


def coverage(ind: Indicator, units: list[Unit], data: Inputs) -> list[Value]:
    """Share (%) of the land class inside the service radius of the facilities: straight line (buffers of the
    facilities) and walking distance along the streets (grid cells of the covered land whose representative
    point is within the radius on foot). Walking coverage is taken inside the straight-line coverage, which
    bounds it, so it never exceeds it."""
    land = data.layer(ind.params["land"])
    bands = _bands(ind, data)
    if not len(land) or bands is None:
        return _nodata(units, "no " + ("land" if not len(land) else "facilities") + " of the classes named")
    buffers = np.concatenate([shapely.buffer(f.geoms, r, quad_segs=16) for f, r in bands])
    # Each unit overlays only the parcels and service areas that touch it (a district holds thousands).
    buffer_tree = shapely.STRtree(buffers)
    walk = data.walk() if ind.params.get("distance", "network") == "network" else None
    dists = [walk.distances_from(access_points(f.geoms), r) for f, r in bands] if walk else []
    people = data.layer(ind.params["objects"]) if "objects" in ind.params else None
    out = []
    for u in units:
        ground = _ground(land, u)
        total = float(shapely.area(ground).sum())
        if total <= 0:
            out.append(Value(u, None, details={"no_data": "no land of the class in the unit"}))
            continue
        reached = _clip(ground, buffers, buffer_tree)
        straight = 100.0 * float(shapely.area(reached).sum()) / total
        value, via = straight, "straight"
        if walk is not None:
            areas, pts = _cells(reached, data.cell_m)
            value, via = 100.0 * float(areas[_reach(pts, bands, walk, dists)].sum()) / total, "network"
        out.append(Value(u, value, straight, _left_out(people, u, buffer_tree, bands, walk, dists),
                         {"land_m2": round(total, 1), "distance": via}))
    return out


def _ground(land: Layer, u: Unit) -> np.ndarray:
    """The land of the unit as pieces that do not overlap: the parcels (clipped where they cross the unit's
    edge), without those inside another, and the union of those that overlap. Parcels are not merged
    otherwise: the union of thousands of them costs more than the rest of the computation, and a rectangle
    is cut into cells arithmetically."""
    near = land.geoms[land.tree().query(u.geom, "intersects")]
    shapely.prepare(u.geom)
    edge = ~shapely.contains_properly(u.geom, near)
    near = near.copy()
    near[edge] = shapely.intersection(near[edge], u.geom)
    near = near[shapely.area(near) > 0]
    # a parcel inside another (a compound in its residential parcel) adds no land: dropped
    i, j = shapely.STRtree(near).query(near, "within")
    nested = (i != j) & ((i > j) | ~np.isin(i * len(near) + j, j * len(near) + i))
    near = np.delete(near, np.unique(i[nested]))
    a, b = shapely.STRtree(near).query(near, "intersects")
    a, b = a[a < b], b[a < b]
    overlap = shapely.relate_pattern(near[a], near[b], "T********")  # interiors meet
    if not overlap.any():
        return near
    involved = np.zeros(len(near), bool)  # only the overlapping parcels are merged
    involved[a[overlap]] = involved[b[overlap]] = True
    return np.concatenate([near[~involved], shapely.get_parts(shapely.union_all(near[involved]))])


def _clip(pieces: np.ndarray, buffers: np.ndarray, tree: shapely.STRtree) -> np.ndarray:
    """The pieces inside the union of the buffers: whole where one buffer holds them, else clipped by the
    union of the few buffers they meet (a small union per piece instead of one of all the buffers)."""
    held, _ = tree.query(pieces, "within")
    whole = np.zeros(len(pieces), bool)
    whole[held] = True
    rest = np.flatnonzero(~whole)
    out = pieces.copy()
    out[rest] = shapely.Polygon()
    pi, bi = tree.query(pieces[rest], "intersects")
    order = np.argsort(pi, kind="stable")
    pi, bi = pi[order], bi[order]
    for group in np.split(np.arange(len(pi)), np.flatnonzero(np.diff(pi)) + 1):
        if len(group):
            k = rest[pi[group[0]]]
            out[k] = shapely.intersection(pieces[k], shapely.union_all(buffers[bi[group]]))
    return out[shapely.area(out) > 0]


def _left_out(people: Layer | None, u: Unit, buffer_tree, bands, walk, dists) -> list[tuple[int, str]]:
    """The objects (compounds) of the unit whose representative point no facility serves."""
    if people is None or not len(people):
        return []
    mine = people.take(_inside(people, u))
    pts = shapely.point_on_surface(mine.geoms)
    if walk is not None:
        served = _reach(shapely.get_coordinates(pts), bands, walk, dists)
    else:
        served = np.zeros(len(pts), bool)
        served[buffer_tree.query(pts, "within")[0]] = True
    return [(int(mine.ids[i]), mine.names[i]) for i in np.flatnonzero(~served)]


def count(ind: Indicator, units: list[Unit], data: Inputs) -> list[Value]:
    """Number of objects of the class in the unit; they are the objects behind the value."""
    things = data.layer(ind.params["of"])
    if not len(things):
        return _nodata(units, f"no objects of class {ind.params['of']} in the model")
    out = []
    for u in units:
        mine = things.take(_inside(things, u))
        out.append(Value(u, float(len(mine)), objects=[(int(i), n) for i, n in zip(mine.ids, mine.names)]))
    return out


def _length_in(layer: Layer, unit: Unit) -> float:
    if not len(layer):
        return 0.0
    near = layer.geoms[layer.tree().query(unit.geom, "intersects")]
    return float(shapely.length(shapely.intersection(near, unit.geom)).sum())


def length_ratio(ind: Indicator, units: list[Unit], data: Inputs) -> list[Value]:
    """Length of the `of` lines over the length of the `over` lines in the unit, in %. No data when no object
    of `over` carries the attributes the `of` class filters on (nobody recorded them)."""
    part, whole = data.layer(ind.params["of"]), data.layer(ind.params["over"])
    if not len(whole):
        return _nodata(units, f"no objects of class {ind.params['over']} in the model")
    keys = data.selector_keys(ind.params["of"]) - data.selector_keys(ind.params["over"])
    missing = sorted(k for k in keys if not any(k in a for a in whole.attrs))
    if missing:
        return _nodata(units, f"no object records {', '.join(missing)}")
    out = []
    for u in units:
        den = _length_in(whole, u)
        num = _length_in(part, u)
        out.append(Value(u, 100.0 * num / den if den > 0 else None,
                         details={"length_m": round(num, 1), "total_m": round(den, 1)}))
    return out


def density(ind: Indicator, units: list[Unit], data: Inputs) -> list[Value]:
    """Length (km) or count of the class per km2 of the unit."""
    things = data.layer(ind.params["of"])
    if not len(things):
        return _nodata(units, f"no objects of class {ind.params['of']} in the model")
    by_count = ind.params.get("measure", "length") == "count"
    out = []
    for u in units:
        km2 = u.geom.area / 1e6
        amount = float(_inside(things, u).sum()) if by_count else _length_in(things, u) / 1000.0
        out.append(Value(u, amount / km2 if km2 > 0 else None,
                         details={"amount": round(amount, 3), "area_km2": round(km2, 4)}))
    return out


def per_capita_area(ind: Indicator, units: list[Unit], data: Inputs) -> list[Value]:
    """Area (m2) of the class — its footprint, or an attribute such as the effective shelter area — per
    resident of the unit: the population attribute of the population class, or where it is absent its
    households times `persons_per_household`."""
    things, people = data.layer(ind.params["of"]), data.layer(ind.params["population"])
    if not len(things) or not len(people):
        return _nodata(units, "no objects of " + ("the area class" if not len(things) else "the population class"))
    attr = ind.params.get("area_attribute")
    areas = things.numbers(attr) if attr else shapely.area(things.geoms)
    pop = people.numbers(ind.params.get("population_attribute", "population"))
    if "persons_per_household" in ind.params:
        pop = np.where(np.isnan(pop), people.numbers("households") * ind.params["persons_per_household"], pop)
    if np.isnan(pop).all() or (attr and np.isnan(areas).all()):
        return _nodata(units, "no object records the population or area attribute")
    out = []
    for u in units:
        residents = float(np.nansum(pop[_inside(people, u)]))
        area = float(np.nansum(areas[_inside(things, u)]))
        out.append(Value(u, area / residents if residents > 0 else None,
                         details={"area_m2": round(area, 1), "population": residents}))
    return out


KINDS: dict[str, Callable[[Indicator, list[Unit], Inputs], list[Value]]] = {
    "coverage": coverage, "count": count, "length_ratio": length_ratio, "density": density,
    "per_capita_area": per_capita_area}

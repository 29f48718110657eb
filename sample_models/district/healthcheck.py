"""What the city health check (issue 16) needs beyond the base district: the units and the facilities.

- `hc_units`: communities (社区), one per 750 m arterial cell, and streets (街道), one per 2 x 2 cells,
  with fields unit (street | community) and street (the community's street).
- `hc_facilities`: per community a primary school, a market, two kindergartens and bus stops (公交站) at its
  south-west corner and the middle of its south edge (on the arterials, 375 m apart); per street a community
  health centre (社区卫生服务中心), an emergency shelter with its effective area, and a secondary school; a fire
  station (消防站) in every other street of every other row —
  except the planted gap: one street (chosen by the seed) has no secondary school within 1 km of any of
  its ground (the neighbours' schools stand in their community farthest from it; a street too narrow to
  keep its school that far has none). The manifest names that street.
- A greenway (绿道): the longest river bank, as a road of class greenway (`roads`).
- The planted gap "a compound 900 m from any park": a new estate (a compound and its residential parcel, with
  a local street to the nearest road) on the district's edge, where the nearest park of 2,000 m2 or more is at
  least 900 m from every part of it (the spot found nearest to the district). The manifest names it.
Places are fixed fractions of a cell (quarter points, away from the rivers along the middle of river rows).
"""
from __future__ import annotations

import numpy as np
import pyogrio
import shapely

from .layout import CELL_DM, Grid
from .writer import LayerWriter

FIELDS = {
    "hc_units": ("Polygon", {"id": "str", "name": "str", "unit": "str", "street": "str"}),
    "hc_facilities": ("Point", {"id": "str", "name": "str", "kind": "str", "capacity": "int",
                                "effective_area_m2": "float"}),
}
IMPORT_AS = {"hc_units": {"kind": "landuse"}, "hc_facilities": {"kind": "facilities"}}
# Street (街道) names of 驿城区, Zhumadian; numbered on when a larger district needs more.
STREETS = ["东风街道", "西园街道", "新华街道", "南海街道", "人民街道", "橡林街道", "老街街道", "雪松街道",
           "顺河街道", "刘阁街道"]
CELL = CELL_DM / 10  # m
SCHOOL_GAP_M = 1000.0  # 中学 service radius: the gap street has no secondary school this close
# Per community: (kind, name suffix, fraction of the cell in x and y, capacity).
COMMUNITY_FACILITIES = [("primary_school", "小学", 0.25, 0.25, 1800), ("market", "菜市场", 0.75, 0.75, 0),
                        ("kindergarten", "幼儿园", 0.25, 0.75, 270), ("kindergarten", "幼儿园", 0.75, 0.25, 270)]
SHELTER_AREA_M2 = 20000.0  # effective area of each street's shelter (a square or park)
BUS_STOPS = [(0.0, 0.0), (0.5, 0.0)]  # per community: fractions of its cell, on the arterials
PARK_GAP_M = 900.0  # the planted estate is at least this far from every park of PARK_MIN_M2 and more
PARK_MIN_M2 = 2000.0  # the smallest park the park-coverage indicator counts
ESTATE_M = (150.0, 100.0)  # the planted estate's size


def _street_name(k: int) -> str:
    base = STREETS[k % len(STREETS)]
    return base if k < len(STREETS) else base.replace("街道", f"{k // len(STREETS) + 1}街道")


def streets(grid: Grid) -> list[tuple[int, int, list[tuple[int, int]]]]:
    """(street column, row, its cells) of every street: 2 x 2 cells, fewer at the district's far edges."""
    return [(si, sj, [(i, j) for i in (2 * si, 2 * si + 1) for j in (2 * sj, 2 * sj + 1)
                      if i < grid.ncx and j < grid.ncy])
            for sj in range((grid.ncy + 1) // 2) for si in range((grid.ncx + 1) // 2)]


def _cell_box(grid: Grid, i: int, j: int):
    return shapely.box(grid.ox + i * CELL, grid.oy + j * CELL, grid.ox + (i + 1) * CELL, grid.oy + (j + 1) * CELL)


def _at(grid: Grid, i: int, j: int, fx: float, fy: float) -> shapely.Point:
    return shapely.Point(grid.ox + (i + fx) * CELL, grid.oy + (j + fy) * CELL)


def write(grid: Grid, writers: dict[str, LayerWriter]) -> dict:
    """Write both layers; returns the manifest's planted cases."""
    all_streets = streets(grid)
    gap = int(grid.rng(16).integers(len(all_streets)))
    gap_area = shapely.union_all([_cell_box(grid, i, j) for i, j in all_streets[gap][2]])
    units, facilities = [], []
    for k, (_, _, cells) in enumerate(all_streets):
        name = _street_name(k)
        units.append((shapely.union_all([_cell_box(grid, i, j) for i, j in cells]), f"S{k + 1:03d}", name,
                      "street", name))
        for n, (i, j) in enumerate(cells):
            units.append((_cell_box(grid, i, j), f"S{k + 1:03d}C{n + 1}", f"{name}第{n + 1}社区", "community", name))
            facilities += [(_at(grid, i, j, fx, fy), kind, f"{name}第{n + 1}社区{suffix}", cap, np.nan)
                           for kind, suffix, fx, fy, cap in COMMUNITY_FACILITIES]
            facilities += [(_at(grid, i, j, fx, fy), "bus_stop", f"{name}第{n + 1}社区公交站{s + 1}", 0, np.nan)
                           for s, (fx, fy) in enumerate(BUS_STOPS)]
        i, j = cells[0]
        facilities += [(_at(grid, i, j, 0.5, 0.25), "health_centre", f"{name}社区卫生服务中心", 20, np.nan),
                       (_at(grid, i, j, 0.5, 0.75), "shelter", f"{name}应急避难场所", 0, SHELTER_AREA_M2)]
        if all_streets[k][0] % 2 == 0 and all_streets[k][1] % 2 == 0:
            facilities.append((_at(grid, i, j, 0.25, 0.5), "fire_station", f"{name}消防站", 0, np.nan))
        school = _secondary_school(grid, cells, gap_area) if k != gap else None
        if school is not None:
            facilities.append((school, "middle_school", f"驿城区{name}中学", 1500, np.nan))
    _add(writers["hc_units"], units, ("name", "unit", "street"), id_of=lambda u: u[1])
    writers["hc_facilities"].add(
        np.array([f[0] for f in facilities], dtype=object),
        id=np.array([f"HF{k + 1:05d}" for k in range(len(facilities))], dtype=object),
        name=np.array([f[2] for f in facilities], dtype=object),
        kind=np.array([f[1] for f in facilities], dtype=object),
        capacity=np.array([f[3] for f in facilities], dtype=float),
        effective_area_m2=np.array([f[4] for f in facilities], dtype=float))
    return {"street_without_secondary_school": _street_name(gap), "streets": len(all_streets),
            "communities": sum(len(c) for _, _, c in all_streets), "greenway": _greenway(writers),
            "compound_far_from_park": _far_estate(writers)}


def _read(writers: dict[str, LayerWriter], layer: str) -> tuple[dict, np.ndarray]:
    """A layer written so far (flushed to the GeoPackage first)."""
    w = writers[layer]
    w.flush()
    meta, _, geom, data = pyogrio.raw.read(w.path, layer=layer)
    return dict(zip(meta["fields"], data)), shapely.from_wkb(geom)


def _greenway(writers: dict[str, LayerWriter]) -> str | None:
    """The longest river bank becomes a greenway (a road of class greenway); returns its name (None when the
    district is too small for a river)."""
    banks, lines = _read(writers, "river_banks")
    if not len(lines):
        return None
    k = int(np.argmax(shapely.length(lines)))
    name = f"{banks['name'][k]}滨河绿道"
    writers["roads"].add(np.array([lines[k]], dtype=object), id=np.array(["GW0001"], dtype=object),
                         name=np.array([name], dtype=object), road_class=np.array(["greenway"], dtype=object),
                         width_m=np.array([6.0]))
    return name


def _far_estate(writers: dict[str, LayerWriter]) -> dict | None:
    """The planted estate: the spot nearest the district (least growth of its extent) whose estate lies at
    least PARK_GAP_M from every park; a compound, its residential parcel and a local street to the nearest
    road are written there (None when the district has no park or road to plant it against)."""
    _, green = _read(writers, "green")
    parks = green[shapely.area(green) >= PARK_MIN_M2]
    _, land = _read(writers, "landuse")
    _, roads = _read(writers, "roads")
    if not len(parks) or not len(roads) or not len(land):
        return None
    x0, y0, x1, y1 = shapely.total_bounds(land)
    hw, hh = ESTATE_M[0] / 2, ESTATE_M[1] / 2
    xs, ys = np.meshgrid(np.arange(x0 - 1500, x1 + 1500, 25.0), np.arange(y0 - 1500, y1 + 1500, 25.0))
    xs, ys = xs.ravel(), ys.ravel()
    _, dist = shapely.STRtree(parks).query_nearest(shapely.points(xs, ys), return_distance=True, all_matches=False)
    ok = dist >= PARK_GAP_M + np.hypot(hw, hh)  # every corner of the estate that far
    grown = (np.maximum(x1, xs + hw) - np.minimum(x0, xs - hw)) * (np.maximum(y1, ys + hh) - np.minimum(y0, ys - hh))
    k = int(np.argmin(np.where(ok, grown, np.inf)))
    estate = shapely.box(xs[k] - hw, ys[k] - hh, xs[k] + hw, ys[k] + hh)
    name = "天中新城小区"
    writers["compounds"].add(np.array([estate], dtype=object), id=np.array(["HC-ESTATE"], dtype=object),
                             name=np.array([name], dtype=object), build_year=np.array([2022]),
                             households=np.array([480]))
    writers["landuse"].add(np.array([estate], dtype=object), id=np.array(["HC-ESTATE-L"], dtype=object),
                           landuse=np.array(["residential"], dtype=object), name=np.array([name], dtype=object))
    near = roads[shapely.STRtree(roads).query_nearest(estate)[0]]
    a, b = shapely.shortest_line(estate, near).coords
    writers["roads"].add(np.array([shapely.LineString([a, b])], dtype=object), id=np.array(["HC-ESTATE-R"], dtype=object),
                         name=np.array([f"{name}支路"], dtype=object), road_class=np.array(["local"], dtype=object),
                         width_m=np.array([7.0]))
    nearest = float(shapely.distance(estate, parks).min())
    return {"name": name, "park_distance_m": round(nearest, 1)}


def _secondary_school(grid: Grid, cells, gap_area):
    """A street's secondary school: at the centre of its community farthest from the gap street, or None
    when even that one is within the service radius of the gap street's ground."""
    spots = [_at(grid, i, j, 0.5, 0.5) for i, j in cells]
    far = max(spots, key=lambda p: p.distance(gap_area))
    return far if far.distance(gap_area) > SCHOOL_GAP_M else None


def _add(w: LayerWriter, rows: list[tuple], cols: tuple[str, ...], id_of) -> None:
    w.add(np.array([r[0] for r in rows], dtype=object), id=np.array([id_of(r) for r in rows], dtype=object),
          **{c: np.array([r[k + 2] for r in rows], dtype=object) for k, c in enumerate(cols)})

"""What the city health check (issue 16) needs beyond the base district: the units and the facilities.

- `hc_units`: communities (社区), one per 750 m arterial cell, and streets (街道), one per 2 x 2 cells,
  with fields unit (street | community) and street (the community's street).
- `hc_facilities`: per community a primary school, a market and two kindergartens; per street a community
  health centre (社区卫生服务中心), an emergency shelter with its effective area, and a secondary school —
  except the planted gap: one street (chosen by the seed) has no secondary school within 1 km of any of
  its ground (the neighbours' schools stand in their community farthest from it; a street too narrow to
  keep its school that far has none). The manifest names that street.
Places are fixed fractions of a cell (quarter points, away from the rivers along the middle of river rows).
"""
from __future__ import annotations

import numpy as np
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
        i, j = cells[0]
        facilities += [(_at(grid, i, j, 0.5, 0.25), "health_centre", f"{name}社区卫生服务中心", 20, np.nan),
                       (_at(grid, i, j, 0.5, 0.75), "shelter", f"{name}应急避难场所", 0, SHELTER_AREA_M2)]
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
            "communities": sum(len(c) for _, _, c in all_streets)}


def _secondary_school(grid: Grid, cells, gap_area):
    """A street's secondary school: at the centre of its community farthest from the gap street, or None
    when even that one is within the service radius of the gap street's ground."""
    spots = [_at(grid, i, j, 0.5, 0.5) for i, j in cells]
    far = max(spots, key=lambda p: p.distance(gap_area))
    return far if far.distance(gap_area) > SCHOOL_GAP_M else None


def _add(w: LayerWriter, rows: list[tuple], cols: tuple[str, ...], id_of) -> None:
    w.add(np.array([r[0] for r in rows], dtype=object), id=np.array([id_of(r) for r in rows], dtype=object),
          **{c: np.array([r[k + 2] for r in rows], dtype=object) for k, c in enumerate(cols)})

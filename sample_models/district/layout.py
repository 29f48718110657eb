"""District layout: the street grid, rivers, blocks and their land use, and the ground surface.

The district is a grid of 750 m cells bounded by arterials. A secondary street crosses each cell both
ways (in river rows the east-west one gives way to a river between two riverside roads); local streets
cut the four quadrants into blocks. Street geometry is kept in integer decimetres from the district
origin, so junctions found on different streets compare exactly; it becomes metres in EPSG:4547 on
output. Each cell, column, row and river draws from its own seeded generator, so a cell's content does
not depend on the order or grouping in which cells are processed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from pyproj import Transformer

from cim_core.errors import InputError

from . import names

CRS = "EPSG:4547"
CENTRE_LONLAT = (114.02, 32.98)
CELL_DM = 7500  # arterial spacing, 750 m
RIVER_ROAD_DM = 1000  # riverside roads run 100 m either side of a river's mean line
V, H = 0, 1
ART, SEC, LOC = 0, 1, 2
ROAD_CLASS = np.array(["arterial", "secondary", "local"], dtype=object)

# Keys of the seeded generators (numpy SeedSequence entropy: [seed, key, index...]).
K_VART, K_VSEC, K_HART, K_HSEC, K_RIVER, K_PLAN, K_BUILD, K_UTILITY, K_IFC = range(1, 10)

# Land use of a block: probability beside an arterial, elsewhere; residential takes the rest.
LANDUSE_P = {
    "commercial": (0.22, 0.05),
    "education": (0.04, 0.05),
    "medical": (0.03, 0.02),
    "green": (0.06, 0.07),
    "industrial": (0.03, 0.02),
}
INDUSTRIAL_EDGE_FACTOR = 3.0  # industry sits on the district's edge
# Build-year ranges (first year of a compound or block; its buildings follow within 2 years).
YEARS = {
    "village": (1985, 2015),  # each house its own year in this range
    "old": (1980, 1997),
    "mid": (2000, 2011),
    "new": (2012, 2021),
    "commercial": (1995, 2020),
    "education": (1985, 2018),
    "medical": (1988, 2018),
    "industrial": (1978, 2008),
}
# Corner of a residential block given to a green or a small public building: (kind, probability).
CORNERS = [
    ("pocket_park", 0.25),
    ("green", 0.12),
    ("kindergarten", 0.10),
    ("clinic", 0.08),
    ("elderly_care", 0.07),
    ("community", 0.08),
]
VILLAGE_P = 0.1  # chance that a residential block is an urban village
FIRE_STATION_P = 0.3  # chance that a cell has a fire station
# Blocks of the central cell forced to hold the IFC buildings' footprints: quadrant -> (land use, role).
ROLES = {
    0: ("education", "school"),
    1: ("medical", "hospital"),
    2: ("commercial", "office"),
    3: ("residential", "old_residential"),
}


@lru_cache(maxsize=1)
def district_centre() -> tuple[float, float]:
    """114.02E 32.98N (CGCS2000) in EPSG:4547 metres (easting, northing)."""
    return Transformer.from_crs("EPSG:4490", CRS, always_xy=True).transform(*CENTRE_LONLAT)


def ground_z(x, y) -> np.ndarray:
    """Ground elevation (m, 1985 national height datum): one smooth surface for every layer, 72-78 m."""
    cx, cy = district_centre()
    u = (np.asarray(x, dtype=float) - cx) / 1000.0
    v = (np.asarray(y, dtype=float) - cy) / 1000.0
    z = (
        75.0
        + 1.6 * np.sin(2 * np.pi * u / 4.1 + 0.6) * np.cos(2 * np.pi * v / 5.3)
        + 1.1 * np.sin(2 * np.pi * (u + 0.7 * v) / 9.7 + 1.3)
        - 0.4 * np.cos(2 * np.pi * v / 2.9)
    )
    return np.round(z, 2)


@dataclass(frozen=True)
class Grid:
    seed: int
    scale: float
    ncx: int
    ncy: int
    ox: float  # district origin (south-west corner), whole metres
    oy: float

    def rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *key])

    @property
    def extent(self) -> tuple[float, float, float, float]:
        return (self.ox, self.oy, self.ox + self.ncx * CELL_DM / 10, self.oy + self.ncy * CELL_DM / 10)

    def is_river_row(self, j: int) -> bool:
        return j % 2 == 1

    @property
    def central_cell(self) -> tuple[int, int]:
        return (self.ncx // 2, self.ncy // 2)


def make_grid(scale: float, seed: int) -> Grid:
    """A grid of about 16 x scale cells (scale 1: 4 x 4 cells, 3 km x 3 km) centred on the district centre.

    At least two rows, so that there is a river for the drainage to flow to.
    """
    if not scale > 0:
        raise InputError(f"scale must be positive, not {scale}")
    if seed < 0 or int(seed) != seed:
        raise InputError(f"seed must be a non-negative integer, not {seed}")
    n = 16 * scale
    ncx = max(1, round(np.sqrt(n)))
    ncy = max(2, round(n / ncx))
    cx, cy = district_centre()
    return Grid(
        int(seed),
        float(scale),
        ncx,
        ncy,
        float(round(cx - ncx * CELL_DM / 20)),
        float(round(cy - ncy * CELL_DM / 20)),
    )


@dataclass
class River:
    name: str
    row: int
    ym: float  # mean line (northing, m)
    a1: float
    l1: float
    p1: float
    a2: float
    l2: float
    p2: float
    w0: float
    wa: float
    wl: float
    wp: float

    def centre(self, x):
        x = np.asarray(x, dtype=float)
        return (
            self.ym
            + self.a1 * np.sin(2 * np.pi * x / self.l1 + self.p1)
            + self.a2 * np.sin(2 * np.pi * x / self.l2 + self.p2)
        )

    def banks(self, x) -> tuple[np.ndarray, np.ndarray]:
        """(south bank, north bank) northings at eastings x; at most 50 m from the mean line."""
        c = self.centre(x)
        h = self.w0 / 2 + self.wa * np.sin(2 * np.pi * np.asarray(x, dtype=float) / self.wl + self.wp)
        return c - h, c + h


@dataclass
class Lines:
    """Street centrelines: V streets at x = c, H streets at y = c, spanning a..b (all dm from the origin)."""

    orient: np.ndarray
    c: np.ndarray
    a: np.ndarray
    b: np.ndarray
    cls: np.ndarray
    width: np.ndarray  # m, between red lines
    name: np.ndarray
    quad: np.ndarray  # quadrant of a local street, -1 for major streets
    river: np.ndarray  # river index of a riverside road, else -1


class _LineList:
    def __init__(self):
        self.rows: list[tuple] = []

    def add(self, orient, c, a, b, cls, width, name, quad=-1, river=-1) -> int:
        self.rows.append((orient, int(c), int(a), int(b), cls, float(width), name, quad, river))
        return len(self.rows) - 1

    def pos(self, k: int) -> int:
        return self.rows[k][1]

    def width(self, k: int) -> float:
        return self.rows[k][5]

    def cls(self, k: int) -> int:
        return self.rows[k][4]

    def name(self, k: int) -> str:
        return self.rows[k][6]

    def build(self) -> Lines:
        cols = list(zip(*self.rows))
        ints = [np.array(c, dtype=np.int64) for c in cols[:4]]
        return Lines(
            *ints,
            np.array(cols[4], dtype=np.int8),
            np.array(cols[5]),
            np.array(cols[6], dtype=object),
            np.array(cols[7], dtype=np.int64),
            np.array(cols[8], dtype=np.int64),
        )


@dataclass
class Block:
    """A parcel between street red lines, with its land use."""

    i: int
    j: int
    quad: int
    rect: tuple[float, float, float, float]  # world metres
    sides: tuple[int, int, int, int]  # street line ids west, east, south, north
    arterial: bool
    landuse: str = "residential"
    name: str = ""
    year: int | None = None
    era: str | None = None  # residential: a compound old (pre-2000), mid or new; or an urban village
    corner: str | None = None
    role: str | None = None
    compound_id: str | None = None


@dataclass
class Plan:
    grid: Grid
    lines: Lines
    rivers: list[River]
    blocks: list[Block] = field(default_factory=list)
    by_cell: dict[tuple[int, int], list[Block]] = field(default_factory=dict)


def _ranked(n: int, mid: float) -> np.ndarray:
    """Rank of each index 0..n-1 by distance from mid (0 = nearest), for naming from the centre out."""
    order = np.argsort(np.abs(np.arange(n) - mid), kind="stable")
    rank = np.empty(n, dtype=int)
    rank[order] = np.arange(n)
    return rank


def plan_district(grid: Grid) -> Plan:
    """Streets, rivers and blocks of the whole district (cheap: no buildings yet)."""
    ll = _LineList()
    namer = names.Namer(grid.seed)
    va, vs, ha = _major_streets(grid, ll)
    rivers, mid_lines = _rows(grid, ll)
    blocks: list[Block] = []
    # Local streets of the neighbouring quadrant across a major street (below, or to the west), keyed by
    # that street and the quadrant's other bound: a new local street that would meet one of them within
    # 25 m continues it instead.
    neighbours: dict[tuple[int, int], list[int]] = {}
    for j in range(grid.ncy):
        for i in range(grid.ncx):
            rng = grid.rng(K_PLAN, i, j)
            cell_blocks = []
            for q in range(4):
                west, east = (va[i], vs[i]) if q % 2 == 0 else (vs[i], va[i + 1])
                south, north = (ha[j], mid_lines[j][0]) if q < 2 else (mid_lines[j][1], ha[j + 1])
                quad = (j * grid.ncx + i) * 4 + q
                cell_blocks += _quadrant(
                    grid, ll, rng, namer, i, j, quad, (west, east, south, north), neighbours
                )
            _assign_landuse(grid, rng, namer, cell_blocks, i, j)
            blocks.extend(cell_blocks)
    for k, b in enumerate(b for b in blocks if b.era in ("old", "mid", "new")):
        b.compound_id = f"C{k + 1:05d}"
    by_cell: dict[tuple[int, int], list[Block]] = {}
    for b in blocks:
        by_cell.setdefault((b.i, b.j), []).append(b)
    return Plan(grid, ll.build(), rivers, blocks, by_cell)


def _major_streets(grid: Grid, ll: _LineList) -> tuple[list[int], list[int], list[int]]:
    """Line ids of the north-south arterials, the north-south secondary streets and the east-west
    arterials."""
    ext_x, ext_y = grid.ncx * CELL_DM, grid.ncy * CELL_DM
    rank = _ranked(grid.ncx + 1, grid.ncx / 2)
    va = [
        ll.add(
            V,
            i * CELL_DM,
            0,
            ext_y,
            ART,
            grid.rng(K_VART, i).choice([40, 45, 50]),
            names.major_name(names.ARTERIALS_NS, "经路", rank[i]),
        )
        for i in range(grid.ncx + 1)
    ]
    rank = _ranked(grid.ncx, grid.ncx / 2 - 0.5)
    vs = []
    for i in range(grid.ncx):
        r = grid.rng(K_VSEC, i)
        vs.append(
            ll.add(
                V,
                i * CELL_DM + CELL_DM // 2 + 10 * r.integers(-60, 61),
                0,
                ext_y,
                SEC,
                r.choice([24, 26, 30]),
                names.major_name(names.SECONDARY_NS, "经街", rank[i]),
            )
        )
    rank = _ranked(grid.ncy + 1, grid.ncy / 2)
    ha = [
        ll.add(
            H,
            j * CELL_DM,
            0,
            ext_x,
            ART,
            grid.rng(K_HART, j).choice([40, 45, 50]),
            names.major_name(names.ARTERIALS_EW, "纬路", rank[j]),
        )
        for j in range(grid.ncy + 1)
    ]
    return va, vs, ha


def _rows(grid: Grid, ll: _LineList) -> tuple[list[River], list[tuple[int, int]]]:
    """Across the middle of each row of cells, an east-west secondary street or a river between two
    riverside roads: the rivers, and per row the street above its south half and below its north half."""
    river_rows = [j for j in range(grid.ncy) if grid.is_river_row(j)]
    river_rank = _ranked(len(river_rows), (grid.ncy / 2 - 1.5) / 2)
    rank = _ranked(grid.ncy, grid.ncy / 2 - 0.5)
    rivers: list[River] = []
    mid_lines: list[tuple[int, int]] = []
    for j in range(grid.ncy):
        mid = j * CELL_DM + CELL_DM // 2
        if grid.is_river_row(j):
            rk = river_rank[river_rows.index(j)]
            name = names.RIVERS[rk] if rk < len(names.RIVERS) else f"{names.cn_number(rk + 1)}号排涝河"
            rivers.append(_river(grid, j, name, grid.oy + mid / 10))
            stem = name.removesuffix("河")
            ext_x = grid.ncx * CELL_DM
            s = ll.add(H, mid - RIVER_ROAD_DM, 0, ext_x, SEC, 20, f"{stem}南路", river=len(rivers) - 1)
            n = ll.add(H, mid + RIVER_ROAD_DM, 0, ext_x, SEC, 20, f"{stem}北路", river=len(rivers) - 1)
            mid_lines.append((s, n))
        else:
            r = grid.rng(K_HSEC, j)
            s = ll.add(
                H,
                mid + 10 * r.integers(-60, 61),
                0,
                grid.ncx * CELL_DM,
                SEC,
                r.choice([24, 26, 30]),
                names.major_name(names.SECONDARY_EW, "纬街", rank[j]),
            )
            mid_lines.append((s, s))
    return rivers, mid_lines


def _river(grid: Grid, j: int, name: str, ym: float) -> River:
    """The river of row j, meandering about its mean line ym, with a varying width."""
    r = grid.rng(K_RIVER, j)
    tau = 2 * np.pi
    return River(
        name,
        j,
        ym,
        r.uniform(10, 18),
        r.uniform(900, 1500),
        r.uniform(0, tau),
        r.uniform(3, 8),
        r.uniform(300, 500),
        r.uniform(0, tau),
        r.uniform(28, 40),
        r.uniform(1.5, 3),
        r.uniform(600, 1000),
        r.uniform(0, tau),
    )


def _quadrant(
    grid: Grid, ll: _LineList, rng, namer, i: int, j: int, quad: int, bounds, neighbours
) -> list[Block]:
    """The blocks of one quadrant of cell (i, j) between its bounding streets (west, east, south, north),
    cut by new local streets; records those as neighbours of the quadrants to the north and east."""
    west, east, south, north = bounds
    lv = _local_streets(ll, rng, namer, V, west, east, south, north, quad, neighbours.get((south, west), []))
    lh = _local_streets(ll, rng, namer, H, south, north, west, east, quad, neighbours.get((west, south), []))
    neighbours[(north, west)], neighbours[(east, south)] = lv, lh
    blocks = []
    for yb, yt in itertools.pairwise([south, *lh, north]):
        for xl, xr in itertools.pairwise([west, *lv, east]):
            rect = (
                grid.ox + ll.pos(xl) / 10 + ll.width(xl) / 2,
                grid.oy + ll.pos(yb) / 10 + ll.width(yb) / 2,
                grid.ox + ll.pos(xr) / 10 - ll.width(xr) / 2,
                grid.oy + ll.pos(yt) / 10 - ll.width(yt) / 2,
            )
            sides = (xl, xr, yb, yt)
            blocks.append(Block(i, j, quad, rect, sides, any(ll.cls(s) == ART for s in sides)))
    return blocks


def _local_streets(ll: _LineList, rng, namer, orient, lo, hi, span_lo, span_hi, quad, across) -> list[int]:
    """Local streets across a quadrant, every 170-230 m, as line ids in position order.

    across: local streets meeting span_lo from the other side; one closer than 25 m is continued (same
    position, width and name), so that streets cross rather than meet a few metres apart."""
    extent = ll.pos(hi) - ll.pos(lo)
    n = max(0, round(extent / rng.uniform(1700, 2300)) - 1)
    out = []
    for k in range(n):
        c = 10 * round((ll.pos(lo) + extent * (k + 1) / (n + 1) + 10 * rng.integers(-15, 16)) / 10)
        width = rng.choice([12, 14, 16])
        near = [m for m in across if abs(ll.pos(m) - c) < 250]
        if near:
            c, width, name = ll.pos(near[0]), ll.width(near[0]), ll.name(near[0])
        else:
            name = namer.local_street()
        out.append(ll.add(orient, c, ll.pos(span_lo), ll.pos(span_hi), LOC, width, name, quad=quad))
    return out


def _assign_landuse(grid: Grid, rng, namer, blocks: list[Block], i: int, j: int) -> None:
    edge = i in (0, grid.ncx - 1) or j in (0, grid.ncy - 1)
    u = rng.random(len(blocks))
    on_art = np.array([b.arterial for b in blocks])
    cum = np.zeros(len(blocks))
    for landuse, (p_art, p_other) in LANDUSE_P.items():
        p = np.where(on_art, p_art, p_other) * (
            INDUSTRIAL_EDGE_FACTOR if landuse == "industrial" and edge else 1
        )
        hit = (u >= cum) & (u < cum + p)
        for k in np.flatnonzero(hit):
            blocks[k].landuse = landuse
        cum += p
    if (i, j) == grid.central_cell:
        for q, (landuse, role) in ROLES.items():
            first = next(b for b in blocks if b.quad % 4 == q)
            first.landuse, first.role = landuse, role
    # Some residential blocks are urban villages (城中村) of self-built houses, not compounds.
    for b in blocks:
        if b.landuse == "residential" and b.role is None and rng.random() < VILLAGE_P:
            b.era = "village"
    # A third of the residential compounds are pre-2000: every third one, from a random start.
    compounds = [b for b in blocks if b.landuse == "residential" and b.era is None]
    offset = rng.integers(3)
    for k, b in enumerate(compounds):
        b.era = (
            "old" if (k + offset) % 3 == 0 or b.role == "old_residential" else str(rng.choice(["mid", "new"]))
        )
    corner_kinds = [c for c, _ in CORNERS]
    corner_p = np.array([p for _, p in CORNERS])
    for b in blocks:
        if b.era in ("old", "mid", "new") and b.role is None:
            u = rng.random()
            k = int(np.searchsorted(np.cumsum(corner_p), u, side="right"))
            b.corner = corner_kinds[k] if k < len(corner_kinds) else None
        years = YEARS[b.era if b.landuse == "residential" else b.landuse] if b.landuse != "green" else None
        b.year = int(rng.integers(years[0], years[1] + 1)) if years else None
    if (i, j) == grid.central_cell or rng.random() < FIRE_STATION_P:
        free = [b for b in blocks if b.era in ("old", "mid", "new") and b.role is None]
        if free:
            free[int(rng.integers(len(free)))].corner = "fire_station"
    for b in blocks:
        if b.landuse == "residential":
            b.name = namer.village() if b.era == "village" else namer.compound(b.era == "old")
        else:
            b.name = getattr(
                namer,
                {"education": "school", "medical": "hospital", "green": "park"}.get(b.landuse, b.landuse),
            )()


def river_outline(
    river: River, x0: float, x1: float, extra_x=()
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eastings sampled every 10 m (plus extra_x, where outfalls sit on the banks) and both banks there."""
    xs = np.unique(
        np.concatenate(
            [np.linspace(x0, x1, int(np.ceil((x1 - x0) / 10)) + 1), np.asarray(extra_x, dtype=float)]
        )
    )
    xs = xs[(xs >= x0) & (xs <= x1)]
    s, n = river.banks(xs)
    return xs, s, n


def riverside_strips(plan: Plan):
    """Green strips between each river bank and its riverside road, cut by the streets crossing the river.

    Yields (river, polygon coordinates) for each strip.
    """
    L = plan.lines
    crossing = np.flatnonzero((L.orient == V) & (L.quad < 0))
    crossing = crossing[np.argsort(L.c[crossing], kind="stable")]
    road_half = 10.0  # riverside roads are 20 m wide
    for river in plan.rivers:
        top = river.ym + RIVER_ROAD_DM / 10 - road_half - 3
        bottom = river.ym - RIVER_ROAD_DM / 10 + road_half + 3
        for a, b in itertools.pairwise(crossing):
            x0 = plan.grid.ox + L.c[a] / 10 + L.width[a] / 2 + 3
            x1 = plan.grid.ox + L.c[b] / 10 - L.width[b] / 2 - 3
            xs, s, n = river_outline(river, x0, x1)
            yield river, np.column_stack([np.r_[xs, x1, x0], np.r_[n + 5, top, top]])
            yield river, np.column_stack([np.r_[xs, x1, x0], np.r_[s - 5, bottom, bottom]])

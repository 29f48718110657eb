"""Buildings, compounds, land-use parcels, greens and facilities of one cell's blocks.

Footprints are rectangles laid out per block by typology: residential slabs in rows spaced for winter
sunlight (taller rows further apart), shop podiums and office towers, school and hospital campuses,
industrial sheds. Everything in a cell comes from the cell's own generator.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .layout import K_BUILD, LOC, YEARS, Block, Plan, ground_z

SETBACK = 6.0  # building line behind the street red line (m)
PARAPET = {"industrial": 0.0}  # m above the top storey; 0.9 unless listed
STOREY_H = {
    "residential": 2.9,
    "commercial": 4.2,
    "office": 3.8,
    "education": 3.9,
    "medical": 4.0,
    "industrial": 6.0,
    "public": 3.6,
}
# Residential typologies per era: footprint length and depth (m), floor counts drawn from, gap between
# buildings of a row (m), row spacing as a factor of building height (sunlight rule).
RESIDENTIAL = {
    "old": {"L": (30, 54), "D": (10, 12), "floors": [5, 6, 6, 6, 7], "gap": (6, 10), "sun": 1.0},
    "mid": {"L": (36, 54), "D": (12, 14), "floors": [6, 7, 11, 12, 18], "gap": (8, 14), "sun": 1.0},
    "new": {"L": (26, 36), "D": (15, 18), "floors": [11, 18, 26, 33], "gap": (14, 22), "sun": 0.6},
}
# Urban-village houses: footprint (m), lane width (m), floors, share of empty lots.
VILLAGE = {"L": (9, 14), "D": (10, 14), "lane": (3, 4.5), "floors": (2, 5), "vacant": 0.1}
DWELLING_M2 = 95.0  # gross floor area per household
# Street-front shops along major streets: depth, service lane behind, length and gap ranges (m), and the
# chance that a major-street side has none.
SHOP_DEPTH, SHOP_LANE, SHOP_LENGTH, SHOP_GAP, SHOP_SKIP_P = 12.0, 8.0, (24, 45), (5, 10), 0.4
# Buildings in a residential block's corner: use, length, depth, floors range, facility, capacity range, name.
CORNER_BUILDINGS = {
    "kindergarten": ("education", 36, 24, (2, 3), "kindergarten", (180, 360), "幼儿园"),
    "clinic": ("medical", 24, 14, (2, 3), "clinic", (20, 60), "社区卫生服务站"),
    "elderly_care": ("public", 30, 16, (3, 4), "elderly_care", (40, 150), "日间照料中心"),
    "community": ("public", 28, 18, (2, 3), None, None, "社区服务中心"),
    "fire_station": ("public", 40, 22, (2, 3), "fire_station", (4, 8), "消防救援站"),
}
CORNER_GREENS = {"pocket_park": (30, 42), "green": (48, 65)}  # side of the square (m)
GREEN_KIND = [(5000.0, "park"), (2000.0, "green"), (0.0, "pocket_park")]  # by area (m2)
CAPACITY = {"school": (900, 2400), "hospital": (300, 1200), "parking": (150, 600)}


def green_kind(area):
    area = np.asarray(area)
    return np.select([area >= a for a, _ in GREEN_KIND], [k for _, k in GREEN_KIND], "").astype(object)


def structure(use, floors, year):
    """Structural system from use, storeys and age (vectorised)."""
    return np.select(
        [
            use == "industrial",
            ((floors <= 7) & (year < 2000) | (floors <= 4)) & (use == "residential"),
            (use == "office") & (floors > 24),
            floors >= 10,
        ],
        ["steel", "brick-concrete", "steel", "reinforced concrete"],
        "frame",
    ).astype(object)


@dataclass
class CellFeatures:
    """Columns of each layer for one cell (lists of per-block arrays, concatenated by `columns`)."""

    buildings: dict[str, list] = field(default_factory=dict)
    landuse: dict[str, list] = field(default_factory=dict)
    compounds: dict[str, list] = field(default_factory=dict)
    green: dict[str, list] = field(default_factory=dict)
    facilities: dict[str, list] = field(default_factory=dict)
    targets: dict[str, tuple[int, int]] = field(default_factory=dict)  # IFC role -> (building index, line)

    def n_buildings(self) -> int:
        return sum(len(a) for a in self.buildings.get("x0", []))

    @staticmethod
    def add(layer: dict[str, list], **cols: np.ndarray) -> None:
        for k, v in cols.items():
            layer.setdefault(k, []).append(v)

    @staticmethod
    def columns(layer: dict[str, list]) -> dict[str, np.ndarray]:
        return {k: np.concatenate(v) if v else np.array([]) for k, v in layer.items()}


def _grid(zone, L, D, gap, pitch, rng, jitter=1.5):
    """Footprints (x0, y0, x1, y1) of L x D buildings in rows `pitch` apart, centred in zone."""
    x0, y0, x1, y1 = zone
    w, h = x1 - x0, y1 - y0
    if w < L or h < D:
        return (np.empty(0),) * 4
    nc = int((w + gap) // (L + gap))
    nr = int((h - D) // pitch) + 1
    cx = x0 + (w - (nc * L + (nc - 1) * gap)) / 2 + L / 2 + np.arange(nc) * (L + gap)
    cy = y0 + (h - ((nr - 1) * pitch + D)) / 2 + D / 2 + np.arange(nr) * pitch
    gx, gy = np.meshgrid(cx, cy)
    return _rects(gx.ravel() + rng.uniform(-jitter, jitter, gx.size), gy.ravel(), L, D)


def _rects(cx, cy, L, D):
    L, D = round(L, 1), round(D, 1)
    x0, y0 = np.round(np.asarray(cx) - L / 2, 1), np.round(np.asarray(cy) - D / 2, 1)
    return x0, y0, np.round(x0 + L, 1), np.round(y0 + D, 1)


def _corner_rect(zone, w, h, corner):
    x0, y0, x1, y1 = zone
    cx = x0 if corner % 2 == 0 else x1 - w
    cy = y0 if corner < 2 else y1 - h
    return (cx, cy, cx + w, cy + h)


def _outside(rects, box, margin=4.0):
    x0, y0, x1, y1 = rects
    return (
        (x1 <= box[0] - margin) | (x0 >= box[2] + margin) | (y1 <= box[1] - margin) | (y0 >= box[3] + margin)
    )


def _take(rects, keep):
    return tuple(a[keep] for a in rects)


class _CellBuilder:
    def __init__(self, plan: Plan, i: int, j: int):
        self.plan = plan
        self.rng = plan.grid.rng(K_BUILD, i, j)
        self.out = CellFeatures()

    def buildings(self, block: Block, rects, floors, use, years, names, compound=None) -> int:
        """Add footprints; returns the cell index of the first."""
        first = self.out.n_buildings()
        n = len(rects[0])
        if n:
            CellFeatures.add(
                self.out.buildings,
                x0=rects[0],
                y0=rects[1],
                x1=rects[2],
                y1=rects[3],
                floors=np.broadcast_to(np.asarray(floors, dtype=np.int64), (n,)),
                use=np.full(n, use, dtype=object),
                year=np.asarray(years, dtype=np.int64),
                name=np.asarray(names, dtype=object),
                compound=np.full(n, compound, dtype=object),
            )
        return first

    def facility(self, x, y, kind, name, capacity_range):
        CellFeatures.add(
            self.out.facilities,
            x=np.array([float(x)]),
            y=np.array([float(y)]),
            kind=np.array([kind], dtype=object),
            name=np.array([name], dtype=object),
            capacity=np.array([int(self.rng.integers(capacity_range[0], capacity_range[1] + 1))]),
        )

    def green(self, rect, name):
        x0, y0, x1, y1 = rect
        area = round((x1 - x0) * (y1 - y0), 1)
        CellFeatures.add(
            self.out.green,
            x0=np.array([x0]),
            y0=np.array([y0]),
            x1=np.array([x1]),
            y1=np.array([y1]),
            name=np.array([name], dtype=object),
            kind=green_kind([area]),
            area_m2=np.array([area]),
        )

    def years(self, block: Block, n: int):
        return np.minimum(block.year + self.rng.integers(0, 3, n), 2023)

    def numbered(self, block: Block, n: int, start: int = 1):
        return [f"{block.name}{k}号楼" for k in range(start, start + n)]

    # -- block typologies --------------------------------------------------------------------------

    def residential(self, block: Block, zone):
        if block.era == "village":
            self.village(block, zone)
            return
        rng = self.rng
        t = RESIDENTIAL[block.era]
        zone = self.street_shops(block, zone)
        L, D = rng.uniform(*t["L"]), rng.uniform(*t["D"])
        gap = rng.uniform(*t["gap"])
        base = 6 if block.role else int(rng.choice(t["floors"]))
        pitch = D + np.clip(t["sun"] * (base + 1) * STOREY_H["residential"], 12, 45)
        rects = _grid(zone, L, D, gap, pitch, rng)
        corner = None
        if block.corner:
            c = int(rng.integers(4))
            if block.corner in CORNER_GREENS:
                side = rng.uniform(*CORNER_GREENS[block.corner])
                corner = _corner_rect(zone, side, side, c)
                self.green(corner, f"{block.name}{'游园' if block.corner == 'pocket_park' else '绿地'}")
            else:
                use, bl, bd, fl, kind, cap, suffix = CORNER_BUILDINGS[block.corner]
                corner = _corner_rect(zone, bl + 8, bd + 8, c)
                name = (
                    f"{self.plan.lines.name[block.sides[2]]}{suffix}"
                    if kind == "fire_station"
                    else f"{block.name}{suffix}"
                )
                r = _rects([(corner[0] + corner[2]) / 2], [(corner[1] + corner[3]) / 2], bl, bd)
                self.buildings(
                    block, r, int(rng.integers(fl[0], fl[1] + 1)), use, self.years(block, 1), [name]
                )
                if kind:
                    self.facility((r[0][0] + r[2][0]) / 2, (r[1][0] + r[3][0]) / 2, kind, name, cap)
            rects = _take(rects, _outside(rects, corner))
        n = len(rects[0])
        floors = base + (0 if block.role else rng.integers(-1, 2, n))
        first = self.buildings(
            block,
            rects,
            floors,
            "residential",
            self.years(block, n),
            self.numbered(block, n),
            compound=block.name,
        )
        if block.role == "old_residential" and n:
            # The footprint nearest its street: its service pipes reach the street without crossing others.
            px0, py0, px1, py1 = block.rect
            d = np.column_stack([rects[0] - px0, px1 - rects[2], rects[1] - py0, py1 - rects[3]])
            k = int(np.argmin(d.min(axis=1)))
            self.out.targets["old_residential"] = (first + k, block.sides[int(np.argmin(d[k]))])
        households = int(np.sum(floors * (rects[2] - rects[0]) * (rects[3] - rects[1])) * 0.8 / DWELLING_M2)
        x0, y0, x1, y1 = block.rect
        CellFeatures.add(
            self.out.compounds,
            x0=np.array([x0]),
            y0=np.array([y0]),
            x1=np.array([x1]),
            y1=np.array([y1]),
            id=np.array([block.compound_id], dtype=object),
            name=np.array([block.name], dtype=object),
            build_year=np.array([block.year]),
            households=np.array([households]),
        )

    def village(self, block: Block, zone):
        """Self-built houses of an urban village, packed along narrow lanes, some lots empty."""
        rng = self.rng
        L, D, lane = rng.uniform(*VILLAGE["L"]), rng.uniform(*VILLAGE["D"]), rng.uniform(*VILLAGE["lane"])
        rects = _grid(zone, L, D, lane, D + lane, rng, jitter=0.5)
        rects = _take(rects, rng.random(len(rects[0])) >= VILLAGE["vacant"])
        n = len(rects[0])
        years = rng.integers(YEARS["village"][0], YEARS["village"][1] + 1, n)
        self.buildings(
            block,
            rects,
            rng.integers(VILLAGE["floors"][0], VILLAGE["floors"][1] + 1, n),
            "residential",
            years,
            [f"{block.name}{k}号" for k in range(1, n + 1)],
        )

    def street_shops(self, block: Block, zone):
        """Rows of one- to three-storey shops (沿街商铺) along the block's major-street sides.

        Returns the zone left for the compound behind them. The block of the IFC buildings has none, so
        that their service pipes reach the street unobstructed.
        """
        if block.role:
            return zone
        rng = self.rng
        x0, y0, x1, y1 = zone
        cls = self.plan.lines.cls[list(block.sides)]
        depth, lane = SHOP_DEPTH, SHOP_LANE
        strips = [
            (0, (x0, y0, x0 + depth, y1)),
            (1, (x1 - depth, y0, x1, y1)),
            (2, (x0 + depth + lane, y0, x1 - depth - lane, y0 + depth)),
            (3, (x0 + depth + lane, y1 - depth, x1 - depth - lane, y1)),
        ]
        shrink = [0.0] * 4
        for side, (sx0, sy0, sx1, sy1) in strips:
            if cls[side] == LOC or rng.random() < SHOP_SKIP_P:
                continue
            L, gap = rng.uniform(*SHOP_LENGTH), rng.uniform(*SHOP_GAP)
            if side < 2:  # a north-south row: lay it out east-west and swap the axes
                r = _grid((sy0, sx0, sy1, sx1), L, depth, gap, 100, rng, jitter=0)
                r = (r[1], r[0], r[3], r[2])
            else:
                r = _grid((sx0, sy0, sx1, sy1), L, depth, gap, 100, rng, jitter=0)
            n = len(r[0])
            self.buildings(
                block,
                r,
                rng.integers(1, 4, n),
                "commercial",
                self.years(block, n),
                [f"{block.name}沿街商铺{k}号" for k in range(1, n + 1)],
            )
            shrink[side] = depth + lane
        return (x0 + shrink[0], y0 + shrink[2], x1 - shrink[1], y1 - shrink[3])

    def commercial(self, block: Block, zone):
        rng = self.rng
        x0, y0, x1, y1 = zone
        band = min(45.0, 0.45 * (y1 - y0))
        L, D = rng.uniform(40, 80), min(rng.uniform(20, 32), band - 2)
        shops = _grid((x0, y0, x1, y0 + band), L, D, rng.uniform(10, 18), band + 100, rng)
        n = len(shops[0])
        self.buildings(
            block, shops, rng.integers(2, 6, n), "commercial", self.years(block, n), self.numbered(block, n)
        )
        north = (x0, y0 + band + 15, x1, y1)
        if block.role == "office" or rng.random() < 0.55:
            L, D = rng.uniform(30, 45), rng.uniform(24, 32)
            towers = _grid(north, L, D, rng.uniform(22, 30), D + 30, rng)
            m = len(towers[0])
            floors = np.full(m, rng.integers(14, 19)) if block.role else rng.integers(12, 31, m)
            first = self.buildings(
                block, towers, floors, "office", self.years(block, m), self.numbered(block, m, n + 1)
            )
            if block.role == "office" and m:
                self.out.targets["office"] = (first, -1)
        else:
            L, D = rng.uniform(40, 60), rng.uniform(20, 28)
            more = _grid(north, L, D, rng.uniform(12, 18), D + 20, rng)
            m = len(more[0])
            self.buildings(
                block,
                more,
                rng.integers(3, 7, m),
                "commercial",
                self.years(block, m),
                self.numbered(block, m, n + 1),
            )
        _, _, px1, py1 = block.rect
        self.facility(px1 - 3, py1 - 3, "parking", f"{block.name}停车场", CAPACITY["parking"])

    def education(self, block: Block, zone):
        rng = self.rng
        x0, y0, x1, y1 = zone
        split = y0 + 0.45 * (y1 - y0)
        L, D = rng.uniform(50, 70), rng.uniform(14, 18)
        teach = _grid((x0, split, x1, y1), L, D, rng.uniform(12, 18), D + 25, rng)
        n = len(teach[0])
        floors = np.full(n, 4) if block.role else rng.choice([4, 5], n)
        first = self.buildings(
            block, teach, floors, "education", self.years(block, n), self.numbered(block, n)
        )
        gl, gd = rng.uniform(36, 44), rng.uniform(24, 30)
        if split - 10 - y0 >= gd and x1 - x0 >= gl:
            gym = _rects([x1 - gl / 2], [y0 + gd / 2], gl, gd)
            self.buildings(block, gym, 2, "education", self.years(block, 1), [f"{block.name}体育馆"])
        if n:
            self.facility(
                (teach[0][0] + teach[2][0]) / 2,
                (teach[1][0] + teach[3][0]) / 2,
                "school",
                block.name,
                CAPACITY["school"],
            )
            if block.role == "school":
                self.out.targets["school"] = (first, -1)

    def medical(self, block: Block, zone):
        rng = self.rng
        x0, y0, x1, y1 = zone
        ymid = (y0 + y1) / 2
        L, D = min(rng.uniform(45, 60), x1 - x0 - 10), rng.uniform(20, 24)
        main = _rects([x0 + 5 + L / 2], [(ymid + 5 + y1) / 2], L, D)
        floors = int(rng.integers(8, 11) if block.role else rng.integers(8, 17))
        first = self.buildings(block, main, floors, "medical", self.years(block, 1), [f"{block.name}住院楼"])
        side = _grid((x0 + L + 25, ymid + 5, x1, y1), rng.uniform(30, 38), rng.uniform(14, 18), 12, 30, rng)
        m = len(side[0])
        self.buildings(
            block, side, rng.integers(3, 7, m), "medical", self.years(block, m), self.numbered(block, m, 2)
        )
        ol = min(rng.uniform(60, 80), x1 - x0 - 10)
        od = min(rng.uniform(28, 34), ymid - 5 - y0)
        out = _rects([(x0 + x1) / 2], [(y0 + ymid - 5) / 2], ol, od)
        self.buildings(
            block, out, int(rng.integers(4, 6)), "medical", self.years(block, 1), [f"{block.name}门诊楼"]
        )
        self.facility(
            (main[0][0] + main[2][0]) / 2,
            (main[1][0] + main[3][0]) / 2,
            "hospital",
            block.name,
            CAPACITY["hospital"],
        )
        _, py0, px1, _ = block.rect
        self.facility(px1 - 3, py0 + 3, "parking", f"{block.name}停车场", CAPACITY["parking"])
        if block.role == "hospital":
            self.out.targets["hospital"] = (first, -1)

    def industrial(self, block: Block, zone):
        rng = self.rng
        ol, od = rng.uniform(30, 40), 14.0
        corner = _corner_rect(zone, ol + 8, od + 8, 2)
        office = _rects([(corner[0] + corner[2]) / 2], [(corner[1] + corner[3]) / 2], ol, od)
        self.buildings(
            block, office, int(rng.integers(3, 5)), "office", self.years(block, 1), [f"{block.name}办公楼"]
        )
        D = rng.uniform(30, 48)
        sheds = _grid(zone, rng.uniform(60, 110), D, rng.uniform(15, 20), D + 18, rng)
        sheds = _take(sheds, _outside(sheds, corner))
        n = len(sheds[0])
        self.buildings(
            block,
            sheds,
            rng.integers(1, 3, n),
            "industrial",
            self.years(block, n),
            self.numbered(block, n, 2),
        )

    def block(self, block: Block):
        x0, y0, x1, y1 = block.rect
        CellFeatures.add(
            self.out.landuse,
            x0=np.array([x0]),
            y0=np.array([y0]),
            x1=np.array([x1]),
            y1=np.array([y1]),
            landuse=np.array([block.landuse], dtype=object),
            name=np.array([block.name], dtype=object),
        )
        if block.landuse == "green":
            self.green(block.rect, block.name)
            return
        zone = (x0 + SETBACK, y0 + SETBACK, x1 - SETBACK, y1 - SETBACK)
        getattr(self, block.landuse)(block, zone)


def build_cell(plan: Plan, i: int, j: int) -> CellFeatures:
    """All features of cell (i, j), from the cell's own generator."""
    cb = _CellBuilder(plan, i, j)
    for block in plan.by_cell[(i, j)]:
        cb.block(block)
    return cb.out


def building_columns(cf: CellFeatures) -> dict[str, np.ndarray]:
    """Footprint columns of a cell with the derived ones: height, structure, ground elevation."""
    b = CellFeatures.columns(cf.buildings)
    if not b:
        return b
    use = b["use"]
    floors = b["floors"].astype(np.int64)
    year = b["year"].astype(np.int64)
    storey = np.array([STOREY_H[u] for u in use])
    parapet = np.array([PARAPET.get(u, 0.9) for u in use])
    b["floors"], b["year"] = floors, year
    b["height_m"] = np.round(floors * storey + parapet, 1)
    b["structure"] = structure(use, floors, year)
    b["ground_z"] = ground_z((b["x0"] + b["x1"]) / 2, (b["y0"] + b["y1"]) / 2)
    return b

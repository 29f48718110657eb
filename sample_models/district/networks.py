"""Street graph and the underground pipe networks beneath it.

Each utility runs along the street centrelines it serves, shifted sideways by a share of the street's
width (a fixed place in the cross-section, so water, gas and the rest never overlap). A junction of a
north-south and an east-west street therefore becomes, for each utility, the crossing of the two shifted
lines, and every segment ends exactly on a node.

Pressure networks (water, gas, heat) and cable ducts (power, telecom) are cut into segments of at most
60 m, with valves near junctions and hydrants along water mains. Gravity networks (rain, sewage) flow to
outfalls on the river banks: each street stretch drains towards the nearer outfall along the network (a
stretch reached from both ends is split at a summit manhole), manholes sit at most 50 m apart, and
inverts fall downstream by at least the minimum slope. Where lines of different utilities cross, the
pressure lines bend over or under the others (crossings.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from . import crossings
from .layout import ART, K_UTILITY, LOC, Lines, Plan, V, ground_z

# Utility table (CJJ 61-2017 codes): position in the street cross-section as a share of half the street
# width (negative: west or south of the centreline), owner, node depth (m, to the centreline for pressure
# pipes and ducts), maximum segment length (m), share of local streets served.
#
# Depths as a city lays them: tops at about telecom 0.75-0.95 m, power 0.80-0.90, gas 1.05-1.15, water
# 1.30-1.55, heat 1.45-1.65 (the utility's largest to smallest section), each above the least cover
# commonly quoted from GB 50289-2016 Table 4.1.1 (0.7 m under carriageways; gas 0.9 m; second-hand,
# unconfirmed). These ranges overlap: where lines of crossing streets would meet, the pipe that is easier
# to move dips under or rises over the other (crossings.py).
UTILITIES = {
    "water": {
        "code": "JS",
        "side": -0.55,
        "owner": "驻马店市供水有限公司",
        "depth": 1.4,
        "seg": 60.0,
        "local": 1.0,
    },
    "sewage": {"code": "WS", "side": -0.10, "owner": "驻马店市排水管理处", "seg": 50.0, "local": 1.0},
    "rain": {"code": "YS", "side": 0.20, "owner": "驻马店市排水管理处", "seg": 50.0, "local": 1.0},
    "gas": {
        "code": "RQ",
        "side": 0.55,
        "owner": "驻马店市燃气有限公司",
        "depth": 1.15,
        "seg": 60.0,
        "local": 0.8,
    },
    "heat": {
        "code": "RL",
        "side": -0.35,
        "owner": "驻马店市热力有限公司",
        "depth": 1.6,
        "seg": 60.0,
        "local": 0.0,
    },
    "power": {
        "code": "DL",
        "side": 0.80,
        "owner": "国网驻马店供电公司",
        "depth": 1.3,
        "seg": 60.0,
        "local": 0.0,
    },
    "telecom": {
        "code": "TX",
        "side": -0.80,
        "owner": "中国电信驻马店分公司",
        "depth": 1.0,
        "seg": 60.0,
        "local": 0.5,
    },
}
GRAVITY = ("rain", "sewage")
HEAT_SECONDARY_P = 0.5  # share of secondary streets with heating mains (all arterials have them)
# Gravity design: minimum slope, and size by the longest flow path upstream (m): circular diameter (mm)
# or a rectangular culvert (width, height mm). Least depths: GRAVITY_TOP, GRAVITY_GAP.
GRAVITY_DESIGN = {
    "sewage": {
        "slope": 0.002,
        "sizes": [(150, 300), (400, 400), (800, 500), (1400, 600), (np.inf, 800)],
    },
    "rain": {
        "slope": 0.0015,
        "sizes": [
            (150, 600),
            (400, 800),
            (700, 1000),
            (900, 1200),
            (1300, (2000, 1500)),
            (np.inf, (2500, 1800)),
        ],
    },
}
VALVE_FROM_JUNCTION = 10.0  # m; a valve near the start of each pressure main longer than 4x this
MIN_PIECE = 5.0  # m; a drainage stretch is split at its summit only if both parts are at least this long
NODE_DEPTH_JITTER = 0.05  # m, +- around a pressure network's node depth
# Gravity pipes: least depth of the top. GB 50014-2021 5.3.7 asks 0.7 m of cover under carriageways
# (second-hand); rain pipes lie from 2.0 m (where the street dips into the planted low-lying area,
# drainage.py, it keeps those 0.7 m); sewers from 2.3 m, and a sewer's top stays GRAVITY_GAP below the
# invert of a rain pipe it crosses. Inverts then fall with the slope: 2.0-4.5 m for most.
GRAVITY_TOP = {"rain": 2.0, "sewage": 2.3}
GRAVITY_GAP = 0.2


@dataclass
class StreetGraph:
    """Junctions (dm from the origin) of a set of streets, the street through each, and the stretches."""

    xy: np.ndarray  # (n, 2) int64
    vline: np.ndarray  # north-south street through each junction, -1 if none
    hline: np.ndarray
    e0: np.ndarray  # stretches between consecutive junctions of a street
    e1: np.ndarray
    eline: np.ndarray

    def find(self, x_dm: int, y_dm: int) -> int:
        keys = (self.xy[:, 0] << 32) | self.xy[:, 1]
        return int(np.searchsorted(keys, (x_dm << 32) | y_dm))


def _ranges(start: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Concatenated aranges start[k] .. start[k] + count[k] - 1."""
    count = np.asarray(count, dtype=np.int64)
    return np.repeat(np.asarray(start, dtype=np.int64) - np.cumsum(count) + count, count) + np.arange(
        count.sum()
    )


def street_graph(lines: Lines, mask: np.ndarray, extra: list[tuple[int, int]] = ()) -> StreetGraph:
    """Junctions of the masked streets: their ends, the crossings of major streets, the crossings of
    local streets within a quadrant, and extra (line, position along it in dm) points splitting a street."""
    idx = np.flatnonzero(mask)
    o, c, a, b, quad = lines.orient[idx], lines.c[idx], lines.a[idx], lines.b[idx], lines.quad[idx]
    isv = o == V
    px = [np.where(isv, c, a), np.where(isv, c, b)]
    py = [np.where(isv, a, c), np.where(isv, b, c)]
    major = quad < 0
    mv, mh = np.flatnonzero(isv & major), np.flatnonzero(~isv & major)
    gx, gy = np.meshgrid(c[mv], c[mh])
    px.append(gx.ravel())
    py.append(gy.ravel())
    lv, lh = np.flatnonzero(isv & ~major), np.flatnonzero(~isv & ~major)
    order = np.argsort(quad[lh], kind="stable")
    lo = np.searchsorted(quad[lh][order], quad[lv], "left")
    n = np.searchsorted(quad[lh][order], quad[lv], "right") - lo
    px.append(np.repeat(c[lv], n))
    py.append(c[lh][order][_ranges(lo, n)])
    for line, t in extra:
        px.append(np.array([lines.c[line] if lines.orient[line] == V else t]))
        py.append(np.array([t if lines.orient[line] == V else lines.c[line]]))
    keys = np.unique((np.concatenate(px) << 32) | np.concatenate(py))
    xy = np.column_stack([keys >> 32, keys & 0xFFFFFFFF])

    # Junctions on a street: a run of the keys sorted by (x, y) for a north-south street, by (y, x) for
    # an east-west one.
    tkeys = (xy[:, 1] << 32) | xy[:, 0]
    torder = np.argsort(tkeys)
    vline, hline = np.full(len(xy), -1), np.full(len(xy), -1)
    e0, e1, eline = [], [], []
    for on_line, key_sorted, order in ((vline, keys, np.arange(len(xy))), (hline, tkeys[torder], torder)):
        sub = np.flatnonzero(isv == (on_line is vline))
        lo = np.searchsorted(key_sorted, (c[sub] << 32) | a[sub], "left")
        hi = np.searchsorted(key_sorted, (c[sub] << 32) | b[sub], "right")
        on_line[order[_ranges(lo, hi - lo)]] = np.repeat(idx[sub], hi - lo)
        p = _ranges(lo, hi - lo - 1)
        e0.append(order[p])
        e1.append(order[p + 1])
        eline.append(np.repeat(idx[sub], hi - lo - 1))
    return StreetGraph(xy, vline, hline, np.concatenate(e0), np.concatenate(e1), np.concatenate(eline))


@dataclass
class Network:
    utility: str
    node_xy: np.ndarray  # (n, 2) metres
    node_type: np.ndarray
    node_ground: np.ndarray
    node_depth: np.ndarray
    node_invert: np.ndarray  # elevation of the invert (gravity) or centreline (pressure)
    seg_a: np.ndarray
    seg_b: np.ndarray
    seg: dict[str, np.ndarray]  # per-segment attributes
    service: dict[int, int]  # extra point index -> node index
    bends: dict[int, np.ndarray] = field(default_factory=dict)  # segment -> (distance along, axis z) rows

    def lines(self) -> np.ndarray:
        """Each segment as a LineString Z from node to node (at the invert for gravity lines, else the axis),
        through its bends."""
        a, b = self.seg_a, self.seg_b
        xyz = np.column_stack([self.node_xy, self.node_invert])
        out = shapely.linestrings(np.stack([xyz[a], xyz[b]], axis=1))
        for k, bend in self.bends.items():
            p, q = xyz[a[k]], xyz[b[k]]
            xy = p[:2] + (q[:2] - p[:2]) * (bend[:, :1] / np.linalg.norm(q[:2] - p[:2]))
            out[k] = shapely.linestrings(np.vstack([p, np.column_stack([xy, bend[:, 1]]), q]))
        return out

    @property
    def gravity(self) -> bool:
        return self.utility in GRAVITY

    @property
    def code(self) -> str:
        return UTILITIES[self.utility]["code"]

    def node_ids(self) -> np.ndarray:
        return np.array([f"{self.code}N{k:06d}" for k in range(1, len(self.node_xy) + 1)], dtype=object)

    def seg_ids(self) -> np.ndarray:
        return np.array([f"{self.code}{k:06d}" for k in range(1, len(self.seg_a) + 1)], dtype=object)


def served(plan: Plan, utility: str) -> np.ndarray:
    """Mask of the streets carrying a utility: every major street (heat: arterials and some secondaries)
    and a share of the local streets. Local streets end on major ones, so each network stays connected."""
    L = plan.lines
    rng = plan.grid.rng(K_UTILITY, list(UTILITIES).index(utility))
    u = rng.random(len(L.c))
    mask = (L.cls != LOC) | (u < UTILITIES[utility]["local"])
    if utility == "heat":
        mask = (L.cls == ART) | ((L.cls != LOC) & (u < HEAT_SECONDARY_P))
    return mask


def build_networks(plan: Plan, services: dict[str, tuple[int, float]]) -> dict[str, Network]:
    """Every utility's network (services: utility -> a service point, as for build_network): rain, sewage
    beneath it, then the pressure lines in crossings.RESOLVE_ORDER, each bent around those built before."""
    nets: dict[str, Network] = {}
    for utility in (*GRAVITY, *crossings.RESOLVE_ORDER):
        net = build_network(plan, utility, [services[utility]] if utility in services else [],
                            nets.get("rain") if utility == "sewage" else None)
        if not net.gravity:
            crossings.resolve(net, list(nets.values()))
        nets[utility] = net
    return {u: nets[u] for u in UTILITIES}


def build_network(plan: Plan, utility: str, service: list[tuple[int, float]] = (),
                  under: Network | None = None) -> Network:
    """One utility's nodes and segments; service: (street line, position along it in m from the origin
    of the district) points where building connections meet the network (they become nodes); under: a
    gravity network this one (gravity too) passes beneath where they cross."""
    grid, L = plan.grid, plan.lines
    spec = UTILITIES[utility]
    origin = np.array([grid.ox, grid.oy])
    extra = [(line, round((t - (grid.oy if L.orient[line] == V else grid.ox)) * 10)) for line, t in service]
    for line, t in extra:
        if not L.a[line] < t < L.b[line]:
            raise ValueError(f"service point {t / 10} m is not on street {L.name[line]}")
    g = street_graph(L, served(plan, utility), extra)
    shift = np.round(spec["side"] * L.width / 2, 1)
    off = np.column_stack(
        [np.where(g.vline >= 0, shift[g.vline], 0.0), np.where(g.hline >= 0, shift[g.hline], 0.0)]
    )
    pos = origin + g.xy / 10.0 + off
    service_idx = [g.find(*((L.c[line], t) if L.orient[line] == V else (t, L.c[line]))) for line, t in extra]
    rng = plan.grid.rng(K_UTILITY, 100 + list(UTILITIES).index(utility))
    attrs = _stretch_attrs(utility, L.cls[g.eline], rng)
    if utility in GRAVITY:
        net = _gravity(plan, utility, pos, g, attrs, under)
    else:
        net = _pressure(utility, pos, g, attrs, rng)
    net.service = {k: service_idx[k] for k in range(len(service_idx))}
    return net


def _stretch_attrs(utility: str, cls: np.ndarray, rng) -> dict[str, np.ndarray]:
    """Material, size, year... per street stretch, by street class (0 arterial, 1 secondary, 2 local)."""
    n = len(cls)

    def pick(options: dict[int, list[int]]) -> np.ndarray:
        return np.array([options[k][int(rng.integers(len(options[k])))] for k in cls], dtype=np.int64)

    year = rng.integers(2000, 2024, n)
    out = {
        "shape": np.full(n, "circular", dtype=object),
        "diameter_mm": np.zeros(n, dtype=np.int64),
        "width_mm": np.zeros(n, dtype=np.int64),
        "height_mm": np.zeros(n, dtype=np.int64),
        "pressure_class": np.full(n, None, dtype=object),
        "material": np.full(n, "steel", dtype=object),
    }
    if utility == "water":
        # Cast-iron mains of the 1980s-90s survive on a third of the major streets, a fifth of the others.
        old = rng.random(n) < np.where(cls < LOC, 0.35, 0.2)
        year = np.where(old, rng.integers(1982, 2000, n), year)
        out["diameter_mm"] = pick({0: [400, 500, 600], 1: [300, 400], 2: [100, 150, 200]})
        pe = (cls == LOC) & (year >= 2005) & (rng.random(n) < 0.6)
        out["material"] = np.select([old, pe], ["cast iron", "PE"], "ductile iron").astype(object)
    elif utility == "gas":
        year = rng.integers(1997, 2024, n)
        out["pressure_class"] = np.array(["medium-A", "medium-B", "low"], dtype=object)[cls]
        out["diameter_mm"] = pick({0: [300, 250], 1: [200, 160], 2: [100, 110]})
        out["material"] = np.where(cls == ART, "steel", "PE").astype(object)
    elif utility == "heat":
        year = rng.integers(2008, 2024, n)
        out["diameter_mm"] = pick({0: [500, 600], 1: [300, 400], 2: [200]})
    elif utility == "power":
        out["shape"][:] = "rectangular"
        out["width_mm"] = np.where(cls == ART, 1400, 1000)
        out["height_mm"] = np.where(cls == ART, 1000, 800)
        out["material"][:] = "concrete"
    elif utility == "telecom":
        year = rng.integers(1998, 2024, n)
        duct = cls != LOC
        out["shape"] = np.where(duct, "rectangular", "circular").astype(object)
        out["width_mm"], out["height_mm"] = np.where(duct, 700, 0), np.where(duct, 500, 0)
        out["diameter_mm"] = np.where(duct, 0, 110)
        out["material"] = np.where(duct, "concrete", "PVC-U").astype(object)
    else:  # gravity: size comes later from the flow path; a third of the stretches are pre-2000 concrete
        year = np.where(rng.random(n) < 0.35, rng.integers(1983, 2000, n), year)
    out["install_year"] = year
    return out


def _subdivide(pos, src, dst, parent, cut_edge, cut_t):
    """Split directed stretches src->dst at distances cut_t (m) from src, cuts sorted by (stretch, t).

    Returns the new nodes' positions and each segment's ends (indices into pos, then the new nodes)
    and stretch."""
    length = np.linalg.norm(pos[dst] - pos[src], axis=1)
    frac = (cut_t / length[cut_edge])[:, None]
    new_pos = pos[src[cut_edge]] + (pos[dst[cut_edge]] - pos[src[cut_edge]]) * frac
    new_idx = len(pos) + np.arange(len(cut_edge))
    # Chain per stretch: src, its cuts in order, dst.
    k = np.bincount(cut_edge, minlength=len(src))
    chain_len = k + 2
    start = np.cumsum(chain_len) - chain_len
    chain = np.empty(chain_len.sum(), dtype=np.int64)
    chain[start] = src
    chain[start + chain_len - 1] = dst
    chain[_ranges(start + 1, k)] = new_idx
    seg_pos = _ranges(start, chain_len - 1)
    return new_pos, chain[seg_pos], chain[seg_pos + 1], np.repeat(parent, chain_len - 1)


def _node_type_pressure(utility, n_nodes, seg_a, seg_b, cut_types, service_nodes):
    """Tees and crosses are junctions, bends and service tees fittings; cables have a manhole at each."""
    if utility in ("power", "telecom"):
        return np.full(n_nodes, "manhole", dtype=object)
    degree = np.bincount(np.r_[seg_a, seg_b], minlength=n_nodes)
    types = np.where(degree >= 3, "junction", "fitting").astype(object)
    types[n_nodes - len(cut_types) :] = cut_types
    types[service_nodes] = "fitting"
    return types


def _pressure(utility, pos, g: StreetGraph, attrs, rng) -> Network:
    spec = UTILITIES[utility]
    length = np.linalg.norm(pos[g.e1] - pos[g.e0], axis=1)
    ne = len(length)
    n = np.ceil(length / spec["seg"]).astype(np.int64)
    cut_edge = np.repeat(np.arange(ne), n - 1)
    step = _ranges(np.ones(ne, dtype=np.int64), n - 1)
    cut_t = step * (length / n)[cut_edge]
    if utility == "water":  # hydrants every second cut, at most 120 m apart
        cut_type = np.where(step % 2 == 1, "hydrant", "fitting")
    else:
        cut_type = np.full(len(cut_t), "manhole" if utility in ("power", "telecom", "heat") else "fitting")
    if utility in ("water", "gas", "heat"):
        has_valve = length > 4 * VALVE_FROM_JUNCTION
        valve_edge = np.flatnonzero(has_valve)
        cut_edge = np.r_[cut_edge, valve_edge]
        cut_t = np.r_[cut_t, np.full(len(valve_edge), VALVE_FROM_JUNCTION)]
        cut_type = np.r_[cut_type, np.full(len(valve_edge), "valve")]
    order = np.lexsort((cut_t, cut_edge))
    new_pos, a, b, parent = _subdivide(pos, g.e0, g.e1, np.arange(ne), cut_edge[order], cut_t[order])
    allpos = np.vstack([pos, new_pos])
    types = _node_type_pressure(utility, len(allpos), a, b, cut_type[order].astype(object), _service_nodes(g))
    ground = ground_z(allpos[:, 0], allpos[:, 1])
    depth = np.round(spec["depth"] + rng.uniform(-NODE_DEPTH_JITTER, NODE_DEPTH_JITTER, len(allpos)), 2)
    seg = {k: v[parent] for k, v in attrs.items()}
    return Network(utility, allpos, types, ground, depth, np.round(ground - depth, 3), a, b, seg, {})


def _service_nodes(g: StreetGraph) -> np.ndarray:
    """Junctions on one street only: the points where building connections meet it."""
    return np.flatnonzero((g.vline < 0) | (g.hline < 0))


def _gravity(plan: Plan, utility, pos, g: StreetGraph, attrs, under: Network | None) -> Network:
    design = GRAVITY_DESIGN[utility]
    pos, e0, e1, parent, outfalls = _river_outfalls(plan, pos, g)
    pos, src, dst, parent = _drain_to_outfalls(utility, pos, e0, e1, parent, outfalls)
    # Manholes at most `seg` metres apart.
    length = np.linalg.norm(pos[dst] - pos[src], axis=1)
    n = np.ceil(length / UTILITIES[utility]["seg"]).astype(np.int64)
    cut_edge = np.repeat(np.arange(len(src)), n - 1)
    cut_t = _ranges(np.ones(len(src), dtype=np.int64), n - 1) * (length / n)[cut_edge]
    new_pos, a, b, parent = _subdivide(pos, src, dst, parent, cut_edge, cut_t)  # cuts already in order
    pos = np.vstack([pos, new_pos])
    seg = {k: v[parent] for k, v in attrs.items()}
    _size_gravity(utility, seg, _upstream(pos, a, b)[b])
    height = np.where(seg["shape"] == "rectangular", seg["height_mm"], seg["diameter_mm"]) / 1000
    ground = ground_z(pos[:, 0], pos[:, 1])
    cap = np.full(len(pos), np.inf)  # the highest invert each node may have
    for end in (a, b):
        np.minimum.at(cap, end, ground[end] - GRAVITY_TOP[utility] - height)
    if under is not None:
        _pass_under(cap, pos, a, b, height, under)
    invert = _inverts(design["slope"], cap, pos, a, b)
    types = np.full(len(pos), "manhole", dtype=object)
    types[outfalls] = "outlet"
    return Network(utility, pos, types, ground, np.round(ground - invert, 3), invert, a, b, seg, {})


def _pass_under(cap, pos, a, b, height, other: Network) -> None:
    """Lower the caps of both ends of every segment that crosses one of `other`'s, so that its top stays
    GRAVITY_GAP below the other's invert at the crossing."""
    mine = shapely.linestrings(np.stack([pos[a], pos[b]], axis=1))
    theirs = shapely.linestrings(np.stack([other.node_xy[other.seg_a], other.node_xy[other.seg_b]], axis=1))
    i, j = shapely.STRtree(theirs).query(mine, predicate="intersects")
    if not len(i):
        return
    t = shapely.line_locate_point(theirs[j], shapely.intersection(mine[i], theirs[j]), normalized=True)
    z0, z1 = other.node_invert[other.seg_a[j]], other.node_invert[other.seg_b[j]]
    limit = z0 + (z1 - z0) * t - GRAVITY_GAP - height[i]
    np.minimum.at(cap, a[i], limit)
    np.minimum.at(cap, b[i], limit)


def _river_outfalls(plan: Plan, pos, g: StreetGraph):
    """Streets crossing a river: the drain on either side ends at an outfall on the near bank.

    Returns the node positions with the outfalls added, the edges (e0, e1) with the street edge each
    comes from (parent), and the outfalls' node indices."""
    L = plan.lines
    e0, e1, parent = g.e0.copy(), g.e1.copy(), np.arange(len(g.e0))
    r0, r1 = L.river[g.hline[e0]], L.river[g.hline[e1]]
    crossing = (
        (L.orient[g.eline] == V)
        & (g.hline[e0] >= 0)
        & (g.hline[e1] >= 0)
        & (r0 >= 0)
        & (r0 == r1)
        & (g.hline[e0] != g.hline[e1])
    )
    cross = np.flatnonzero(crossing)
    northward = pos[e0[cross], 1] < pos[e1[cross], 1]
    south, north = np.where(northward, e0[cross], e1[cross]), np.where(northward, e1[cross], e0[cross])
    x = pos[south, 0]
    banks = np.array([plan.rivers[r].banks(xk) for r, xk in zip(r0[cross], x)]).reshape(-1, 2)
    outfalls = len(pos) + np.arange(2 * len(cross))
    pos = np.vstack([pos, np.column_stack([np.repeat(x, 2), banks.ravel()])])
    e0 = np.r_[e0[~crossing], np.column_stack([south, north]).ravel()]
    e1 = np.r_[e1[~crossing], outfalls]
    parent = np.r_[parent[~crossing], np.repeat(cross, 2)]
    return pos, e0, e1, parent, outfalls


def _drain_to_outfalls(utility, pos, e0, e1, parent, outfalls):
    """Distance along the network to the nearest outfall; each stretch drains towards it, and one that
    drains both ways is split at its summit. Returns the positions with the summits added and the edges
    (src, dst) pointing downstream, with their street edge."""
    length = np.linalg.norm(pos[e1] - pos[e0], axis=1)
    graph = coo_matrix((length, (e0, e1)), shape=(len(pos), len(pos))).tocsr()
    dist = dijkstra(graph, directed=False, indices=outfalls, min_only=True)
    if not np.all(np.isfinite(dist)):
        raise RuntimeError(f"{utility}: part of the network does not reach an outfall")
    du, dv = dist[e0], dist[e1]
    split = np.abs(du - dv) < length - 2 * MIN_PIECE
    t = (length + dv - du) / 2  # summit, from e0
    summit_pos = pos[e0[split]] + (pos[e1[split]] - pos[e0[split]]) * (t[split] / length[split])[:, None]
    summits = len(pos) + np.arange(split.sum())
    pos = np.vstack([pos, summit_pos])
    up_first = (du > dv) | ((du == dv) & (e0 > e1))
    whole = ~split
    src = np.r_[np.where(up_first, e0, e1)[whole], summits, summits]
    dst = np.r_[np.where(up_first, e1, e0)[whole], e0[split], e1[split]]
    parent = np.r_[parent[whole], parent[split], parent[split]]
    return pos, src, dst, parent


def _upstream(pos, a, b) -> np.ndarray:
    """The longest flow path (m) above each node, which sizes the pipe leaving it."""
    seg_len = np.linalg.norm(pos[b] - pos[a], axis=1)
    upstream = np.zeros(len(pos))
    while True:
        new_up = upstream.copy()
        np.maximum.at(new_up, b, upstream[a] + seg_len)
        if np.array_equal(new_up, upstream):
            return upstream
        upstream = new_up


def _inverts(slope: float, cap, pos, a, b) -> np.ndarray:
    """Inverts: at most the cap of each node, falling by at least the minimum slope downstream."""
    seg_len = np.linalg.norm(pos[b] - pos[a], axis=1)
    invert = cap.copy()
    while True:
        new_inv = invert.copy()
        np.minimum.at(new_inv, b, invert[a] - slope * seg_len)
        if np.array_equal(new_inv, invert):
            return np.round(invert, 3)
        invert = new_inv


def _size_gravity(utility: str, seg: dict, upstream) -> None:
    """Size (by the flow path above each segment's lower end) and material of gravity segments, in seg."""
    design = GRAVITY_DESIGN[utility]
    bounds = np.array([s[0] for s in design["sizes"]])
    size = np.searchsorted(bounds, upstream, side="left")
    for k, (_, dim) in enumerate(design["sizes"]):
        m = size == k
        if isinstance(dim, tuple):
            seg["shape"][m] = "rectangular"
            seg["width_mm"][m], seg["height_mm"][m] = dim
        else:
            seg["diameter_mm"][m] = dim
    plastic_max = 400 if utility == "sewage" else 500
    plastic = (
        (seg["shape"] == "circular") & (seg["diameter_mm"] <= plastic_max) & (seg["install_year"] >= 2005)
    )
    seg["material"] = np.where(plastic, "PVC-U", "concrete").astype(object)


def service_bends(nets: dict[str, Network], utility: str, riser: tuple[float, float], ground: float,
                  node: int, diameter_mm: int) -> list[tuple[float, float]]:
    """The run of a pressure service pipe from the foot of its riser (at `ground`) to `node` of its street
    network, as (m from the riser, axis elevation) from the foot: level with the node, bent over or under
    the other utilities' lines as a street pipe is (crossings.resolve). The node keeps its level."""
    main = nets[utility]
    z = float(main.node_invert[node])
    grounds = np.array([ground, main.node_ground[node]])
    net = Network(utility, np.array([riser, main.node_xy[node]]), np.array(["riser", "service"], object), grounds,
                  grounds - z, np.array([z, z]), np.array([0]), np.array([1]),
                  {"shape": np.array(["circular"], object), "diameter_mm": np.array([diameter_mm]),
                   "width_mm": np.zeros(1), "height_mm": np.zeros(1)}, {})
    crossings.resolve(net, [n for u, n in nets.items() if u != utility])
    if net.node_invert[1] != z:
        raise ValueError(f"the {utility} service pipe cannot keep its street node's level past the lines it crosses")
    return [(0.0, float(net.node_invert[0])), *map(tuple, net.bends.get(0, np.empty((0, 2))).tolist())]

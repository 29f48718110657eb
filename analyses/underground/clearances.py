"""Clearance, cover and clash checks over the stored pipes, with the rules as data (rules.py).

- Horizontal clearance between pipes running alongside each other (GB 50289-2016 4.1.9): the clear
  distance in plan (axis distance less both half widths) of every pair that does not cross and whose
  directions differ by at most PARALLEL_DEG.
- Horizontal clearance between a pipe and a building (4.1.9): plan distance from the footprint to the
  pipe's outer wall; not between a building and a pipe with an end inside or at it (its own service pipe).
- Vertical clearance at crossings (4.1.14): the clear gap between the outer walls where the plan axes cross.
- Pipe-top cover (GB 50014-2021 5.3.7): ground less the pipe's top at each end, under carriageway or
  footway (the carriageway from the road layer, model.carriageway).
- 3D clashes: pipes whose outer walls overlap (a negative clear gap at a crossing, or alongside).

The network is checked in square tiles of CHUNK_M a side, streamed from the database one tile at a
time (GiST index), so that memory stays bounded however large the network: a tile loads the pipes and
buildings within the largest reach of any rule of it, and owns the pairs whose reference point (the
larger of the two objects' lower-left corners) lies in it, and the segments whose lower-left corner
does: every pair is checked exactly once however the network is cut. Pairs come from an STRtree query
in plan; segments that share a node or an end's place (a pipe into another utility's manhole too: it is
joined there), or of one utility where one's end without a node lies on the other (a lateral at its main),
are not a pair. Every check of a pair for
which no rule exists is counted as "no rule" (one info finding per utility pair with the count), never
given a guessed distance. A run records the inputs, the rules with their source and confidence, and
the findings (cim_core.runs).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import shapely
import sqlalchemy as sa

from cim_core.db import get_engine, storage_srid
from cim_core.errors import NotFoundError
from cim_core.runs import Finding, now, record_run

from .model import Box, Pipes, axis_z, carriageway, carriageway_reach, load_buildings, load_pipes, network_extent
from .rules import Rule, RuleSet, current_rules, match

ANALYSIS = "underground-clearances"
PARALLEL_DEG = 30.0
CHUNK_M = 1000.0  # tile side (m): at scale 30 ~20 % faster than 500 m tiles, 2 MB more (docs/underground.md)
JOIN_M = 0.01  # an end this close to another pipe's axis in plan meets it (IFC coordinates are kept to 0.1 mm)
# An end of a pipe this close to a footprint in plan, or inside it, makes the pipe that building's own service
# connection (a riser stands inside, a rainwater downpipe against the wall, 0.15 m out in the sample district).
SERVICE_M = 0.5
CLASH_RULE = {"source": "geometry: the pipes' outer walls overlap", "confidence": "measured"}


Owns = Callable[[np.ndarray, np.ndarray], np.ndarray]  # reference points (x, y) -> which the tile owns


@dataclass
class Checked:
    """Findings of one check and, by utility pair, how many pairs it examined, found within the required
    distance (inclusive, as ST_DWithin counts) and found violating; pairs without a rule by utility pair,
    with the first example of each (object, related, xy)."""
    findings: list[Finding] = field(default_factory=list)
    pairs: dict[str, dict[str, int]] = field(default_factory=dict)
    no_rule: dict[str, int] = field(default_factory=dict)
    examples: dict[str, tuple] = field(default_factory=dict)

    def add(self, other: Checked) -> None:
        """Fold in the result of the same check over another tile."""
        self.findings += other.findings
        for name, tally in other.pairs.items():
            mine = self.pairs.setdefault(name, dict.fromkeys(tally, 0))
            for k, v in tally.items():
                mine[k] += v
        for name, n in other.no_rule.items():
            self.no_rule[name] = self.no_rule.get(name, 0) + n
            self.examples.setdefault(name, other.examples[name])

    def all_findings(self, check: str) -> list[Finding]:
        """The findings, then one info finding per utility pair no rule covers, naming an example."""
        return self.findings + [
            Finding("no_rule", f"{check}: no rule for {n} ({c} pair(s) examined); not checked", *self.examples[n],
                    "info", {"check": check, "pair": n, "pairs": c}) for n, c in sorted(self.no_rule.items())]


def _pair_name(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(str), b.astype(str)
    swap = a > b
    lo, hi = np.where(swap, b, a), np.where(swap, a, b)
    return np.char.add(np.char.add(lo.astype(str), "/"), hi.astype(str))


def _tally(names: np.ndarray, *masks: np.ndarray) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for n in np.unique(names):
        sel = names == n
        out[str(n)] = {k: int((m & sel).sum()) for k, m in zip(("examined", "within", "violations"), masks)}
    return out


def _no_rule(names: np.ndarray, example) -> tuple[dict[str, int], dict[str, tuple]]:
    """Counts of the pairs no rule covers by utility pair, and an example of each: example(k) gives
    (object, related, xy) of the k-th of `names`."""
    u, first, counts = np.unique(names, return_index=True, return_counts=True)
    return dict(zip(map(str, u), map(int, counts))), {str(n): example(k) for n, k in zip(u, first)}


def _rule_details(rule: Rule, measured: float, required: float) -> dict:
    return {"measured_m": round(float(measured), 3), "required_m": required, "rule": rule.name, "ref": rule.ref,
            "source": rule.source, "confidence": rule.confidence}


def pipe_pairs(pipes: Pipes, distance: float) -> tuple[np.ndarray, np.ndarray]:
    """(i, j), i < j: segments within `distance` in plan, less those joined: sharing a node or an end's place
    (whatever their utility: a pipe into another network's manhole is a misconnection, which analyses.drainage
    reports, not a clash), or with a node-less end on a pipe of its own utility."""
    i, j = shapely.STRtree(pipes.lines).query(pipes.lines, predicate="dwithin", distance=distance)
    keep = i < j
    i, j = i[keep], j[keep]
    ends_i = np.column_stack([pipes.from_node[i], pipes.to_node[i]])
    ends_j = np.column_stack([pipes.from_node[j], pipes.to_node[j]])
    shared = np.zeros(len(i), bool)
    for a in range(2):
        for b in range(2):
            shared |= (ends_i[:, a] == ends_j[:, b]) & (ends_i[:, a] >= 0)
    same = pipes.utility[i] == pipes.utility[j]
    connected = shared | _ends_meet(pipes, i, j, ~shared)
    connected |= same & _joined(pipes, i, j, same & ~connected)
    return i[~connected], j[~connected]


def _ends_meet(pipes: Pipes, i: np.ndarray, j: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Which pairs (of those in mask) have an end of one within JOIN_M of an end of the other in plan: they meet
    in one manhole, whichever dataset numbered their nodes (a surveyed pipe into another network's manhole)."""
    out = np.zeros(len(i), bool)
    k = np.flatnonzero(mask)
    gap = pipes.ends[i[k], :, None, :] - pipes.ends[j[k], None, :, :]  # every end of one less every end of the other
    out[k] = (np.hypot(gap[..., 0], gap[..., 1]) <= JOIN_M).any(axis=(1, 2))
    return out


def _joined(pipes: Pipes, i: np.ndarray, j: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Which pairs (of those in mask) have an end without a node on the other's axis in plan: a service
    pipe imported without node ids (an IFC lateral) ending at its main is connected to it, as one pipe."""
    out = np.zeros(len(i), bool)
    k = np.flatnonzero(mask & ((np.column_stack([pipes.from_node[i], pipes.to_node[i],
                                                 pipes.from_node[j], pipes.to_node[j]]) < 0).any(axis=1)))
    for a, b in ((i[k], j[k]), (j[k], i[k])):
        for end, node in ((0, pipes.from_node[a]), (1, pipes.to_node[a])):
            out[k] |= (node < 0) & (shapely.distance(shapely.points(pipes.ends[a, end]), pipes.lines[b]) <= JOIN_M)
    return out


def _example(pipes: Pipes, a: int, b: int) -> tuple[int, int, tuple]:
    """(object, related, xy) of a pair of segments: xy halfway along the shortest line between them."""
    mid = shapely.line_interpolate_point(shapely.shortest_line(pipes.lines[a], pipes.lines[b]), 0.5, normalized=True)
    return int(pipes.id[a]), int(pipes.id[b]), tuple(shapely.get_coordinates(mid)[0])


def horizontal(pipes: Pipes, rules: list[Rule], i: np.ndarray, j: np.ndarray, crossing: np.ndarray) -> Checked:
    """Horizontal clearance of pipes alongside each other (pairs that do not cross), and their clashes."""
    i, j = i[~crossing], j[~crossing]
    required, ri = match(rules, pipes.side(i), pipes.side(j))
    names = _pair_name(pipes.utility[i], pipes.utility[j])
    clear = shapely.distance(pipes.lines[i], pipes.lines[j]) - pipes.half_width[i] - pipes.half_width[j]
    turn = np.abs(np.angle(np.exp(1j * (pipes.bearing[i] - pipes.bearing[j]))))
    parallel = np.minimum(turn, np.pi - turn) <= np.radians(PARALLEL_DEG)
    ruled = ri >= 0
    with np.errstate(invalid="ignore"):
        within, bad = ruled & (clear <= required), ruled & (clear < required) & parallel
    found = [Finding("horizontal_clearance",
                     f"{pipes.key[i[k]]} ({pipes.utility[i[k]]}) and {pipes.key[j[k]]} ({pipes.utility[j[k]]}): "
                     f"{clear[k]:.2f} m apart in plan, {required[k]:g} m required ({rules[ri[k]].ref})",
                     *_example(pipes, i[k], j[k]), "warning", _rule_details(rules[ri[k]], clear[k], required[k]))
             for k in np.flatnonzero(bad)]
    found += _alongside_clashes(pipes, i, j, clear)
    unruled = np.flatnonzero(~ruled)
    counts, examples = _no_rule(names[unruled], lambda k: _example(pipes, i[unruled[k]], j[unruled[k]]))
    return Checked(found, _tally(names, ruled, within, bad), counts, examples)


def _alongside_clashes(pipes: Pipes, i, j, clear) -> list[Finding]:
    """Pairs that overlap in plan without crossing: a clash where their walls overlap in height too."""
    k = np.flatnonzero(clear < 0)
    if not len(k):
        return []
    near = shapely.shortest_line(pipes.lines[i[k]], pipes.lines[j[k]])
    xy = shapely.get_coordinates(shapely.line_interpolate_point(near, 0.5, normalized=True))
    za = axis_z(pipes, i[k], shapely.get_point(near, 0))
    zb = axis_z(pipes, j[k], shapely.get_point(near, -1))
    gap = np.abs(za - zb) - pipes.half_height[i[k]] - pipes.half_height[j[k]]
    return [_clash(pipes, i[m], j[m], gap[n], xy[n]) for n, m in enumerate(k) if gap[n] < 0]


def _clash(pipes: Pipes, a: int, b: int, gap: float, xy) -> Finding:
    return Finding("clash_3d", f"{pipes.key[a]} ({pipes.utility[a]}) and {pipes.key[b]} ({pipes.utility[b]}) "
                   f"intersect: their walls overlap by {-gap:.2f} m", int(pipes.id[a]), int(pipes.id[b]),
                   (float(xy[0]), float(xy[1])), "error",
                   {"measured_m": round(float(gap), 3), "required_m": 0.0, **CLASH_RULE})


def vertical(pipes: Pipes, rules: list[Rule], i: np.ndarray, j: np.ndarray, crossing: np.ndarray) -> Checked:
    """Vertical clearance where pipes cross in plan; a negative clear gap is a clash."""
    i, j = i[crossing], j[crossing]
    at = shapely.point_on_surface(shapely.get_geometry(shapely.intersection(pipes.lines[i], pipes.lines[j]), 0))
    gap = (np.abs(axis_z(pipes, i, at) - axis_z(pipes, j, at)) - pipes.half_height[i] - pipes.half_height[j])
    required, ri = match(rules, pipes.side(i), pipes.side(j))
    names = _pair_name(pipes.utility[i], pipes.utility[j])
    ruled = ri >= 0
    with np.errstate(invalid="ignore"):
        within, bad = ruled & (gap <= required), ruled & (gap < required) & (gap >= 0)
    xy = shapely.get_coordinates(at)
    found = [Finding("vertical_clearance",
                     f"{pipes.key[i[k]]} ({pipes.utility[i[k]]}) crosses {pipes.key[j[k]]} "
                     f"({pipes.utility[j[k]]}) {gap[k]:.2f} m apart, {required[k]:g} m required ({rules[ri[k]].ref})",
                     int(pipes.id[i[k]]), int(pipes.id[j[k]]), tuple(xy[k]), "warning",
                     _rule_details(rules[ri[k]], gap[k], required[k])) for k in np.flatnonzero(bad)]
    found += [_clash(pipes, i[k], j[k], gap[k], xy[k]) for k in np.flatnonzero(gap < 0)]
    unruled = np.flatnonzero(~ruled)
    counts, examples = _no_rule(names[unruled], lambda k: (
        int(pipes.id[i[unruled[k]]]), int(pipes.id[j[unruled[k]]]), tuple(xy[unruled[k]])))
    return Checked(found, _tally(names, ruled, within, bad), counts, examples)


def buildings(pipes: Pipes, rules: list[Rule], ids: np.ndarray, footprints: np.ndarray, reach: float,
              owns: Owns) -> Checked:
    """Horizontal clearance from pipes' outer walls to building footprints within `reach` in plan, of the
    pairs the tile owns."""
    i, b = shapely.STRtree(footprints).query(pipes.lines, predicate="dwithin", distance=reach)
    fb = shapely.bounds(footprints).reshape(-1, 4)
    own = owns(np.maximum(pipes.bounds[i, 0], fb[b, 0]), np.maximum(pipes.bounds[i, 1], fb[b, 1]))
    i, b = i[own], b[own]
    # GB 50289 keeps pipes clear of buildings they do not serve: a service pipe must reach its own building,
    # so the rule is not applied to a pipe and the building it ends at (our reading, docs/underground.md).
    serves = np.zeros(len(i), bool)
    for end in (0, 1):
        serves |= shapely.distance(shapely.points(pipes.ends[i, end]), footprints[b]) <= SERVICE_M
    i, b = i[~serves], b[~serves]
    n = len(i)
    required, ri = match(rules, pipes.side(i), {"utility": np.full(n, "building"), "diameter": np.full(n, np.nan),
                                               "pressure": np.full(n, "")})
    clear = shapely.distance(pipes.lines[i], footprints[b]) - pipes.half_width[i]
    names = _pair_name(pipes.utility[i], np.full(n, "building"))
    ruled = ri >= 0
    with np.errstate(invalid="ignore"):
        within, bad = ruled & (clear <= required), ruled & (clear < required)
    xy = shapely.get_coordinates(shapely.get_point(shapely.shortest_line(pipes.lines[i], footprints[b]), 0))
    found = [Finding("building_clearance",
                     f"{pipes.key[i[k]]} ({pipes.utility[i[k]]}) runs {clear[k]:.2f} m from building "
                     f"{int(ids[b[k]])}, {required[k]:g} m required ({rules[ri[k]].ref})",
                     int(pipes.id[i[k]]), int(ids[b[k]]), tuple(xy[k]), "warning",
                     _rule_details(rules[ri[k]], clear[k], required[k])) for k in np.flatnonzero(bad)]
    unruled = np.flatnonzero(~ruled)
    counts, examples = _no_rule(names[unruled], lambda k: (
        int(pipes.id[i[unruled[k]]]), int(ids[b[unruled[k]]]), tuple(xy[unruled[k]])))
    return Checked(found, _tally(names, ruled, within, bad), counts, examples)


def cover(pipes: Pipes, rules: list[Rule], road: np.ndarray) -> Checked:
    """Pipe-top cover at both ends of every segment whose ground is known, by the area above it (road: the
    carriageway areas)."""
    n = len(pipes)
    ends = np.concatenate([shapely.get_point(pipes.axes, 0), shapely.get_point(pipes.axes, -1)])
    z = shapely.get_coordinates(ends, include_z=True)
    seg = np.tile(np.arange(n), 2)
    top = z[:, 2] + pipes.half_height[seg]
    depth = np.concatenate([pipes.ground[:, 0], pipes.ground[:, 1]]) - top
    under = np.zeros(2 * n, bool)
    under[shapely.STRtree(road).query(shapely.points(z[:, :2]), predicate="intersects")[0]] = True
    area = np.where(under, "carriageway", "footway or green")
    required, ri = match(rules, pipes.side(seg), {"utility": area, "diameter": np.full(2 * n, np.nan),
                                                 "pressure": np.full(2 * n, "")})
    known = ~np.isnan(depth)
    ruled = (ri >= 0) & known
    short = np.where(ruled, required - depth, -np.inf)
    worst = np.where(short[:n] >= short[n:], np.arange(n), np.arange(n) + n)  # the end worse off, per segment
    names = np.char.add(pipes.utility[seg].astype(str), np.char.add("/", area))
    found = [Finding("cover", f"{pipes.key[seg[e]]} ({pipes.utility[seg[e]]}): pipe top {depth[e]:.2f} m below "
                     f"{area[e]}, {required[e]:g} m required ({rules[ri[e]].ref})", int(pipes.id[seg[e]]), None,
                     tuple(z[e, :2]), "warning", {**_rule_details(rules[ri[e]], depth[e], required[e]),
                                                  "area": str(area[e])})
             for e in worst[short[worst] > 0]]
    unruled = np.flatnonzero(known & (ri < 0))
    counts, examples = _no_rule(names[unruled], lambda k: (int(pipes.id[seg[unruled[k]]]), None,
                                                         tuple(z[unruled[k], :2])))
    return Checked(found, _tally(names, ruled, ruled & (short >= 0), ruled & (short > 0)), counts, examples)


@dataclass(frozen=True)
class Grid:
    """Square tiles of side `size` from (x0, y0), nx a row, over the network's extent grown by `margin`."""
    x0: float
    y0: float
    size: float
    nx: int
    ny: int
    margin: float

    @classmethod
    def over(cls, extent: Box, size: float, margin: float) -> Grid:
        x0, y0, x1, y1 = extent[0] - margin, extent[1] - margin, extent[2] + margin, extent[3] + margin
        return cls(x0, y0, size, int((x1 - x0) // size) + 1, int((y1 - y0) // size) + 1, margin)

    def __len__(self) -> int:
        return self.nx * self.ny

    def cell(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.floor((y - self.y0) / self.size) * self.nx + np.floor((x - self.x0) / self.size)

    def box(self, k: int) -> Box:
        """Tile k grown by the margin: where the objects of the pairs it owns lie."""
        x, y = self.x0 + (k % self.nx) * self.size, self.y0 + (k // self.nx) * self.size
        m = self.margin
        return x - m, y - m, x + self.size + m, y + self.size + m


@dataclass(frozen=True)
class Reach:
    """How far apart in plan the objects of a check may lie: pipe pairs, pipe to building, and a road's
    centre line to the edge of its carriageway."""
    pairs: float
    buildings: float
    road: float


def check_tile(c: sa.Connection, grid: Grid, k: int, pipes: Pipes, rules: RuleSet, reach: Reach,
               boxes: list[Box], srid: int) -> tuple[int, dict[str, Checked]]:
    """Every check of the pairs and segments tile k owns (pipes: those loaded for it); the number of
    segments it owns."""
    def owns(x, y):
        return grid.cell(x, y) == k

    h = rules.of("horizontal")
    i, j = pipe_pairs(pipes, reach.pairs)
    keep = owns(np.maximum(pipes.bounds[i, 0], pipes.bounds[j, 0]), np.maximum(pipes.bounds[i, 1], pipes.bounds[j, 1]))
    i, j = i[keep], j[keep]
    crossing = shapely.intersects(pipes.lines[i], pipes.lines[j])
    ids, footprints = load_buildings(c, boxes=[*boxes, grid.box(k)], srid=srid)
    mine = pipes.subset(np.flatnonzero(owns(pipes.bounds[:, 0], pipes.bounds[:, 1])))
    if len(mine):
        x0, y0, x1, y1 = shapely.total_bounds(mine.lines)
        road = carriageway(c, boxes=[*boxes, (x0 - reach.road, y0 - reach.road, x1 + reach.road, y1 + reach.road)],
                           srid=srid)
    else:
        road = np.empty(0, object)
    return len(mine), {
        "horizontal": horizontal(pipes, [r for r in h if r.utility_b != "building"], i, j, crossing),
        "vertical": vertical(pipes, rules.of("vertical"), i, j, crossing),
        "building": buildings(pipes, [r for r in h if r.utility_b == "building"], ids, footprints,
                              reach.buildings, owns),
        "cover": cover(mine, rules.of("cover"), road)}


def _reach(rules: RuleSet, half_width: float, road: float) -> Reach:
    h = rules.of("horizontal")
    along = [r.min_m for r in h if r.utility_b != "building"] + [r.min_m for r in rules.of("vertical")]
    return Reach(max(along, default=0.0) + 2 * half_width,
                 max([r.min_m for r in h if r.utility_b == "building"], default=0.0) + half_width, road)


def check(*, bbox: Box | None = None, dataset: str | None = None, rules: RuleSet | None = None,
          engine: sa.Engine | None = None, requested_by: str | None = None, chunk_m: float = CHUNK_M) -> dict:
    """Run every check over the current pipes (in a box and/or of one dataset), tile by tile (chunk_m a
    side), and store the run. Returns {"run_id", "summary", "findings": counts by rule}."""
    engine = engine or get_engine()
    started = now()
    rules = rules or current_rules(engine)
    srid = storage_srid(engine)
    boxes = [tuple(bbox)] if bbox else []
    where, params = ("o.dataset_id = (select id from datasets where name = :ds)", {"ds": dataset}) \
        if dataset else ("", {})
    checked = {k: Checked() for k in ("horizontal", "vertical", "building", "cover")}
    segments = 0
    with engine.connect() as c:
        if dataset and c.scalar(sa.text("select id from datasets where name = :n"), {"n": dataset}) is None:
            raise NotFoundError(f"no dataset named {dataset!r}", hint="`cim datasets` lists them")
        extent, half_width, n_buildings = network_extent(c, boxes=boxes, srid=srid, where=where, params=params)
        reach = _reach(rules, half_width, carriageway_reach(c))
        grid = Grid.over(extent, chunk_m, max(reach.pairs, reach.buildings)) if extent else None
        for k in range(len(grid) if grid else 0):
            pipes = load_pipes(c, boxes=[*boxes, grid.box(k)], srid=srid, where=where, params=params)
            if not len(pipes):
                continue
            owned, tile = check_tile(c, grid, k, pipes, rules, reach, boxes, srid)
            segments += owned
            for name, ch in tile.items():
                checked[name].add(ch)
    findings = [f for name, ch in checked.items() for f in ch.all_findings(name)]
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.rule] = counts.get(f.rule, 0) + 1
    summary = {"segments": segments, "buildings": n_buildings, "findings": dict(sorted(counts.items())),
               "pairs": {k: dict(sorted(ch.pairs.items())) for k, ch in checked.items()},
               "no_rule": {k: dict(sorted(ch.no_rule.items())) for k, ch in checked.items()}}
    run = record_run(ANALYSIS, {"bbox": list(bbox) if bbox else None, "dataset": dataset}, rules.provenance(),
                     findings, summary, started_at=started, requested_by=requested_by, engine=engine)
    return {"run_id": run.id, "summary": summary, "findings": summary["findings"]}

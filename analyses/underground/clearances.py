"""Clearance, cover and clash checks over the stored pipes, with the rules as data (rules.py).

- Horizontal clearance between pipes running alongside each other (GB 50289-2016 4.1.9): the clear
  distance in plan (axis distance less both half widths) of every pair that does not cross and whose
  directions differ by at most PARALLEL_DEG.
- Horizontal clearance between a pipe and a building (4.1.9): plan distance from the footprint to the
  pipe's outer wall.
- Vertical clearance at crossings (4.1.14): the clear gap between the outer walls where the plan axes cross.
- Pipe-top cover (GB 50014-2021 5.3.7): ground less the pipe's top at each end, under carriageway or
  footway (the carriageway from the road layer, model.carriageway).
- 3D clashes: pipes whose outer walls overlap (a negative clear gap at a crossing, or alongside).

Pairs come from an STRtree query in plan, all at once; segments of one utility that share a node are
one pipe, not a pair. Every check of a pair for which no rule exists is counted as "no rule" (one info
finding per utility pair with the count), never given a guessed distance. A run records the inputs,
the rules with their source and confidence, and the findings (cim_core.runs).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
import sqlalchemy as sa

from cim_core.db import get_engine, storage_srid
from cim_core.errors import NotFoundError
from cim_core.runs import Finding, now, record_run

from .model import Box, Pipes, axis_z, carriageway, load_buildings, load_pipes
from .rules import Rule, RuleSet, current_rules, match

ANALYSIS = "underground-clearances"
PARALLEL_DEG = 30.0
CLASH_RULE = {"source": "geometry: the pipes' outer walls overlap", "confidence": "measured"}


@dataclass
class Checked:
    """Findings of one check and, by utility pair, how many pairs it examined, found within the required
    distance (inclusive, as ST_DWithin counts) and found violating; pairs without a rule by utility pair."""
    findings: list[Finding]
    pairs: dict[str, dict[str, int]]
    no_rule: dict[str, int]


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


def _no_rule(check: str, names: np.ndarray, example) -> tuple[dict[str, int], list[Finding]]:
    """Counts of the pairs no rule covers, and one info finding per utility pair naming an example:
    example(k) gives (object, related, xy) of the k-th of `names`."""
    u, first, counts = np.unique(names, return_index=True, return_counts=True)
    found = [Finding("no_rule", f"{check}: no rule for {n} ({c} pair(s) examined); not checked", *example(k), "info",
                     {"check": check, "pair": str(n), "pairs": int(c)})
             for n, k, c in zip(u, first, counts)]
    return dict(zip(map(str, u), map(int, counts))), found


def _rule_details(rule: Rule, measured: float, required: float) -> dict:
    return {"measured_m": round(float(measured), 3), "required_m": required, "rule": rule.name, "ref": rule.ref,
            "source": rule.source, "confidence": rule.confidence}


def pipe_pairs(pipes: Pipes, distance: float) -> tuple[np.ndarray, np.ndarray]:
    """(i, j), i < j: segments within `distance` in plan, less those of one utility that share a node."""
    i, j = shapely.STRtree(pipes.lines).query(pipes.lines, predicate="dwithin", distance=distance)
    keep = i < j
    i, j = i[keep], j[keep]
    ends_i = np.column_stack([pipes.from_node[i], pipes.to_node[i]])
    ends_j = np.column_stack([pipes.from_node[j], pipes.to_node[j]])
    shared = np.zeros(len(i), bool)
    for a in range(2):
        for b in range(2):
            shared |= (ends_i[:, a] == ends_j[:, b]) & (ends_i[:, a] >= 0)
    connected = shared & (pipes.utility[i] == pipes.utility[j])
    return i[~connected], j[~connected]


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
    counts, infos = _no_rule("horizontal", names[unruled], lambda k: _example(pipes, i[unruled[k]], j[unruled[k]]))
    return Checked(found + infos, _tally(names, ruled, within, bad), counts)


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
    counts, infos = _no_rule("vertical", names[unruled], lambda k: (
        int(pipes.id[i[unruled[k]]]), int(pipes.id[j[unruled[k]]]), tuple(xy[unruled[k]])))
    return Checked(found + infos, _tally(names, ruled, within, bad), counts)


def buildings(pipes: Pipes, rules: list[Rule], ids: np.ndarray, footprints: np.ndarray) -> Checked:
    """Horizontal clearance from pipes' outer walls to building footprints."""
    reach = max([r.min_m for r in rules], default=0.0) + float(np.nanmax(pipes.half_width, initial=0.0))
    i, b = shapely.STRtree(footprints).query(pipes.lines, predicate="dwithin", distance=reach)
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
    counts, infos = _no_rule("building", names[unruled], lambda k: (
        int(pipes.id[i[unruled[k]]]), int(ids[b[unruled[k]]]), tuple(xy[unruled[k]])))
    return Checked(found + infos, _tally(names, ruled, within, bad), counts)


def cover(pipes: Pipes, rules: list[Rule], road) -> Checked:
    """Pipe-top cover at both ends of every segment whose ground is known, by the area above it."""
    n = len(pipes)
    ends = np.concatenate([shapely.get_point(pipes.axes, 0), shapely.get_point(pipes.axes, -1)])
    z = shapely.get_coordinates(ends, include_z=True)
    seg = np.tile(np.arange(n), 2)
    top = z[:, 2] + pipes.half_height[seg]
    depth = np.concatenate([pipes.ground[:, 0], pipes.ground[:, 1]]) - top
    if road is not None:
        shapely.prepare(road)  # one point-in-area test per pipe end
    under = shapely.intersects(road, shapely.points(z[:, :2])) if road is not None else np.zeros(2 * n, bool)
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
    counts, infos = _no_rule("cover", names[unruled], lambda k: (int(pipes.id[seg[unruled[k]]]), None,
                                                                 tuple(z[unruled[k], :2])))
    return Checked(found + infos, _tally(names, ruled, ruled & (short >= 0), ruled & (short > 0)), counts)


def run_checks(pipes: Pipes, rules: RuleSet, bld: tuple[np.ndarray, np.ndarray], road) -> dict[str, Checked]:
    """Every check over loaded pipes, buildings (ids, footprints) and carriageway, in memory."""
    h, v = rules.of("horizontal"), rules.of("vertical")
    along, near_building = [r for r in h if r.utility_b != "building"], [r for r in h if r.utility_b == "building"]
    reach = max([r.min_m for r in along + v], default=0.0) + 2 * float(np.nanmax(pipes.half_width, initial=0.0))
    i, j = pipe_pairs(pipes, reach) if len(pipes) else (np.empty(0, int), np.empty(0, int))
    crossing = shapely.intersects(pipes.lines[i], pipes.lines[j])
    return {"horizontal": horizontal(pipes, along, i, j, crossing), "vertical": vertical(pipes, v, i, j, crossing),
            "building": buildings(pipes, near_building, *bld),
            "cover": cover(pipes, rules.of("cover"), road)}


def check(*, bbox: Box | None = None, dataset: str | None = None, rules: RuleSet | None = None,
          engine: sa.Engine | None = None, requested_by: str | None = None) -> dict:
    """Run every check over the current pipes (in a box and/or of one dataset) and store the run.
    Returns {"run_id", "summary", "findings": counts by rule}."""
    engine = engine or get_engine()
    started = now()
    rules = rules or current_rules(engine)
    srid = storage_srid(engine)
    where, params = ("o.dataset_id = (select id from datasets where name = :ds)", {"ds": dataset}) \
        if dataset else ("", {})
    with engine.connect() as c:
        if dataset and c.scalar(sa.text("select id from datasets where name = :n"), {"n": dataset}) is None:
            raise NotFoundError(f"no dataset named {dataset!r}", hint="`cim datasets` lists them")
        pipes = load_pipes(c, bbox=bbox, srid=srid, where=where, params=params)
        ids, footprints = load_buildings(c, bbox=bbox, srid=srid)
        road = carriageway(c, bbox=bbox, srid=srid)
    checked = run_checks(pipes, rules, (ids, footprints), road)
    findings = [f for ch in checked.values() for f in ch.findings]
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.rule] = counts.get(f.rule, 0) + 1
    summary = {"segments": len(pipes), "buildings": len(ids), "findings": dict(sorted(counts.items())),
               "pairs": {k: ch.pairs for k, ch in checked.items()},
               "no_rule": {k: ch.no_rule for k, ch in checked.items()}}
    run = record_run(ANALYSIS, {"bbox": list(bbox) if bbox else None, "dataset": dataset}, rules.provenance(),
                     findings, summary, started_at=started, requested_by=requested_by, engine=engine)
    return {"run_id": run.id, "summary": summary, "findings": summary["findings"]}

"""Local dips and rises where a pressure pipe or cable duct crosses another utility's line.

The street networks lie at realistic depths (networks.py), so their depth ranges overlap and a pipe
laid straight from node to node would run through, or too close to, the pipes of the crossing street.
Designers keep the main that is harder to move (gravity pipes, which must keep their fall, then the big
ducts and mains) and bend the other over or under it. Here each network, in the order of RESOLVE_ORDER,
keeps the lines fixed before it: where one of its segments crosses a fixed line with less than the
design clearance, the segment gets two bends PAD m either side of the crossing (or of a group of
crossings) and runs level between them, over the fixed lines if its cover allows, else under them, at the
level nearest its own; two more bends a ramp's length further out bring it back to its straight profile.
The ramps are at most 45 degrees (a dip is made with 45 degree bends): where room is short the pad gives
way, and two crossings too close for two ramps between them share one level run. Next to a node a ramp
may still be steeper (the node stays at its depth).
The bends are vertices of the segment's line (Network.bends), not nodes: the network stays as it was.
"""
from __future__ import annotations

import numpy as np
import shapely


RESOLVE_ORDER = ("telecom", "power", "gas", "water", "heat")  # after rain and sewage, which never move
# Design clear gap between outer walls at a crossing (m): water against rain and sewage the 0.40 m of
# GB 50289-2016 Table 4.1.14 (pre-2016 value, second-hand) plus 0.10 m; any other pair the 0.15 m of the
# same table (gas, heat) plus 0.10 m. Node depths are rounded to 0.01 m, well inside both margins.
CLEARANCE_WATER_GRAVITY, CLEARANCE = 0.50, 0.25
MARGIN = 0.10  # the design margin over the table's values above
# Least cover (m) a pipe may be raised to over a crossing line: the minimum covers commonly quoted from
# GB 50289-2016 Table 4.1.1 under carriageways (water 0.70, gas 0.90, power and telecom ducts 0.70, heat
# 0.70; second-hand, unconfirmed against the official text), water and gas with 0.2 m to spare.
MIN_COVER = {"water": 0.90, "gas": 1.10, "heat": 0.70, "power": 0.70, "telecom": 0.70}
PAD = 1.0  # m of level pipe either side of a crossing
SIDE = 0.3  # m of level pipe past the other line's wall (the streets cross square)
END = 0.3  # m: the least distance between bends, and from a bend to the segment's end
NODE_PASSES = 3  # rounds of moving nodes out of crossings' way (_clear_nodes); at scale 30 one left 4 of 77
RAMP = 1.0  # m: the least run of a bend back to the straight profile (at most 45 degrees where room allows)
STEEP_TOLERANCE = 0.02  # a ramp computed at 45 degrees comes out up to about 1 % steeper (a sloping profile)


def half_height(net) -> np.ndarray:
    """Half the vertical size of each segment (m)."""
    s = net.seg
    return np.where(s["shape"] == "rectangular", s["height_mm"], s["diameter_mm"]) / 2000.0


def _half_width(net) -> np.ndarray:
    s = net.seg
    return np.where(s["shape"] == "rectangular", s["width_mm"], s["diameter_mm"]) / 2000.0


def _axis(net) -> tuple[np.ndarray, np.ndarray]:
    """Axis elevation at both ends of each segment (gravity lines are stored at their invert)."""
    lift = half_height(net) if net.gravity else 0.0
    return net.node_invert[net.seg_a] + lift, net.node_invert[net.seg_b] + lift


def _axis_at(net, k: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Axis elevation of segments k at fractions u of their plan length, through their bends."""
    a, b = _axis(net)
    z = a[k] + (b[k] - a[k]) * u
    if net.bends:
        length = np.linalg.norm(net.node_xy[net.seg_b] - net.node_xy[net.seg_a], axis=1)
        for n in np.flatnonzero(np.isin(k, list(net.bends))):
            s, bend = k[n], net.bends[k[n]]
            z[n] = np.interp(u[n] * length[s], np.r_[0.0, bend[:, 0], length[s]], np.r_[a[s], bend[:, 1], b[s]])
    return z


def _lines(net) -> np.ndarray:
    return shapely.linestrings(np.stack([net.node_xy[net.seg_a], net.node_xy[net.seg_b]], axis=1))


def _crossings(net, fixed: list) -> tuple[np.ndarray, ...]:
    """Every crossing with a fixed line, or a near miss whose walls would overlap in plan (the end of a
    line at a tee): (segment, distance along it of the point nearest the other line, half the length of it
    that lies under or over the other line, the lowest and the highest axis level it may not take there)."""
    mine, own, half = _lines(net), _half_width(net), half_height(net)
    found = []
    for other in fixed:
        theirs, wide = _lines(other), _half_width(other)
        i, j = shapely.STRtree(theirs).query(mine, predicate="dwithin", distance=own.max() + wide.max() + SIDE)
        side = wide[j] + own[i] + SIDE
        near = shapely.shortest_line(mine[i], theirs[j])
        keep = shapely.length(near) <= side
        i, j, near, side = i[keep], j[keep], near[keep], side[keep]
        t = shapely.line_locate_point(mine[i], shapely.get_point(near, 0))
        u = shapely.line_locate_point(theirs[j], shapely.get_point(near, -1), normalized=True)
        zj = _axis_at(other, j, u)
        clear = CLEARANCE_WATER_GRAVITY if other.gravity and net.utility == "water" else CLEARANCE
        reach = half_height(other)[j] + clear + half[i]
        found.append((i, t, side, zj - reach, zj + reach))
    return tuple(np.concatenate(v) for v in zip(*found))


def _groups(start: np.ndarray, end: np.ndarray) -> list[np.ndarray]:
    """Indices of the spans (sorted by start) in groups that overlap."""
    reach = np.maximum.accumulate(end)
    return np.split(np.arange(len(start)), np.flatnonzero(start[1:] > reach[:-1]) + 1)


def _level(nominal: float, lo: np.ndarray, hi: np.ndarray, highest: float) -> float:
    """The axis level nearest the nominal that clears every crossing of a group and keeps the least cover."""
    options = np.r_[nominal, hi, lo]
    ok = ~((options[:, None] > lo) & (options[:, None] < hi)).any(axis=1) & (options <= highest)
    return float(options[ok][np.argmin(np.abs(options[ok] - nominal))])


def _segment_cuts(length, z0, z1, t, side, lo, hi, highest) -> list[tuple[float, float]]:
    """(distance, axis level) of the extra nodes of one segment: for each group of crossings that the
    profile through its ends (and the groups already bent) would not clear, two nodes at the level that
    clears it, and a ramp node back on the straight profile either side. Two groups whose level runs lie
    too close for ramps of at most 45 degrees between them (fittings come in 11.25, 22.5, 45 and 90 degree
    bends; a dip is made with 45 degree ones) share one level run."""
    order = np.argsort(t - side)
    t, side, lo, hi = t[order], side[order], lo[order], hi[order]
    start, end = t - side, t + side
    groups = _groups(start, end)
    while True:
        cuts = _group_cuts(groups, length, z0, z1, t, start, end, lo, hi, highest)
        g = _crowded(cuts)
        if g is None:
            return _spaced(sorted(p for c in cuts.values() for p in c))
        groups[g:g + 2] = [np.concatenate(groups[g:g + 2])]


def _crowded(cuts: dict[int, list[tuple[float, float]]]) -> int | None:
    """The first bent group whose level run and the next group's are joined by a piece steeper than 45
    degrees (with STEEP_TOLERANCE), or overlap."""
    for g in sorted(cuts):
        if g + 1 not in cuts:
            continue
        a = max(p for p in cuts[g] if p[1] == cuts[g][0][1])  # the end of g's level run, the start of the next's
        b = cuts[g + 1][0]
        pts = np.array([p for p in _spaced(sorted(cuts[g] + cuts[g + 1])) if a[0] <= p[0] <= b[0]])
        if b[0] <= a[0] or len(pts) < 2 or (np.abs(np.diff(pts[:, 1])) > (1 + STEEP_TOLERANCE) * np.diff(pts[:, 0])).any():
            return g
    return None


def _group_cuts(groups, length, z0, z1, t, start, end, lo, hi, highest) -> dict[int, list[tuple[float, float]]]:
    """The points of each group that needs a level run (see _segment_cuts): the run's start, a ramp point
    before it, the run's end and a ramp point after it (the ramp points where there is room)."""
    edges = [(start[g].min(), end[g].max()) for g in groups]
    cuts: dict[int, list[tuple[float, float]]] = {}
    while True:
        pts = sorted([(0.0, z0), (length, z1)] + [p for c in cuts.values() for p in c])
        z = np.interp(t, [p[0] for p in pts], [p[1] for p in pts])
        bad = [g for g, idx in enumerate(groups) if g not in cuts and ((z[idx] > lo[idx]) & (z[idx] < hi[idx])).any()]
        if not bad:
            return cuts
        for g in bad:
            idx = groups[g]
            level = _level(float(z[idx].mean()), lo[idx], hi[idx], highest)
            room_before = (edges[g][0] - edges[g - 1][1]) / 2 if g else edges[g][0] - END
            room_after = (edges[g + 1][0] - edges[g][1]) / 2 if g + 1 < len(groups) else length - END - edges[g][1]
            cuts[g] = []
            for edge, room, sign in ((edges[g][0], room_before, -1), (edges[g][1], room_after, 1)):
                # the level run's PAD gives way to a ramp of at most 45 degrees where room is short
                rise = max(RAMP, abs(level - np.interp(edge, [0, length], [z0, z1])))
                flat = min(PAD, max(room - rise, 0.0), max(room, 0.0) / 2 if room < RAMP else PAD)
                at = float(np.clip(edge + sign * flat, END, length - END))
                cuts[g].append((at, level))
                ramp = at + sign * min(max(RAMP, abs(level - np.interp(at, [0, length], [z0, z1]))), room - flat)
                if room - flat > RAMP / 2 and END <= ramp <= length - END:
                    cuts[g].append((ramp, float(np.interp(ramp, [0, length], [z0, z1]))))


def _spaced(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points (sorted by distance) at least END from the one kept before (the first from the start)."""
    kept: list[tuple[float, float]] = []
    for p in points:
        if p[0] - (kept[-1][0] if kept else 0.0) >= END:
            kept.append(p)
    return kept


def _bend(net, seg, t, side, lo, hi, length, only=None) -> None:
    """The bends of every segment with crossings (sorted by segment), or of the segments in `only`."""
    za, zb = net.node_invert[net.seg_a], net.node_invert[net.seg_b]
    top = net.node_ground - MIN_COVER[net.utility]
    highest = np.minimum(top[net.seg_a], top[net.seg_b]) - half_height(net)
    for idx in np.split(np.arange(len(seg)), np.flatnonzero(np.diff(seg)) + 1) if len(seg) else ():
        k = int(seg[idx[0]])
        if only is not None and k not in only:
            continue
        net.bends.pop(k, None)
        bend = _segment_cuts(length[k], za[k], zb[k], t[idx], side[idx], lo[idx], hi[idx], highest[k])
        if bend:
            net.bends[k] = np.round(np.array(bend), 3)


def _end_level(net, k: int, start: bool) -> float:
    """The axis level of segment k's bend nearest its start (or end), NaN without bends."""
    bend = net.bends.get(int(k))
    return np.nan if bend is None else float(bend[0, 1] if start else bend[-1, 1])


def _clear_nodes(net, seg, t, lo, hi, length) -> set[int]:
    """Move the nodes beside the crossings that the bends left breaking the table's clearance (the
    design's less MARGIN): a fixed line passing close to a segment's end, as where a street main's node
    sits beside the line of a side street, leaves no room for a bend. The node nearer each such crossing
    takes the level of the segment's level run beside it (the run then reaches the node), or where that
    does not clear them with the design clearance, the level nearest the profile's at the crossings that
    does; its depth with it. Returns
    the segments at the nodes moved. A node elsewhere stays where it is: moving one reshapes every
    segment at it."""
    z = _axis_at(net, seg, t / length[seg])
    bad = (z > lo + MARGIN) & (z < hi - MARGIN)
    start = t < length[seg] / 2
    node = np.where(start, net.seg_a[seg], net.seg_b[seg])[bad]
    run = np.array([_end_level(net, k, a) for k, a in zip(seg[bad], start[bad])])
    lo, hi, half, at = lo[bad], hi[bad], half_height(net)[seg[bad]], z[bad]
    for n in np.unique(node):
        k = node == n
        ground, z = net.node_ground[n], net.node_invert[n]
        highest = ground - MIN_COVER[net.utility] - half[k].max()
        runs = run[k][~((run[k][:, None] > lo[k]) & (run[k][:, None] < hi[k])).any(axis=1) & (run[k] <= highest)]
        level = float(runs[np.argmin(np.abs(runs - z))]) if len(runs) else _level(float(at[k].mean()), lo[k],
                                                                                   hi[k], highest)
        depth = (ground - level) * 100  # depths in cm as the network's, rounded away from the crossing line
        net.node_depth[n] = (np.ceil(depth - 1e-9) if level < z else np.floor(depth + 1e-9)) / 100
        net.node_invert[n] = round(ground - net.node_depth[n], 3)
    return set(np.flatnonzero(np.isin(net.seg_a, node) | np.isin(net.seg_b, node)).tolist())


def resolve(net, fixed: list) -> None:
    """Bend the segments of `net` (a pressure network; its `bends`, changed in place) over or under the
    lines of the `fixed` networks; a node in a crossing's way moves (_clear_nodes) and its segments are
    bent again, for at most NODE_PASSES rounds."""
    seg, t, side, lo, hi = _crossings(net, fixed)
    length = np.linalg.norm(net.node_xy[net.seg_b] - net.node_xy[net.seg_a], axis=1)
    order = np.argsort(seg, kind="stable")
    seg, t, side, lo, hi = seg[order], t[order], side[order], lo[order], hi[order]
    _bend(net, seg, t, side, lo, hi, length)
    for _ in range(NODE_PASSES):  # bending a moved node's segments again may put another node in the way
        moved = _clear_nodes(net, seg, t, lo, hi, length)
        if not moved:
            break
        _bend(net, seg, t, side, lo, hi, length, only=moved)

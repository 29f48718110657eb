"""Tracing a drainage network: what lies upstream and downstream of a manhole, a segment or a clicked
point, the catchment of a manhole, the outfalls, and the pieces of network that reach none.

Flow follows the inverts (from the higher end to the lower), falling back to the stored from -> to
direction where the inverts are equal or unknown (`cim_core.network.graph`). A trace is a read: it
records no run. `outfall_check` stores its findings (pieces without an outfall, nodes where the flow
stops short of one) as a run.
"""
from __future__ import annotations

import weakref
from dataclasses import asdict, dataclass, field

import numpy as np
import shapely
import sqlalchemy as sa
from scipy.sparse.csgraph import breadth_first_order
from scipy.spatial import cKDTree

from cim_core import scenarios
from cim_core.db import get_engine
from cim_core.errors import InputError
from cim_core.network.graph import Network
from cim_core.runs import Finding, now, record_run

from . import network as dn

DIRECTIONS = ("up", "down", "both")
# Metres from a clicked point within which the nearest manhole is picked before the nearest pipe.
PICK_NODE_M = 3.0
# Metres within which a building or parcel is taken to drain to its nearest manhole (a planning assumption).
CATCHMENT_REACH_M = 150.0
# Vertices a trace walks in Python before handing over to scipy (a measured trade-off, not a rule).
SMALL_REACH = 2000


@dataclass
class Reach:
    """What one direction of a trace reaches: object ids of nodes and segments, and the length."""
    nodes: list[int] = field(default_factory=list)
    segments: list[int] = field(default_factory=list)
    length_m: float = 0.0


@dataclass
class Trace:
    start: dict  # {"kind": "node" | "segment", "id", "key"}
    upstream: Reach | None
    downstream: Reach | None
    outfalls: list[int]  # outfalls that the downstream trace reaches

    def as_dict(self) -> dict:
        return asdict(self)


def _lists(indptr: np.ndarray, values: np.ndarray) -> tuple[list[int], list[int]]:
    """A CSR layout (row i: values[indptr[i]:indptr[i+1]]) as Python lists: a walk of a few vertices then
    costs Python operations, not numpy calls, per vertex."""
    return indptr.tolist(), values.tolist()


class Tracer:
    """Traces over one loaded drainage network (the graphs are built once, for many traces: a downstream
    trace from every manhole of the scale-30 district, 112,000 traces, takes seconds; bench/drainage.py)."""

    def __init__(self, net: Network):
        self.net = net
        self.down = net.flow_graph
        self.up = net.flow_graph.T.tocsr()
        self.seg_up, self.seg_down = net.flow
        self._next = {id(g): _lists(g.indptr, g.indices) for g in (self.down, self.up)}
        self.leaving = self._by_vertex(np.asarray(self.seg_up), net.n_vertices)
        self.entering = self._by_vertex(np.asarray(self.seg_down), net.n_vertices)
        self._node_id, self._segment_id = net.node_id.tolist(), net.segment_id.tolist()
        self._length = np.nan_to_num(net.length).tolist()
        self._outfalls = set(dn.outfall_nodes(net).tolist())

    def _vertices(self, graph, start: int) -> list[int]:
        """The vertices reached from `start` (sorted indices). A walk in Python costs what it reaches; past
        SMALL_REACH vertices scipy's breadth-first order (which costs the whole graph) takes over."""
        ptr, nxt = self._next[id(graph)]
        seen, todo = {start}, [start]
        while todo:
            v = todo.pop()
            for w in nxt[ptr[v]:ptr[v + 1]]:
                if w not in seen:
                    seen.add(w)
                    todo.append(w)
            if len(seen) > SMALL_REACH:
                return np.sort(breadth_first_order(graph, start, directed=True, return_predecessors=False)).tolist()
        return sorted(seen)

    @staticmethod
    def _by_vertex(ends: np.ndarray, n: int) -> tuple[list[int], list[int]]:
        """The segments (indices) at each vertex as the given end."""
        order = np.argsort(ends, kind="stable")
        return _lists(np.searchsorted(ends[order], np.arange(n + 1)), order)

    @staticmethod
    def _segments(reached: list[int], at_vertex: tuple[list[int], list[int]], segment: int | None) -> list[int]:
        """The segments at a reached vertex (by `at_vertex`), and `segment` if given, sorted."""
        ptr, segments = at_vertex
        segs = {s for v in reached for s in segments[ptr[v]:ptr[v + 1]]}
        if segment is not None:
            segs.add(segment)
        return sorted(segs)

    def _reach(self, reached, segments: list[int]) -> Reach:
        n, seg_id, length = self.net.n_nodes, self._segment_id, self._length
        return Reach([self._node_id[v] for v in reached if v < n], [seg_id[s] for s in segments],
                     float(sum(length[s] for s in segments)))

    def downstream(self, vertex: int, segment: int | None = None) -> tuple[Reach, list[int]]:
        """What flow from a vertex (or from a segment, whose downstream vertex is given) reaches, and the
        outfalls among it."""
        reached = self._vertices(self.down, vertex)
        segs = self._segments(reached, self.leaving, segment)  # the segments whose upstream end is reached
        return self._reach(reached, segs), [self._node_id[v] for v in reached if v in self._outfalls]

    def upstream(self, vertex: int, segment: int | None = None) -> Reach:
        """What drains to a vertex (or to a segment, whose upstream vertex is given)."""
        reached = self._vertices(self.up, vertex)
        return self._reach(reached, self._segments(reached, self.entering, segment))

    def trace(self, kind: str, index: int, direction: str = "both") -> Trace:
        """A trace from the node or segment (kind) at `index`."""
        if direction not in DIRECTIONS:
            raise InputError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
        net = self.net
        if kind == "node":
            start = {"kind": "node", "id": int(net.node_id[index]), "key": str(net.node_key[index])}
            up_v, down_v, seg = index, index, None
        else:
            start = {"kind": "segment", "id": int(net.segment_id[index]), "key": str(net.segment_key[index])}
            up_v, down_v, seg = int(self.seg_up[index]), int(self.seg_down[index]), index
        down, outfalls = self.downstream(down_v, seg) if direction != "up" else (None, [])
        up = self.upstream(up_v, seg) if direction != "down" else None
        return Trace(start, up, down, outfalls)


_TRACERS: weakref.WeakKeyDictionary[Network, Tracer] = weakref.WeakKeyDictionary()


def pick(net: Network, x: float, y: float, tolerance: float = PICK_NODE_M) -> tuple[str, int]:
    """The manhole within `tolerance` of a point, else the nearest pipe (network loaded with geometry)."""
    d, i = cKDTree(net.node_xy).query([x, y])
    if d <= tolerance or net.centerlines is None or not net.n_segments:
        return "node", int(i)
    dist = shapely.distance(net.centerlines, shapely.Point(x, y))
    return "segment", int(np.argmin(dist))


def trace(*, node: int | str | None = None, segment: int | str | None = None,
          point: tuple[float, float] | None = None, direction: str = "both", dataset: str | None = None,
          scenario: str | None = None, engine: sa.Engine | None = None, net: Network | None = None) -> Trace:
    """Trace up- and/or downstream from a manhole, a segment (object id or key) or a point (x, y in the
    storage CRS) over the current drainage networks (of one dataset, if given) of the as-is model or a
    scenario's (`net`: one loaded already by `network.load_cached`)."""
    if sum(v is not None for v in (node, segment, point)) != 1:
        raise InputError("give exactly one start: a node, a segment or a point")
    net = net if net is not None else dn.load_cached(engine, dataset=dataset, scenario=scenario)
    tracer = _TRACERS.get(net)
    if tracer is None:
        tracer = _TRACERS[net] = Tracer(net)
    if point is not None:
        kind, index = pick(net, *point)
    elif node is not None:
        kind, index = "node", dn.node_at(net, node)
    else:
        kind, index = "segment", dn.segment_at(net, segment)
    return tracer.trace(kind, index, direction)


def catchment(node: int | str, *, dataset: str | None = None, reach_m: float = CATCHMENT_REACH_M,
              scenario: str | None = None, engine: sa.Engine | None = None) -> dict:
    """The catchment of a manhole: the segments and nodes that drain to it, and the buildings and
    land-use parcels whose nearest node of the manhole's network (within `reach_m`) is among them."""
    engine = engine or get_engine()
    net = dn.load(engine, dataset=dataset, scenario=scenario)
    i = dn.node_at(net, node)
    up = Tracer(net).upstream(i)
    same = np.flatnonzero(net.node_utility == net.node_utility[i])
    objects = _drained_objects(engine, net, same, set(up.nodes), reach_m, dn.scenario_id(engine, scenario))
    return {"node": {"id": int(net.node_id[i]), "key": str(net.node_key[i])}, "nodes": up.nodes,
            "segments": up.segments, "length_m": up.length_m, **objects}


def _drained_objects(engine: sa.Engine, net: Network, candidates: np.ndarray, upstream: set[int],
                     reach_m: float, scenario_id: int | None) -> dict:
    """Buildings and parcels whose nearest candidate node (within reach) is an upstream node."""
    xy = net.node_xy[candidates]
    lo, hi = xy.min(axis=0) - reach_m, xy.max(axis=0) + reach_m
    with engine.connect() as c:
        rows = c.execute(sa.text(f"""
            select o.id, o.class, st_x(p), st_y(p), st_area(o.footprint)
            from city_objects o, st_pointonsurface(o.footprint) p
            where (o.class = 'building' or (o.class = 'landuse' and o.attributes ? 'landuse'))
              and o.footprint is not null and {scenarios.current(scenario_id)}
              and o.footprint && st_makeenvelope(:x0, :y0, :x1, :y1, st_srid(o.footprint))"""),
                         {"x0": lo[0], "y0": lo[1], "x1": hi[0], "y1": hi[1]}).all()
    out = {"buildings": [], "parcels": [], "area_m2": 0.0}
    if not rows:
        return out
    d, j = cKDTree(xy).query(np.array([(r[2], r[3]) for r in rows]), distance_upper_bound=reach_m)
    for r, dist, k in zip(rows, d, j):
        if np.isfinite(dist) and int(net.node_id[candidates[k]]) in upstream:
            out["buildings" if r[1] == "building" else "parcels"].append(int(r[0]))
            out["area_m2"] += float(r[4]) if r[1] == "landuse" else 0.0
    return out


def outfall_check(dataset: str | None = None, *, scenario: str | None = None, engine: sa.Engine | None = None,
                  requested_by: str | None = None) -> dict:
    """The outfalls of the drainage network, its pieces (connected parts) without one (`no_outfall`) and
    the nodes where flow stops that are no outfall (`flow_sink`); stores the findings as a run."""
    engine = engine or get_engine()
    t0 = now()
    net = dn.load(engine, dataset=dataset, geometry=True, scenario=scenario)
    parts = net.components()
    outfalls = dn.outfall_nodes(net)
    served = np.zeros(parts.count, bool)
    served[parts.node[outfalls]] = True
    found = []
    for p in np.flatnonzero(~served):
        members, segs = np.flatnonzero(parts.node == p), np.flatnonzero(parts.segment == p)
        if len(members):
            low = members[np.argmin(np.nan_to_num(net.node_invert[members], nan=np.inf))]
            where, oid, loc = net.node_key[low], int(net.node_id[low]), tuple(net.node_xy[low])
        else:  # pipes whose ends meet no node
            where, oid, loc = net.segment_key[segs[0]], int(net.segment_id[segs[0]]), None
        found.append(Finding("no_outfall", f"{len(members)} nodes and {len(segs)} segments around {where} "
                             "reach no outfall", oid, location=loc,
                             details={"nodes": len(members), "segments": len(segs)}))
    found += _sinks(net, served[parts.node])
    summary = {"outfalls": len(outfalls), "pieces": parts.count, "pieces_without_outfall": int((~served).sum()),
               "flow_sinks": sum(f.rule == "flow_sink" for f in found)}
    run = record_run("drainage-outfalls", {"dataset": dataset, "scenario": scenario},
                     {"no_outfall": "a connected piece of drainage network with no outfall node",
                      "flow_sink": "a node that flow enters and none leaves, not an outfall",
                      "outfall": f"node_type = {dn.OUTFALL!r}"},
                     found, summary, started_at=t0, requested_by=requested_by, engine=engine)
    return {"run_id": run.id, **summary, "outfall_ids": net.node_id[outfalls].tolist()}


def _sinks(net: Network, in_served_piece: np.ndarray) -> list[Finding]:
    """Nodes of pieces that have an outfall where flow arrives and does not go on."""
    up, down = net.flow
    inflow = np.bincount(down[down < net.n_nodes], minlength=net.n_nodes)
    outflow = np.bincount(up[up < net.n_nodes], minlength=net.n_nodes)
    sink = (inflow > 0) & (outflow == 0) & in_served_piece
    sink[dn.outfall_nodes(net)] = False
    return [Finding("flow_sink", f"{net.node_key[i]}: flow arrives and cannot leave (no lower pipe); "
                    "it reaches no outfall", int(net.node_id[i]), location=tuple(net.node_xy[i]))
            for i in np.flatnonzero(sink)]


"""Burst isolation and criticality on valve segments (cim_core.network.valves), as Giswater's "mincut".

The valve layer of a stored network is its valve nodes (node_type `valve`): a valve between two pipes is
placed on the first at the valve node, so it parts the two. A valve whose `status` attribute says it
cannot be turned (INOPERABLE) does not bound a segment: closing around a burst goes on to the next valves.
A layer can also be given as WNTR's (link, node) pairs.

For a burst on a pipe: the segment that working valves bound is isolated (its pipes and nodes); the valves to
close are the working valves on its boundary; the inoperable valves met are those that would have bounded a
smaller area; and the parts of the rest of the network that keep no source (reservoir or tank) are cut off
unintentionally (no valve lies between them and a source, only the closed segment). A network with no
source at all is taken as fed from its largest remaining part (reported as `source_assumed`).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import shapely
import sqlalchemy as sa
from scipy.sparse.csgraph import connected_components

from cim_core.crs import to_lonlat
from cim_core.db import get_engine, storage_srid
from cim_core.errors import InputError
from cim_core.network.graph import Network
from cim_core.network.valves import Segments, valve_segments
from cim_core.runs import Finding, now, record_run

from .hydraulics import pressure_drop
from .service import Service, service

INOPERABLE = ("inoperable", "seized", "missing", "broken", "buried", "stuck")  # `status` values
SOURCE_TYPES = ("reservoir", "tank")
MAX_POINT_DISTANCE_M = 30.0  # a clicked point selects the nearest pipe within this distance
_CACHE: OrderedDict = OrderedDict()
CACHE_SIZE = 4


@dataclass
class ValveLayer:
    """Valves on links at nodes (indices into a Network), each with its object id (or -1), label and status."""
    link: np.ndarray
    node: np.ndarray
    object_id: np.ndarray
    label: list[str]
    status: list[str | None]

    @property
    def operable(self) -> np.ndarray:
        return np.array([(s or "").lower() not in INOPERABLE for s in self.status], bool)


def valve_nodes_layer(net: Network) -> ValveLayer:
    """The valve layer of a network's valve nodes (loaded with the node attribute `status`)."""
    status_attr = net.node_attributes.get("status", [None] * net.n_nodes)
    is_valve = net.node_type.astype(str) == "valve"
    ends = np.concatenate([net.from_idx, net.to_idx])
    link = np.concatenate([np.arange(net.n_segments)] * 2)
    keep = (ends >= 0) & is_valve[np.maximum(ends, 0)]
    ends, link = ends[keep], link[keep]
    order = np.lexsort((link, ends))
    ends, link = ends[order], link[order]
    last = np.r_[ends[1:] != ends[:-1], True]  # a valve node's last link stays joined to it
    ends, link = ends[~last], link[~last]
    return ValveLayer(link, ends, net.node_id[ends], [str(net.node_key[i]) for i in ends],
                      [None if status_attr[i] is None else str(status_attr[i]) for i in ends])


def pairs_layer(net: Network, pairs: list[tuple[str, str]]) -> ValveLayer:
    """A valve layer from (link, node) pairs naming segments and nodes by key or source name."""
    links = _lookup(net.segment_key, net.segment_attributes.get("name"))
    nodes = _lookup(net.node_key, net.node_attributes.get("name"))
    li, ni = [], []
    for lk, nd in pairs:
        if str(lk) not in links or str(nd) not in nodes:
            raise InputError(f"valve ({lk}, {nd}): no such pipe or node in the network")
        li.append(links[str(lk)])
        ni.append(nodes[str(nd)])
        if ni[-1] not in (net.from_idx[li[-1]], net.to_idx[li[-1]]):
            raise InputError(f"valve ({lk}, {nd}): node {nd} is not an end of pipe {lk}")
    n = len(li)
    return ValveLayer(np.array(li, int), np.array(ni, int), np.full(n, -1), [f"{a}@{b}" for a, b in pairs],
                      [None] * n)


def _lookup(keys: np.ndarray, names: list | None) -> dict[str, int]:
    out = {str(n): i for i, n in enumerate(names or []) if n is not None}
    out.update({str(k): i for i, k in enumerate(keys)})
    return out


@dataclass(eq=False)
class Isolation:
    """A network, its valve layer and the segments they make, for one burst after another."""
    net: Network
    valves: ValveLayer
    service: Service | None = None  # the buildings each node serves (analyses.water.service)
    srid: int | None = None  # storage CRS, for WGS 84 positions

    @cached_property
    def operable(self) -> np.ndarray:
        return self.valves.operable

    @cached_property
    def segments(self) -> Segments:
        """Segments bounded by the valves that work."""
        v = self.valves
        return valve_segments(self.net.n_vertices, *self.net.edges, v.link[self.operable], v.node[self.operable])

    @cached_property
    def ideal(self) -> Segments:
        """Segments if every valve worked."""
        return valve_segments(self.net.n_vertices, *self.net.edges, self.valves.link, self.valves.node)

    @cached_property
    def node_demand(self) -> np.ndarray:
        """Base demand (m3/s) of every node: from the hydraulic record an EPANET import kept, else from the
        buildings it serves."""
        recs = self.net.node_attributes.get("hydraulic", [None] * self.net.n_nodes)
        kept = np.array([sum(d.get("base_val") or 0.0 for d in (r or {}).get("demand_timeseries_list") or [])
                         for r in recs], float)
        if self.service is None:
            return kept
        return np.where([bool(r) for r in recs], kept, self.service.node_demand(self.net.n_nodes))

    @cached_property
    def source_segments(self) -> np.ndarray:
        src = np.isin(self.net.node_type.astype(str), SOURCE_TYPES)
        return np.unique(self.segments.node[:self.net.n_nodes][src])

    def cut_off_segments(self, closed: int) -> tuple[np.ndarray, bool]:
        """Segments left without a source when segment `closed` is shut; whether a source was assumed."""
        seg = self.segments
        rest = np.flatnonzero(np.arange(seg.count) != closed)
        if not len(rest):
            return np.empty(0, int), False
        _, label = connected_components(seg.graph[rest][:, rest], directed=False)
        sources = self.source_segments[self.source_segments != closed]
        assumed = not len(self.source_segments)
        if assumed:
            fed = np.isin(label, np.argmax(np.bincount(label, weights=self._segment_sizes[rest])))
        else:
            fed = np.isin(label, label[np.searchsorted(rest, sources)])
        return rest[~fed], assumed

    @cached_property
    def _segment_sizes(self) -> np.ndarray:
        return np.bincount(self.segments.link, minlength=self.segments.count).astype(float) + 1e-9

    def burst(self, pipe: int) -> dict[str, Any]:
        """What closing around pipe (a segment index) does; ids are object ids."""
        net, seg, v = self.net, self.segments, self.valves
        s = int(seg.link[pipe])
        node_seg = seg.node[:net.n_nodes]
        side_link, side_node = seg.link[v.link] == s, seg.node[v.node] == s
        close = self.operable & (side_link != side_node)
        ideal = self.ideal
        met = ~self.operable & (side_link | side_node) & (ideal.link[v.link] != ideal.node[v.node])
        cut, assumed = self.cut_off_segments(s)
        iso_links, iso_nodes = np.flatnonzero(seg.link == s), np.flatnonzero(node_seg == s)
        cut_links, cut_nodes = np.flatnonzero(np.isin(seg.link, cut)), np.flatnonzero(np.isin(node_seg, cut))
        return {
            "pipe": {"id": int(net.segment_id[pipe]), "key": str(net.segment_key[pipe])},
            "valves_to_close": self._valves(np.flatnonzero(close)),
            "inoperable_valves": self._valves(np.flatnonzero(met)),
            "isolated": self._part(iso_links, iso_nodes),
            "cut_off": self._part(cut_links, cut_nodes),
            "source_assumed": assumed,
        }

    def _valves(self, which: np.ndarray) -> list[dict]:
        v, xy = self.valves, self.net.node_xy
        return [{"id": int(v.object_id[i]) if v.object_id[i] >= 0 else None, "key": v.label[i],
                 "status": v.status[i], "x": float(xy[v.node[i], 0]), "y": float(xy[v.node[i], 1])}
                for i in which]

    def _part(self, links: np.ndarray, nodes: np.ndarray) -> dict:
        length = self.net.length[links]
        served = self.service.at(nodes) if self.service is not None else {"buildings": []}
        return {"pipes": self.net.segment_id[links].tolist(), "nodes": self.net.node_id[nodes].tolist(),
                "length_m": round(float(np.nansum(length)), 2),
                "demand_m3s": float(self.node_demand[nodes].sum()), "buildings": served["buildings"]}


def load(engine: sa.Engine | None = None, *, utility: str = "water", dataset: str | None = None,
         valves: list[tuple[str, str]] | None = None) -> Isolation:
    """The isolation model of a stored network (its valve nodes, or the given (link, node) valve layer);
    kept in memory until the model's change log moves on."""
    engine = engine or get_engine()
    with engine.connect() as c:
        version = c.scalar(sa.text("select max(id) from change_log"))
    key = (str(engine.url), utility, dataset, tuple(map(tuple, valves)) if valves is not None else None)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] == version:
        _CACHE.move_to_end(key)
        return hit[1]
    net = Network.load(engine, utility=utility, dataset=dataset, geometry=True,
                       node_attributes=("status", "name", "hydraulic"), segment_attributes=("name",))
    if not net.n_segments:
        raise InputError(f"no {utility} pipes" + (f" in dataset {dataset!r}" if dataset else ""))
    iso = Isolation(net, valve_nodes_layer(net) if valves is None else pairs_layer(net, valves),
                    service(engine, net), storage_srid(engine))
    _CACHE[key] = (version, iso)
    while len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return iso


def clear_cache() -> None:
    """Forget the networks kept in memory (benchmarks, after an edit that wrote no change log)."""
    _CACHE.clear()


def find_pipe(iso: Isolation, pipe: int | str | None = None, point: tuple[float, float] | None = None,
              max_distance: float = MAX_POINT_DISTANCE_M) -> int:
    """Index of a pipe given by object id, key or source name, or nearest to a point (storage CRS)."""
    net = iso.net
    if (pipe is None) == (point is None):
        raise InputError("give either a pipe (id or key) or a point (x, y)")
    if point is not None:
        d = shapely.distance(net.centerlines, shapely.Point(point[0], point[1]))
        i = int(np.argmin(d))
        if not d[i] <= max_distance:
            raise InputError(f"no {net.utility[i]} pipe within {max_distance:g} m of ({point[0]:.1f}, "
                             f"{point[1]:.1f}); the nearest is {d[i]:.0f} m away")
        return i
    if isinstance(pipe, int) or (isinstance(pipe, str) and pipe.isdigit() and int(pipe) in set(net.segment_id)):
        hit = np.flatnonzero(net.segment_id == int(pipe))
        if len(hit):
            return int(hit[0])
    index = _lookup(net.segment_key, net.segment_attributes.get("name"))
    if str(pipe) not in index:
        raise InputError(f"no pipe {pipe!r} in the {net.utility[0]} network",
                         hint="give an object id, a key such as pipe:10, or a point")
    return index[str(pipe)]


def _add_lonlat(valves: list[dict], srid: int) -> None:
    """WGS 84 positions of valves (for a map client), beside their storage-CRS x, y."""
    if valves:
        lon, lat = to_lonlat(srid, [v["x"] for v in valves], [v["y"] for v in valves])
        for v, a, b in zip(valves, lon, lat):
            v["lon"], v["lat"] = round(float(a), 8), round(float(b), 8)


def _lines_lonlat(net: Network, ids: list[int], srid: int) -> list[list[list[float]]]:
    """WGS 84 vertices of the pipes (object ids), for a map client to draw them."""
    which = np.flatnonzero(np.isin(net.segment_id, ids))
    if not len(which) or net.centerlines is None:
        return []
    xy, part = shapely.get_coordinates(net.centerlines[which], return_index=True)
    lon, lat = to_lonlat(srid, xy[:, 0], xy[:, 1])
    pts = np.round(np.column_stack([lon, lat]), 8)
    return [pts[part == k].tolist() for k in range(len(which))]


def isolate(pipe: int | str | None = None, *, point: tuple[float, float] | None = None, utility: str = "water",
            dataset: str | None = None, valves: list[tuple[str, str]] | None = None,
            max_distance: float = MAX_POINT_DISTANCE_M, pressure: bool = False, requested_by: str | None = None,
            engine: sa.Engine | None = None) -> dict[str, Any]:
    """Burst isolation for a pipe (object id, key or source name) or the pipe nearest a point: valves to
    close, what is isolated and what is cut off unintentionally, the inoperable valves met; with `pressure`,
    how far pressures fall elsewhere with the area shut (hydraulics.pressure_drop). The run is recorded
    (analysis `burst-isolation`) with a finding per inoperable valve met and per cut-off part."""
    engine = engine or get_engine()
    t0 = now()
    iso = load(engine, utility=utility, dataset=dataset, valves=valves)
    result = iso.burst(find_pipe(iso, pipe, point, max_distance))
    srid = iso.srid
    _add_lonlat(result["valves_to_close"] + result["inoperable_valves"], srid)
    result["lines"] = {part: _lines_lonlat(iso.net, result[part]["pipes"], srid) for part in ("isolated", "cut_off")}
    if pressure:
        area = result["isolated"]
        result["pressure"] = pressure_drop(engine, area["pipes"], utility=utility, dataset=dataset,
                                           skip=area["nodes"] + result["cut_off"]["nodes"])
    key = result["pipe"]["key"]
    found = [Finding("valve_inoperable", f"{v['key']} ({v['status']}) cannot be closed: the area around {key} "
                     "grows to the next valves", v["id"], result["pipe"]["id"], (v["x"], v["y"]), "warning",
                     {"status": v["status"], "source": "valve status attribute"})
             for v in result["inoperable_valves"]]
    if result["cut_off"]["nodes"]:
        cut = result["cut_off"]
        found.append(Finding("unintended_cut_off", f"closing around {key} also cuts off {len(cut['pipes'])} pipes "
                             f"({cut['length_m']:.0f} m) with no valve between them and a source",
                             result["pipe"]["id"], severity="warning",
                             details={"pipes": len(cut["pipes"]), "nodes": len(cut["nodes"]),
                                      "demand_m3s": cut["demand_m3s"]}))
    inputs = {"pipe": pipe, "point": list(point) if point else None, "utility": utility, "dataset": dataset,
              "valves": "given" if valves is not None else "valve nodes", "pressure": pressure}
    rules = {"inoperable_status": list(INOPERABLE), "sources": list(SOURCE_TYPES),
             "source": "valve segments (Walski 1993; WNTR valve_segments), Giswater mincut"}
    summary = {"valves_to_close": len(result["valves_to_close"]), "isolated_pipes": len(result["isolated"]["pipes"]),
               "cut_off_pipes": len(result["cut_off"]["pipes"]), "pipe": result["pipe"],
               "buildings_without_water": len(result["isolated"]["buildings"]) + len(result["cut_off"]["buildings"])}
    run = record_run("burst-isolation", inputs, rules, found, summary, started_at=t0, requested_by=requested_by,
                     engine=engine)
    return {"run_id": run.id, **result}

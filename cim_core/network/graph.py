"""A stored pipe network as a graph, for analyses: arrays of nodes and segments and scipy.sparse graphs.

Vertices of the graph are the network's nodes (indices 0..n_nodes-1) followed by one vertex per loose
segment end (an end with no node), so that every segment is an edge between two vertices. Flow runs
from the higher invert to the lower in gravity networks (drainage), falling back to the stored
from -> to direction where the inverts are equal or unknown; pressure networks keep the stored direction.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

import numpy as np
import shapely
import sqlalchemy as sa
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra

from cim_core.db import get_engine

from .columns import GRAVITY
from .queries import network_rows


class Components(NamedTuple):
    """Connected parts of a network: their number, and the part of every node and segment."""
    count: int
    node: np.ndarray
    segment: np.ndarray


def _ids(col) -> np.ndarray:
    return np.fromiter((-1 if v is None else v for v in col), np.int64, len(col))


def _floats(col) -> np.ndarray:
    return np.array(col, dtype=float).reshape(-1)


def _lines(wkbs) -> np.ndarray:
    return shapely.from_wkb(np.array([bytes(w) for w in wkbs], object).reshape(-1))


@dataclass(eq=False)
class Network:
    """Nodes and segments of a stored network as columns (NaN where unknown; from_idx/to_idx index the
    nodes, -1 for a loose end). `centerlines` are the segments' 3D axes (shapely) when loaded with
    geometry; node_/segment_attributes hold the attributes asked for at loading, by name."""
    node_id: np.ndarray
    node_key: np.ndarray
    node_utility: np.ndarray
    node_type: np.ndarray
    node_xy: np.ndarray
    node_ground: np.ndarray
    node_invert: np.ndarray
    segment_id: np.ndarray
    segment_key: np.ndarray
    utility: np.ndarray
    from_idx: np.ndarray
    to_idx: np.ndarray
    length: np.ndarray
    start_invert: np.ndarray
    end_invert: np.ndarray
    diameter_mm: np.ndarray
    centerlines: np.ndarray | None = None
    node_attributes: dict[str, list] = field(default_factory=dict)
    segment_attributes: dict[str, list] = field(default_factory=dict)

    @classmethod
    def load(cls, engine: sa.Engine | None = None, *, utility: str | None = None, dataset: str | None = None,
             bbox: tuple[float, float, float, float] | None = None, geometry: bool = False,
             node_attributes: tuple[str, ...] = (), segment_attributes: tuple[str, ...] = (),
             scenario_id: int | None = None) -> Network:
        """The current network of a utility, a dataset and/or a box (xmin, ymin, xmax, ymax in the storage
        CRS), in the model of a scenario (None: as-is; `cim_core.scenarios`); with geometry, the centrelines
        too. Nodes outside the box that selected segments reference are loaded as well."""
        n, s = network_rows(engine or get_engine(), utility=utility, dataset=dataset, bbox=bbox,
                            geometry=geometry, node_attributes=tuple(node_attributes),
                            segment_attributes=tuple(segment_attributes), scenario_id=scenario_id)
        node_id = _ids(n["id"])
        return cls(
            node_id=node_id, node_key=np.array(n["key"], object), node_utility=np.array(n["utility"], object),
            node_type=np.array(n["node_type"], object),
            node_xy=np.column_stack([_floats(n["x"]), _floats(n["y"])]),
            node_ground=_floats(n["ground_z"]), node_invert=_floats(n["invert_z"]),
            segment_id=_ids(s["id"]), segment_key=np.array(s["key"], object),
            utility=np.array(s["utility"], object), from_idx=node_index(node_id, _ids(s["from_node"])),
            to_idx=node_index(node_id, _ids(s["to_node"])),
            length=_floats(s["length_m"]), start_invert=_floats(s["start_invert"]),
            end_invert=_floats(s["end_invert"]), diameter_mm=_floats(s["diameter_mm"]),
            centerlines=_lines(s["centerline"]) if geometry else None,
            node_attributes={a: list(n[f"attributes.{a}"]) for a in node_attributes},
            segment_attributes={a: list(s[f"attributes.{a}"]) for a in segment_attributes})

    @property
    def n_nodes(self) -> int:
        return len(self.node_id)

    @property
    def n_segments(self) -> int:
        return len(self.segment_id)

    @cached_property
    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """(start vertex, end vertex) of every segment, loose ends numbered after the nodes."""
        ends = np.concatenate([self.from_idx, self.to_idx])
        loose = ends < 0
        ends[loose] = self.n_nodes + np.arange(int(loose.sum()))
        return ends[:self.n_segments], ends[self.n_segments:]

    def end_points(self) -> tuple[np.ndarray, np.ndarray]:
        """(start, end) points (n, 3) of the centrelines (loaded with geometry)."""
        points = (shapely.get_point(self.centerlines, i) for i in (0, -1))
        return tuple(shapely.get_coordinates(p, include_z=True).reshape(-1, 3) for p in points)

    @property
    def n_vertices(self) -> int:
        return self.n_nodes + int((self.from_idx < 0).sum() + (self.to_idx < 0).sum())

    @cached_property
    def degree(self) -> np.ndarray:
        """Segment ends at every node."""
        ends = np.concatenate([self.from_idx, self.to_idx])
        return np.bincount(ends[ends >= 0], minlength=self.n_nodes)

    @cached_property
    def adjacency(self) -> csr_matrix:
        """Undirected vertex adjacency (symmetric); an entry counts the segments between two vertices."""
        u, v = self.edges
        n = self.n_vertices
        return coo_matrix((np.ones(2 * len(u)), (np.concatenate([u, v]), np.concatenate([v, u]))),
                          shape=(n, n)).tocsr()

    def components(self) -> Components:
        """Connected parts; a node without segments is a part of its own."""
        if not self.n_vertices:
            return Components(0, np.empty(0, int), np.empty(0, int))
        count, label = connected_components(self.adjacency, directed=False)
        return Components(int(count), label[:self.n_nodes], label[self.edges[0]])

    @cached_property
    def gravity(self) -> np.ndarray:
        """Segments of drainage networks, which flow by gravity."""
        return np.isin(self.utility.astype(str), GRAVITY)

    @cached_property
    def forward(self) -> np.ndarray:
        """True where flow runs from the stored from-node to the to-node (see the module doc)."""
        return ~(self.gravity & (self.start_invert < self.end_invert))

    @cached_property
    def flow(self) -> tuple[np.ndarray, np.ndarray]:
        """(upstream vertex, downstream vertex) of every segment."""
        u, v = self.edges
        return np.where(self.forward, u, v), np.where(self.forward, v, u)

    @cached_property
    def flow_graph(self) -> csr_matrix:
        """Directed vertex adjacency, from upstream to downstream."""
        up, down = self.flow
        n = self.n_vertices
        return coo_matrix((np.ones(len(up)), (up, down)), shape=(n, n)).tocsr()

    def _reached(self, nodes, upstream: bool) -> np.ndarray:
        """Vertices reachable from `nodes` along the flow (against it when upstream), starts included."""
        starts = np.unique(np.asarray(nodes, int).reshape(-1))
        if not len(starts):
            return np.zeros(self.n_vertices, bool)
        graph = self.flow_graph.T.tocsr() if upstream else self.flow_graph
        return np.isfinite(dijkstra(graph, directed=True, indices=starts, unweighted=True, min_only=True))

    def downstream(self, nodes) -> np.ndarray:
        """Indices of the nodes that flow from `nodes` (node indices) reaches, `nodes` included."""
        return np.flatnonzero(self._reached(nodes, upstream=False)[:self.n_nodes])

    def upstream(self, nodes) -> np.ndarray:
        """Indices of the nodes whose flow reaches `nodes`, `nodes` included."""
        return np.flatnonzero(self._reached(nodes, upstream=True)[:self.n_nodes])

    def downstream_segments(self, nodes) -> np.ndarray:
        """Indices of the segments that flow from `nodes` passes through."""
        return np.flatnonzero(self._reached(nodes, upstream=False)[self.flow[0]])

    def upstream_segments(self, nodes) -> np.ndarray:
        """Indices of the segments whose flow reaches `nodes`."""
        return np.flatnonzero(self._reached(nodes, upstream=True)[self.flow[1]])


def node_index(node_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Indices into ascending `node_ids` of object ids `ids`; -1 where an id is not among them."""
    ids = np.asarray(ids, np.int64)
    if not len(node_ids):
        return np.full(len(ids), -1)
    pos = np.minimum(np.searchsorted(node_ids, ids), len(node_ids) - 1)
    return np.where(node_ids[pos] == ids, pos, -1)

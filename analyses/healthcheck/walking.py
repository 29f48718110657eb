"""Walking distance along the street network: a graph of the road centre lines in scipy.sparse.

The lines are noded where they cross (shapely union), densified to `step` m, and their vertices become
the graph's nodes. A place joins the network at its nearest node by a straight leg, so a walking
distance is never shorter than the straight line between the same two places (legs and edges are
straight pieces of one path between them).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

STEP_M = 20.0  # densification of the centre lines: a place joins the network within STEP_M / 2 of its foot


@dataclass
class WalkNetwork:
    xy: np.ndarray  # node coordinates (n x 2)
    graph: csr_matrix
    tree: cKDTree

    @classmethod
    def from_lines(cls, lines, step: float = STEP_M) -> WalkNetwork | None:
        """The network of these centre lines, or None when there are none."""
        lines = [g for g in np.asarray(lines, dtype=object).ravel() if g is not None and not g.is_empty]
        if not lines:
            return None
        noded = shapely.segmentize(shapely.union_all(lines), step)  # the union nodes crossing lines
        parts = shapely.get_parts(noded)
        coords, part = shapely.get_coordinates(parts, return_index=True)
        keys = np.round(coords, 2)
        uniq, node = np.unique(keys, axis=0, return_inverse=True)
        node = node.ravel()
        same = part[1:] == part[:-1]
        a, b = node[:-1][same], node[1:][same]
        w = np.hypot(*(coords[1:][same] - coords[:-1][same]).T)
        keep = a != b
        n = len(uniq)
        g = coo_matrix((np.r_[w[keep], w[keep]], (np.r_[a[keep], b[keep]], np.r_[b[keep], a[keep]])), shape=(n, n))
        return cls(uniq, g.tocsr(), cKDTree(uniq))

    def distances_from(self, points: np.ndarray, limit: float) -> np.ndarray:
        """Walking distance from the nearest of `points` (m x 2) to every node, inf beyond `limit`."""
        n = len(self.xy)
        if len(points) == 0:
            return np.full(n, np.inf)
        leg, near = self.tree.query(points)
        best = np.full(n, np.inf)
        np.minimum.at(best, near, leg)
        starts = np.flatnonzero(np.isfinite(best) & (best <= limit))
        if len(starts) == 0:
            return np.full(n, np.inf)
        # A virtual source joined to each start node by its leg: one search for all places at once.
        src = n
        # csgraph drops zero-weight edges: a place standing on a node gets a leg of 1 nm instead.
        legs = np.maximum(best[starts], 1e-9)
        g = coo_matrix((legs, (np.full(len(starts), src), starts)), shape=(n + 1, n + 1)).tocsr()
        g = _stack(self.graph, g)
        d = dijkstra(g, directed=True, indices=src, limit=limit)
        return d[:n]

    def reach(self, points: np.ndarray, node_dist: np.ndarray) -> np.ndarray:
        """Walking distance to each of `points` (k x 2) given the distances of the nodes."""
        if len(points) == 0:
            return np.zeros(0)
        leg, near = self.nearest(points)
        return leg + node_dist[near]

    def nearest(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(leg, node) of each point: its nearest node and the distance to it. Remembered by exact
        coordinates: the grid cells of land recur across indicators and units (each coverage indicator
        cuts the same cells again), and the lookup costs a fraction of the tree's query."""
        key = points[:, 0] + 1j * points[:, 1]
        known = self.__dict__.setdefault("_known", (np.zeros(0, complex), np.zeros(0), np.zeros(0, np.int64)))
        at = np.minimum(np.searchsorted(known[0], key), max(len(known[0]) - 1, 0))
        hit = known[0][at] == key if len(known[0]) else np.zeros(len(key), bool)
        leg, near = np.empty(len(key)), np.empty(len(key), np.int64)
        leg[hit], near[hit] = known[1][at[hit]], known[2][at[hit]]
        miss = np.flatnonzero(~hit)
        if len(miss):
            leg[miss], near[miss] = self.tree.query(points[miss])
            new, first = np.unique(key[miss], return_index=True)
            keys = np.concatenate([known[0], new])
            order = np.argsort(keys, kind="stable")
            self.__dict__["_known"] = (keys[order], np.concatenate([known[1], leg[miss][first]])[order],
                                       np.concatenate([known[2], near[miss][first]])[order])
        return leg, near


def _stack(graph: csr_matrix, extra: csr_matrix) -> csr_matrix:
    """`graph` grown by one row and column, plus the edges of `extra` (already that size)."""
    n = graph.shape[0]
    g = graph.tocoo()
    grown = coo_matrix((g.data, (g.row, g.col)), shape=(n + 1, n + 1)).tocsr()
    return (grown + extra).tocsr()


def access_points(geoms, step: float = STEP_M) -> np.ndarray:
    """Where people reach a facility: a point facility itself, points every `step` m along a line (a
    greenway), or points every `step` m along the edge of an area (a park)."""
    pts = []
    for g in geoms:
        if g is None or g.is_empty:
            continue
        if g.geom_type in ("Point", "MultiPoint"):
            pts.append(shapely.get_coordinates(g))
        elif g.geom_type in ("LineString", "MultiLineString"):  # a greenway: anywhere along it
            pts.append(shapely.get_coordinates(shapely.segmentize(g, step)))
        else:
            pts.append(shapely.get_coordinates(shapely.segmentize(g.boundary, step)))
    return np.concatenate(pts) if pts else np.zeros((0, 2))

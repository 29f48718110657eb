"""Valve segments of a pressure network: the parts that closing valves can cut out.

A valve sits on a link at one of its ends (the valve layer of WNTR and of Walski's segment analysis: link,
node). The network is seen as a bipartite graph of nodes and links, a link joined to each of its end nodes
unless a valve sits there; its connected parts are the segments. So a link with valves at both ends is a
segment of its own, and a node whose every link is valved at it is one too. A valve joins the segment of
its link to the segment of its node: the segment graph, whose edges are the valves.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components


class Segments(NamedTuple):
    """Segment of every vertex (node) and link; their number; the segment graph (valves as edges)."""
    count: int
    node: np.ndarray
    link: np.ndarray
    graph: csr_matrix


def valve_segments(n_vertices: int, start: np.ndarray, end: np.ndarray, valve_link: np.ndarray,
                   valve_node: np.ndarray) -> Segments:
    """Segments of links (start, end: vertex indices) with valves at (valve_link, valve_node)."""
    m = len(start)
    valve_link, valve_node = np.asarray(valve_link, np.int64), np.asarray(valve_node, np.int64)
    valved = np.unique(valve_link * n_vertices + valve_node)
    links = np.arange(m)
    ends = np.concatenate([start, end]).astype(np.int64)
    owner = np.concatenate([links, links])
    joined = ~np.isin(owner * n_vertices + ends, valved)
    n = n_vertices + m
    g = coo_matrix((np.ones(int(joined.sum())), (ends[joined], n_vertices + owner[joined])), shape=(n, n))
    count, label = connected_components(g, directed=False)
    seg_a, seg_b = label[n_vertices + valve_link], label[valve_node]
    graph = coo_matrix((np.ones(2 * len(seg_a)), (np.concatenate([seg_a, seg_b]), np.concatenate([seg_b, seg_a]))),
                       shape=(count, count)).tocsr()
    return Segments(int(count), label[:n_vertices], label[n_vertices:], graph)

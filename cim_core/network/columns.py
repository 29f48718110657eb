"""A network being built, in columns: node and segment arrays in the storage CRS, and their topology.

Importers fill `Nodes` and `Segments` from their sources; `snap_ends` joins the segment ends that a
source leaves unconnected. Missing numbers are NaN; from_idx/to_idx index `Nodes` (-1: not connected).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from cim_core.model import Mesh
from cim_core.settings import get_settings

# Drainage utilities: gravity networks, whose heights refer to the invert and whose flow follows it.
GRAVITY = ("rain", "sewage", "combined")
# Metres within which segment ends join nodes and each other, unless an import is told otherwise.
SNAP_TOLERANCE_M = 0.5


@dataclass
class Nodes:
    """Node columns. `ref_z` and `depth` refer to the axis where `ref_is_axis`, else to the invert."""
    keys: list[str]
    xy: np.ndarray
    utility: np.ndarray
    node_type: np.ndarray
    ground: np.ndarray
    depth: np.ndarray
    ref_z: np.ndarray
    ref_is_axis: np.ndarray
    attributes: list[dict]
    names: list[str | None] | None = None
    is_tee: np.ndarray | None = None
    source_ids: list[str | None] | None = None  # the survey's node ids, which segments may reference
    meshes: dict[int, Mesh] = field(default_factory=dict)  # drawings the source knows better (tanks...)

    @classmethod
    def empty(cls) -> Nodes:
        e = np.empty(0)
        return cls([], np.empty((0, 2)), e.astype(object), e.astype(object), e, e, e, e.astype(bool), [])

    def __len__(self) -> int:
        return len(self.keys)

    def extend(self, keys: list[str], xy: np.ndarray, utility: np.ndarray, node_type: np.ndarray,
               ground: np.ndarray) -> None:
        """Append generated nodes (junctions where segment ends meet)."""
        n = len(keys)
        nan = np.full(n, np.nan)
        self.keys += list(keys)
        self.xy = np.vstack([self.xy, xy])
        self.utility = np.concatenate([self.utility, np.asarray(utility, object)])
        self.node_type = np.concatenate([self.node_type, np.asarray(node_type, object)])
        self.ground = np.concatenate([self.ground, ground])
        self.depth = np.concatenate([self.depth, nan])
        self.ref_z = np.concatenate([self.ref_z, nan])
        self.ref_is_axis = np.concatenate([self.ref_is_axis, np.zeros(n, bool)])
        self.attributes += [{"generated": True} for _ in range(n)]
        if self.names is not None:
            self.names += [None] * n
        if self.is_tee is not None:
            self.is_tee = np.concatenate([self.is_tee, np.zeros(n, bool)])
        if self.source_ids is not None:
            self.source_ids += [None] * n


@dataclass
class Segments:
    """Segment columns; `lines` are (N, 2) or (N, 3) arrays in the storage CRS.

    start_/end_invert are true inverts; start_/end_depth and the lines' z refer to the axis where
    `ref_is_axis`, else to the invert.
    """
    keys: list[str]
    lines: list[np.ndarray]
    utility: np.ndarray
    shape: np.ndarray
    diameter_mm: np.ndarray
    width_mm: np.ndarray
    height_mm: np.ndarray
    start_invert: np.ndarray
    end_invert: np.ndarray
    start_depth: np.ndarray
    end_depth: np.ndarray
    start_ground: np.ndarray
    end_ground: np.ndarray
    ref_is_axis: np.ndarray
    from_idx: np.ndarray
    to_idx: np.ndarray
    attributes: list[dict]
    names: list[str | None] | None = None
    line_z: bool = False  # whether the lines' z is a pipe elevation to use when nothing else is known
    drawn_mm: np.ndarray | None = None  # drawing size where the record has none (EPANET pumps)
    # cjj_code, material, owner, pressure_class, install_year
    text: dict[str, list] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> Segments:
        e, o = np.empty(0), np.empty(0, object)
        return cls([], [], o, o, e, e, e, e, e, e, e, e, e, e.astype(bool), e.astype(int), e.astype(int), [])

    def __len__(self) -> int:
        return len(self.keys)

    def section_height(self) -> np.ndarray:
        """Outer height of the section in metres: diameter, or culvert height; the default where unknown."""
        rect = self.shape == "rectangular"
        h = np.where(rect, self.height_mm, self.diameter_mm)
        if self.drawn_mm is not None:
            h = np.where(np.isfinite(h), h, self.drawn_mm)
        return np.where(np.isfinite(h) & (h > 0), h, get_settings().default_pipe_diameter_mm) / 1000.0

    def ends(self) -> tuple[np.ndarray, np.ndarray]:
        """Start and end points (n, 2)."""
        return (np.array([ln[0, :2] for ln in self.lines]).reshape(-1, 2),
                np.array([ln[-1, :2] for ln in self.lines]).reshape(-1, 2))


def snap_ends(segs: Segments, nodes: Nodes, tolerance: float) -> np.ndarray:
    """Connect unconnected segment ends to the nearest node of their utility within `tolerance`; where
    ends of one utility meet without a node, add a generated junction. Returns the indices (into the
    2 * n ends: starts, then ends) of the dangling ends, which touch nothing."""
    n = len(segs)
    a, b = segs.ends()
    pts = np.vstack([a, b])
    idx = np.concatenate([segs.from_idx, segs.to_idx])
    end_utility = np.concatenate([segs.utility, segs.utility]).astype(str)
    node_utility = nodes.utility.astype(str)
    dangling = []
    # networks of different utilities cross without joining: snap within each utility
    for u in np.unique(end_utility):
        open_ = np.flatnonzero((idx < 0) & (end_utility == u))
        candidates = np.flatnonzero(node_utility == u)
        if len(open_) and len(candidates):
            d, j = cKDTree(nodes.xy[candidates]).query(pts[open_], distance_upper_bound=tolerance)
            hit = np.isfinite(d)
            idx[open_[hit]] = candidates[j[hit]]
            open_ = open_[~hit]
        if len(open_):
            dangling.append(_junctions(nodes, idx, pts, open_, u, tolerance))
    segs.from_idx, segs.to_idx = idx[:n], idx[n:]
    return np.sort(np.concatenate(dangling)) if dangling else np.empty(0, int)


def _junctions(nodes: Nodes, idx: np.ndarray, pts: np.ndarray, open_: np.ndarray, utility: str,
               tolerance: float) -> np.ndarray:
    """Open ends within the tolerance of each other meet at a new junction (at their mean position),
    written into idx; returns the open ends that meet nothing."""
    pairs = cKDTree(pts[open_]).query_pairs(tolerance, output_type="ndarray")
    m = len(open_)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(m, m))
    k, label = connected_components(graph, directed=False)
    shared = np.bincount(label, minlength=k)[label] > 1
    if shared.any():
        groups, inverse = np.unique(label[shared], return_inverse=True)
        centre = np.zeros((len(groups), 2))
        np.add.at(centre, inverse, pts[open_[shared]])
        centre /= np.bincount(inverse)[:, None]
        first = len(nodes)
        nodes.extend([f"junction:{first + i}" for i in range(len(groups))], centre,
                     np.full(len(groups), utility, object), np.full(len(groups), "junction", object),
                     np.full(len(groups), np.nan))
        idx[open_[shared]] = first + inverse
    return open_[~shared]

"""Merged building mass: what the parent tiles of the `buildings` layer draw.

A parent draws every building of its quad, merged into the masses that a viewer far enough away for that
parent sees: the buildings of one height band whose footprints lie closer than the tolerance `tau` become one
polygon (a morphological closing: grown by tau/2, unioned, shrunk by tau/2), simplified by tau/2 and
extruded from the lowest ground of its buildings to the area-weighted mean of their roofs. A row of houses
becomes a slab, a block of slabs a mass, and from the whole city down every block stays visible, in one
mesh per tile instead of thousands of buildings.

Deviation (the tile's geometric error): horizontally at most tau (tau/2 from the closing, tau/2 from the
simplification); vertically the largest difference between a building's roof and its mass's top, measured.
A mass of one building is that building's feature (its id and attributes: picking it opens it); a mass of
many is a feature of class `block` without an object id (0, the schema's noData), and picking it zooms in
(viewer/js/picking.js).
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from .source import Feature, prisms

# A parent's tolerance is its quad's side divided by this (like a texture of 1024 texels across the quad): the
# root of a 16 km city merges what lies within 16 m (rows and blocks; wider streets stay open), a 1 km quad
# within 1 m (nearly every building on its own). Our choice, set by eye on the sample district.
MASS_RESOLUTION = 1024
STOREY_M = 3.0  # height bands are at least a storey tall


def _footprints(features: list[Feature]) -> np.ndarray:
    """Each building's footprint, or the hull of its vertices where it has none."""
    fps = np.array([f.footprint for f in features], dtype=object)
    missing = np.array([fp is None for fp in fps])
    if missing.any():
        hulls = [shapely.convex_hull(shapely.multipoints(f.vertices[:, :2])) for f, m in zip(features, missing) if m]
        fps[missing] = hulls
    return fps


def _merged(grown: np.ndarray) -> np.ndarray:
    """The union of the polygons, one union per cluster of overlapping ones: GEOS's union of them all at once
    costs about 5x as much on a city."""
    left, right = shapely.STRtree(grown).query(grown, predicate="intersects")
    graph = sparse.coo_matrix((np.ones(len(left)), (left, right)), shape=(len(grown), len(grown)))
    _, label = csgraph.connected_components(graph, directed=False)
    order = np.argsort(label, kind="stable")
    clusters = np.split(order, np.flatnonzero(np.diff(label[order])) + 1)
    return np.array([grown[c[0]] if len(c) == 1 else shapely.union_all(grown[c]) for c in clusters], dtype=object)


def _closing(fps: np.ndarray, tau: float) -> np.ndarray:
    """The polygons of the footprints merged where they lie closer than tau, simplified by tau / 2."""
    grown = _merged(shapely.buffer(fps, tau / 2, quad_segs=1, join_style="mitre"))
    # shrunk and simplified part by part: a whole city's multipolygon at once took 100x as long
    shape = shapely.simplify(shapely.buffer(grown, -tau / 2, join_style="mitre"), tau / 2)
    parts = shapely.get_parts(shape)
    return parts[shapely.area(parts) > 0]


def _row(members: list[Feature], height: float) -> dict:
    """A mass of one building is that building (its id, so that a click opens it); of many, a `block`."""
    if len(members) == 1:
        f = members[0]
        return {"id": f.id, "class": f.cls, "name": f.name, **f.props}
    uses = Counter(f.props.get("use") for f in members if f.props.get("use"))
    return {"id": None, "class": "block", "name": None, "height": round(height, 2), "floors": None,
            "use": uses.most_common(1)[0][0] if uses else None, "build_year": None}


def block_masses(features: list[Feature], side: float) -> tuple[list[tuple[dict, np.ndarray, np.ndarray, np.ndarray]], float]:
    """The masses of `features` in a quad of `side` metres: ([(row, vertices, faces, face colours)], deviation)."""
    tau = side / MASS_RESOLUTION
    fps = _footprints(features)
    zmin = np.array([f.zmin for f in features])
    zmax = np.array([f.zmax for f in features])
    area = np.maximum(shapely.area(fps), 1e-6)
    band = np.floor((zmax - zmin) / max(tau, STOREY_M)).astype(np.int64)
    out, error = [], tau
    for b in np.unique(band):
        sel = np.flatnonzero(band == b)
        polys = _closing(fps[sel], tau)
        if not len(polys):
            continue
        # each building belongs to the mass nearest to it (the one it lies in, unless simplification shed it)
        _, owner = shapely.STRtree(polys).query_nearest(shapely.point_on_surface(fps[sel]), all_matches=False)
        tops, grounds, rows = [], [], []
        for k in range(len(polys)):
            members = sel[owner == k]
            if not len(members):
                tops.append(np.nan)
                grounds.append(np.nan)
                rows.append(None)
                continue
            top = float(np.average(zmax[members], weights=area[members]))
            error = max(error, float(np.abs(zmax[members] - top).max()))
            tops.append(top)
            grounds.append(float(zmin[members].min()))
            rows.append(_row([features[i] for i in members], top - grounds[-1]))
        keep = [k for k, r in enumerate(rows) if r is not None]
        solids = prisms(polys[keep], np.array(grounds)[keep], np.array(tops)[keep])
        for k, (v, fc, part) in zip(keep, solids):
            if len(fc):
                out.append((rows[k], v, fc, part))
    return out, error


"""Storm subcatchments: land-use parcels split so that each piece drains to its nearest inlet of the rain
network (issue 15: "each draining to the nearest inlet"). A parcel is cut by the Voronoi cells of the inlets
(the region nearer to one inlet than to any other), each cell clipped to the inlet's reach; a piece of a
parcel lying in no cell (farther than the reach from every inlet) drains nowhere.

Shared by the storm runs (`analyses.drainage.storm`) and the sample district's generator, which picks its
low-lying area by the same rule.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

MIN_PIECE_M2 = 1.0  # slivers of a cut along a parcel's edge (below this) are left out


@dataclass
class Pieces:
    """Pieces of parcels: the parcel (index into the input), the inlet it drains to (index), its area (m2)."""
    parcel: np.ndarray
    inlet: np.ndarray
    area: np.ndarray


def split(parcels: np.ndarray, inlets_xy: np.ndarray, reach_m: float) -> Pieces:
    """Cut the parcels (polygons) by the Voronoi cells of the inlets (n x 2) clipped to reach_m around each."""
    parcels, xy = np.asarray(parcels), np.asarray(inlets_xy, float).reshape(-1, 2)
    none = Pieces(np.zeros(0, int), np.zeros(0, int), np.zeros(0))
    if not len(parcels) or not len(xy):
        return none
    uniq, first = np.unique(xy, axis=0, return_index=True)  # two inlets on one spot: the first takes the cell
    points = shapely.points(uniq)
    if len(uniq) == 1:
        cells = shapely.buffer(points, reach_m)
    else:
        frame = shapely.box(*shapely.total_bounds(np.concatenate([parcels, points]))).buffer(reach_m)
        cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(points), extend_to=frame,
                                                           ordered=True))
        cells = shapely.intersection(cells, shapely.buffer(points, reach_m))
    p, c = shapely.STRtree(cells).query(parcels, predicate="intersects")
    area = shapely.area(shapely.intersection(parcels[p], cells[c]))
    keep = area >= MIN_PIECE_M2
    return Pieces(p[keep], first[c[keep]], area[keep])

"""Synthetic buildings shared by the benchmarks: what ANCHORS.md measured the anchors on."""
from __future__ import annotations

import numpy as np


def footprints(n: int, seed: int):
    """n convex 4-8-vertex footprints on a jittered 35 m grid around 114.02E 32.98N (EPSG:4547), with
    heights of 6-60 m: (footprints as a shapely array, heights, the generator for further draws)."""
    import shapely

    from cim_core import crs

    rng = np.random.default_rng(seed)
    cx, cy = crs.transform(4326, 4547, np.array([114.02]), np.array([32.98]))
    side = int(np.ceil(np.sqrt(n)))
    i = np.arange(n)
    x = cx[0] + (i % side - side / 2) * 35.0 + rng.uniform(-4, 4, n)
    y = cy[0] + (i // side - side / 2) * 35.0 + rng.uniform(-4, 4, n)
    k = rng.integers(4, 9, n)
    r = rng.uniform(6, 12, n)
    polys = [shapely.Polygon(np.column_stack([xi + ri * np.cos(a), yi + ri * np.sin(a)]))
             for xi, yi, ri, a in zip(x, y, r, (np.sort(rng.uniform(0, 2 * np.pi, ki)) for ki in k))]
    return shapely.convex_hull(np.array(polys, dtype=object)), rng.uniform(6, 60, n).round(1), rng

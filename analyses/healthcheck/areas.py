"""The service areas of a coverage indicator's facilities, for the dashboard's map: per band (facility class
and radius) the union of the straight-line buffers of its facilities — the area that the straight-line value
counts, inside which the walking value is taken — and the facilities themselves, in WGS84 lon/lat."""
from __future__ import annotations

import numpy as np
import shapely
import sqlalchemy as sa

from cim_core.crs import to_lonlat
from cim_core.db import get_engine, storage_srid
from cim_core.errors import InputError

from . import definitions
from .inputs import ModelInputs

SIMPLIFY_M = 5.0  # drawing tolerance of the outlines (m)


def _lonlat(geom, srid: int):
    return shapely.transform(geom, lambda xy: np.column_stack(to_lonlat(srid, xy[:, 0], xy[:, 1])))


def service_areas(indicator: str, engine: sa.Engine | None = None, year: int = 0) -> dict:
    """A GeoJSON FeatureCollection: one feature per band (kind `area`: facility class, radius, count) and one
    per facility (kind `facility`). Only coverage and life-circle indicators have service areas."""
    engine = engine or get_engine()
    iset = definitions.load()
    ind = iset.indicator(indicator)
    if ind.kind == "coverage":
        bands = [(s.facility, s.radius) for s in ind.services]
    elif ind.kind == "life_circle":
        bands = [(name, float(b["radius"])) for b in ind.params["bands"] for name in b["classes"]]
    else:
        raise InputError(f"indicator {indicator}: kind {ind.kind} has no service areas (coverage and life_circle do)")
    data, srid = ModelInputs(iset, engine, year), storage_srid(engine)
    feats = []
    for name, radius in bands:
        fac = data.layer(name)
        if not len(fac):
            continue
        area = shapely.simplify(shapely.union_all(shapely.buffer(fac.geoms, radius, quad_segs=8)), SIMPLIFY_M)
        feats.append({"type": "Feature", "geometry": shapely.geometry.mapping(_lonlat(area, srid)),
                      "properties": {"kind": "area", "facility": name, "radius": radius, "count": len(fac)}})
        points = _lonlat(shapely.point_on_surface(fac.geoms), srid)
        feats += [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [p.x, p.y]},
                   "properties": {"kind": "facility", "facility": name, "name": n, "id": int(i)}}
                  for p, n, i in zip(points, fac.names, fac.ids)]
    return {"type": "FeatureCollection", "indicator": indicator, "features": feats}

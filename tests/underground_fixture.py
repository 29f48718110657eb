"""A small hand-made street for the underground tests, with every answer worked out from this drawing
(plan, metres from X0, Y0; ground at 60.0 m everywhere; z is the pipe axis):

    y=20  +--------+ building B1 (0..30 x 8..20)
    y=8   +--------+
    y=6.5 S2 sewage d300 (0..30), axis 57.5         -> 1.35 m from B1 (2.5 m required: building_clearance)
    y=1.5 W1 water  d300 (0..100), axis 58.7        -> 1.15 m clear of S1 (1.5 m required: horizontal)
    y=0   S1 sewage d400 (0..100), axis 57.2; the road's centre line (width 20 m: carriageway |y| <= 7)
    y=-2  R1 rain   d600 (0..100), axis 57.0
    y=-4  R2 rain   d300 (60..100), axis 59.5       -> top 59.65, cover 0.35 m under carriageway (0.7: cover)
    x=50  G1 gas    d200 (y -10..10), axis 59.0     -> crosses W1 0.05 m apart (0.15 required: vertical)
    x=20  T1 telecom d100 (y -1..5), axis 57.3      -> crosses S1 with walls overlapping 0.15 m (clash_3d)
"""
from __future__ import annotations

import numpy as np
import shapely

from cim_core.model import CityObject, DatasetInfo, PipeNode, PipeSegment
from cim_core.store import write_dataset

X0, Y0, GROUND = 501800.0, 3649500.0, 60.0
# key: (utility, (x0, y0), (x1, y1), diameter mm, axis z, pressure class)
PIPES = {
    "S1": ("sewage", (0, 0), (100, 0), 400, 57.2, None),
    "W1": ("water", (0, 1.5), (100, 1.5), 300, 58.7, None),
    "R1": ("rain", (0, -2), (100, -2), 600, 57.0, None),
    "R2": ("rain", (60, -4), (100, -4), 300, 59.5, None),
    "S2": ("sewage", (0, 6.5), (30, 6.5), 300, 57.5, None),
    "G1": ("gas", (50, -10), (50, 10), 200, 59.0, "medium-B"),
    "T1": ("telecom", (20, -1), (20, 5), 100, 57.3, None),
}
BUILDING = [(0, 8), (30, 8), (30, 20), (0, 20)]


def at(x: float, y: float) -> tuple[float, float]:
    return X0 + x, Y0 + y


def street(engine) -> None:
    """Store the pipes (dataset `street-pipes`), the building and the road (dataset `street-city`)."""
    objs = []
    for k, (u, a, b, d, z, p) in PIPES.items():
        inv = z - d / 2000
        objs.append(CityObject(key=k, cls="pipe_segment", pipe=PipeSegment(
            u, np.array([[*at(*a), z], [*at(*b), z]]), diameter_mm=d, pressure_class=p, start_invert=inv,
            end_invert=inv, start_depth=GROUND - inv, end_depth=GROUND - inv, cjj_code=u[:2].upper(),
            material="PE", owner="owner of " + u)))
    write_dataset(DatasetInfo("street-pipes", "pipes", "street.gpkg", "pipes"), objs, engine=engine)
    city = [CityObject(key="B1", cls="building", footprint=shapely.Polygon([at(*p) for p in BUILDING]),
                       attributes={"height_m": 18.0}),
            CityObject(key="road", cls="road", footprint=shapely.LineString([at(-20, 0), at(120, 0)]),
                       attributes={"road_class": "local", "width_m": 20.0})]
    write_dataset(DatasetInfo("street-city", "gis", "street.gpkg", "city"), city, engine=engine)


# A sewer run at y = 100 (clear of the street): M1 -s1- M2 -s2- M3 -s3- M4, 40 m each, ground 53.0.
# s2 rises from 49.9 to 49.95 (adverse); s3 starts at 50.1, 0.15 m above where s2 ends (a step).
MANHOLES = {"M1": (0, 50.0), "M2": (40, 49.9), "M3": (80, 49.95), "M4": (120, 49.8)}
RUN = {"s1": ("M1", "M2", 50.0, 49.9), "s2": ("M2", "M3", 49.9, 49.95), "s3": ("M3", "M4", 50.1, 49.8)}


def sewer_run(engine) -> None:
    objs = [CityObject(key=k, cls="pipe_node", node=PipeNode("sewage", "manhole", (*at(x, 100), 53.0),
                                                             depth=53.0 - inv, ground_z=53.0, invert_z=inv))
            for k, (x, inv) in MANHOLES.items()]
    for k, (a, b, ia, ib) in RUN.items():
        line = np.array([[*at(MANHOLES[a][0], 100), ia + 0.15], [*at(MANHOLES[b][0], 100), ib + 0.15]])
        objs.append(CityObject(key=k, cls="pipe_segment", pipe=PipeSegment(
            "sewage", line, diameter_mm=300, start_invert=ia, end_invert=ib, start_depth=53.0 - ia,
            end_depth=53.0 - ib, from_node=a, to_node=b)))
    write_dataset(DatasetInfo("sewer-run", "pipes", "run.gpkg", "run"), objs, engine=engine)

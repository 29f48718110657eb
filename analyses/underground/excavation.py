"""Excavation (开挖分析): what a pit of a given outline and depth below ground reaches.

For every pipe segment whose axis passes through the outline: the depth below ground of its top and its
invert where it lies inside (the shallowest and deepest along the part inside), the length inside, and
whether the pit reaches it (its top lies less deep than the pit; a segment whose ground is unknown counts
as reached). Every pipe node (manhole, valve...) inside is reached: its chamber rises to the ground. Then
the buildings within a distance of the outline, the earth volume (area x depth) and a verdict per utility:
`conflict` where the pit reaches any of its pipes or nodes, else `clear`. The run is stored with a finding
per reached object (cim_core.runs).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import shapely
import sqlalchemy as sa
from shapely.geometry import mapping

from cim_core.crs import crs_name, parse_crs
from cim_core.db import get_engine, storage_srid
from cim_core.errors import InputError
from cim_core.network.queries import CURRENT
from cim_core.runs import Finding, now, record_run

from .inputs import pit_depth, pit_polygon
from .model import Pipes, axis_z, ground_at, load_pipes

ANALYSIS = "underground-excavation"
BUILDING_DISTANCE_M = 5.0
DEFINITION = {"source": "issue 13 (开挖分析)", "reached": "pipe top shallower than the pit depth below ground; "
              "nodes inside the outline (chambers reach the ground); unknown ground counts as reached"}


def _range(values: np.ndarray, index: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.full(n, np.inf), np.full(n, -np.inf)
    ok = ~np.isnan(values)
    np.minimum.at(lo, index[ok], values[ok])
    np.maximum.at(hi, index[ok], values[ok])
    return np.where(np.isfinite(lo), lo, np.nan), np.where(np.isfinite(hi), hi, np.nan)


def segments_in_pit(pipes: Pipes, pit, depth: float) -> list[dict]:
    """Every segment crossing the pit outline with its depths inside, length inside and whether it is reached."""
    n = len(pipes)
    inside = shapely.intersection(pipes.lines, pit)
    pts, which = shapely.get_coordinates(inside, return_index=True)
    points = shapely.points(pts)
    axis = axis_z(pipes, which, points)
    ground = ground_at(pipes, which, points)
    top_lo, top_hi = _range(ground - axis - pipes.half_height[which], which, n)
    inv_lo, inv_hi = _range(ground - axis + pipes.half_height[which], which, n)
    length = shapely.length(inside)
    out = []
    for i in range(n):
        known = not np.isnan(top_lo[i])
        out.append({**pipes.record(i), "length_inside_m": round(float(length[i]), 2),
                    "top_depth_m": [round(float(top_lo[i]), 2), round(float(top_hi[i]), 2)] if known else None,
                    "invert_depth_m": [round(float(inv_lo[i]), 2), round(float(inv_hi[i]), 2)] if known else None,
                    "reached": bool(not known or top_lo[i] < depth)})
    return out


SURROUNDINGS_SQL = f"""
    select (select coalesce(json_agg(n order by n.id), '[]') from (
                select n.object_id as id, o.key, n.utility, n.node_type, n.ground_z, n.invert_z,
                       coalesce(n.depth, n.ground_z - n.invert_z) as depth, st_x(n.geom) as x, st_y(n.geom) as y,
                       true as reached
                from pipe_nodes n join city_objects o on o.id = n.object_id
                where st_intersects(n.geom, p.g) and {CURRENT}) n) as nodes,
           (select coalesce(json_agg(b order by b.distance_m, b.id), '[]') from (
                select o.id, o.key, o.name, round(st_distance(o.footprint, p.g)::numeric, 2)::float8 as distance_m
                from city_objects o
                where o.class = 'building' and st_dwithin(o.footprint, p.g, :d) and {CURRENT}) b) as buildings,
           (select array_agg(utility order by utility) from pipe_categories) as utilities
    from (select st_geomfromwkb(:pit, :srid) as g) p"""


def _surroundings(c: sa.Connection, pit_wkb: bytes, srid: int, distance: float) -> tuple[list, list, list]:
    """In one round trip: the pipe nodes inside the pit (all reached: chambers rise to the ground), the
    buildings within `distance` of it with their distance, and the utilities."""
    row = c.execute(sa.text(SURROUNDINGS_SQL), {"pit": pit_wkb, "srid": srid, "d": distance}).one()
    return row.nodes, row.buildings, list(row.utilities or [])


def verdicts(utilities: list[str], segments: list[dict], nodes: list[dict]) -> dict[str, dict]:
    """Per utility: conflict or clear, with the reached segments and nodes counted."""
    out = {}
    for u in utilities:
        seg = [s for s in segments if s["utility"] == u]
        nod = [n for n in nodes if n["utility"] == u]
        reached = sum(s["reached"] for s in seg) + len(nod)
        out[u] = {"verdict": "conflict" if reached else "clear", "segments": len(seg),
                  "segments_reached": sum(s["reached"] for s in seg), "nodes": len(nod)}
    return out


def _findings(segments: list[dict], nodes: list[dict], depth: float, at) -> list[Finding]:
    """A finding per reached object; the definition of "reached" is the run's (its rules), not repeated."""
    out = [Finding("excavation_conflict", f"{s['key']} ({s['utility']}): top "
                   f"{'unknown' if s['top_depth_m'] is None else format(s['top_depth_m'][0], '.2f') + ' m'} "
                   f"below ground, the pit reaches {depth:g} m", s["id"], None, at, "warning",
                   {"top_depth_m": s["top_depth_m"], "pit_depth_m": depth})
           for s in segments if s["reached"]]
    out += [Finding("excavation_conflict", f"{n['key']} ({n['utility']} {n['node_type']}) inside the pit",
                    n["id"], None, (n["x"], n["y"]), "warning", {"pit_depth_m": depth})
            for n in nodes]
    return out


def excavate(polygon: Any, depth: float, *, crs: str | int | None = None,
             building_distance: float = BUILDING_DISTANCE_M, engine: sa.Engine | None = None,
             requested_by: str | None = None) -> dict:
    """What a pit (GeoJSON polygon in `crs`, default the storage CRS; depth in metres below ground)
    reaches; stores the run. Returns pit, utilities (verdicts), segments, nodes, buildings and run_id."""
    engine = engine or get_engine()
    started = now()
    depth = pit_depth(depth)
    if not 0 <= building_distance <= 1000:
        raise InputError(f"building_distance: {building_distance:g} m is out of range", hint="0 to 1000 m")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:  # reads: no transaction
        srid = storage_srid(c)
        pit = pit_polygon(polygon, crs, srid)
        wkb = shapely.to_wkb(pit)
        pipes = load_pipes(c, srid=srid, where="st_intersects(s.centerline, st_geomfromwkb(:pit, :srid))",
                           params={"pit": wkb})
        nodes, buildings, utilities = _surroundings(c, wkb, srid, building_distance)
    segments = segments_in_pit(pipes, pit, depth)
    result = {"pit": {"area_m2": round(pit.area, 2), "depth_m": depth, "volume_m3": round(pit.area * depth, 1),
                      "crs": f"EPSG:{srid}", "input_crs": crs_name(parse_crs(crs if crs is not None else srid)),
                      "building_distance_m": building_distance},
              "utilities": verdicts(list(utilities), segments, nodes), "segments": segments, "nodes": nodes,
              "buildings": buildings}
    at = tuple(shapely.get_coordinates(pit.centroid)[0])
    summary = {k: result[k] for k in ("pit", "utilities")} | {"buildings": len(buildings)}
    run = record_run(ANALYSIS, {"polygon": mapping(pit), "depth": depth, "crs": f"EPSG:{srid}",
                                "building_distance": building_distance}, DEFINITION,
                     _findings(segments, nodes, depth, at), summary, started_at=started,
                     requested_by=requested_by, engine=engine, srid=srid)
    return {**result, "run_id": run.id}

"""Stored drainage results as map layers (GeoJSON, WGS 84 with stored heights) for the viewer and other clients:

- the waterlogging risk points (易涝积水点): the flooding manholes of a design-storm run (the latest unless
  one is named), with their flooding volume, duration and peak depth;
- the condition grades of the inspected pipes from a grading run (the latest unless one is named);
- the CCTV defects of each pipe's latest inspection as points along the pipe (at position_m from its start).
"""
from __future__ import annotations

import sqlalchemy as sa

from cim_core.db import get_engine
from cim_core.errors import NotFoundError


def _run(c: sa.Connection, analysis: str, run_id: int | None) -> int:
    rid = c.scalar(sa.text("select id from analysis_runs where analysis = :a and (cast(:r as bigint) is null "
                           "or id = :r) order by id desc limit 1"), {"a": analysis, "r": run_id})
    if rid is None:
        raise NotFoundError(f"no {analysis} run {run_id}" if run_id else f"no {analysis} run yet",
                            hint="run `cim analyse storm` / `cim drainage grade` first")
    return rid


def _collection(rows, run_id: int | None = None) -> dict:
    feats = [{"type": "Feature", "id": r["id"], "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"], r["z"]]},
              "properties": {k: v for k, v in r.items() if k not in ("lon", "lat", "z")}} for r in rows]
    out = {"type": "FeatureCollection", "features": feats, "numberReturned": len(feats)}
    return out if run_id is None else {**out, "run_id": run_id}


def waterlogging_points(run_id: int | None = None, *, engine: sa.Engine | None = None) -> dict:
    """The flooding manholes of a storm run as points at the ground (rim) height."""
    with (engine or get_engine()).connect() as c:
        rid = _run(c, "drainage-storm", run_id)
        rows = c.execute(sa.text("""
            select o.id, o.key, n.utility, (f.details ->> 'flooding_m3')::float as flooding_m3,
                   (f.details ->> 'flooding_h')::float as flooding_h, (f.details ->> 'peak_depth_m')::float as peak_depth_m,
                   st_x(p) as lon, st_y(p) as lat, coalesce(n.ground_z, st_z(n.geom)) as z
            from qa_findings f join city_objects o on o.id = f.object_id join pipe_nodes n on n.object_id = o.id,
                 st_transform(st_force2d(n.geom), 4326) p
            where f.run_id = :r and f.rule = 'flooding' order by flooding_m3 desc"""), {"r": rid}).mappings().all()
    return _collection(rows, rid)


def grades(run_id: int | None = None, *, engine: sa.Engine | None = None) -> dict:
    """{run_id, segments: {object id: {structural_grade, functional_grade, repair_priority, ...}}}."""
    with (engine or get_engine()).connect() as c:
        rid = _run(c, "drainage-inspection", run_id)
        rows = c.execute(sa.text("select object_id, details from qa_findings where run_id = :r "
                                 "and rule = 'segment_condition'"), {"r": rid}).all()
    return {"run_id": rid, "segments": {str(o): d for o, d in rows}}


def defects(*, engine: sa.Engine | None = None) -> dict:
    """The defects of each pipe's latest inspection, at their position along the pipe (its 3D axis: the
    height is the stored axis height there)."""
    with (engine or get_engine()).connect() as c:
        rows = c.execute(sa.text("""
            with latest as (select segment_id, max(inspected_on) d from pipe_inspections group by segment_id)
            select i.id, i.segment_id, o.key as segment, i.code, i.kind, i.grade, i.position_m,
                   i.inspected_on::text as inspected_on, i.repaired_on::text as repaired_on, i.remarks,
                   st_x(p) as lon, st_y(p) as lat, st_z(q) as z
            from pipe_inspections i join latest l on l.segment_id = i.segment_id and l.d = i.inspected_on
            join city_objects o on o.id = i.segment_id join pipe_segments s on s.object_id = i.segment_id,
                 st_lineinterpolatepoint(s.centerline,
                     least(1, greatest(0, i.position_m / nullif(st_3dlength(s.centerline), 0)))) q,
                 st_transform(st_force2d(q), 4326) p
            where i.kind <> 'none' order by i.segment_id, i.position_m""")).mappings().all()
    return _collection(rows)

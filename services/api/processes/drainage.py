"""Drainage processes over analyses.drainage: traces, catchments, outfalls and misconnections."""
from __future__ import annotations

import sqlalchemy as sa

from analyses.drainage import inspection, misconnections, storm, tracing
from analyses.drainage import network as dn
from cim_core.db import get_engine
from cim_core.network.columns import GRAVITY
from cim_core.network.graph import Network

from . import Context, Process, register

REF = {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "minLength": 1}]}
DATASET = {"title": "Dataset", "description": "only this pipe dataset (default: every current drainage network)",
           "schema": {"type": "string", "minLength": 1}, "minOccurs": 0}
SCENARIO = {"title": "Scenario", "description": "renewal scenario (plan) whose model to analyse (default as-is, "
            "现状); a named dataset then loses what the plan removes and gains the plan's own datasets",
            "schema": {"type": "string", "minLength": 1}, "minOccurs": 0}
RUN = {"title": "Run", "description": "the stored analysis run and its findings' counts",
       "schema": {"type": "object"}}


def _require_drainage(ctx: Context, inputs: dict, net: Network | None = None) -> None:
    """The caller must be allowed to read every drainage network the process reads (those of a loaded
    network, else the stored ones: of the dataset, or of any dataset in a scenario, whose plan may add
    others); one audited read of them all."""
    dataset = None if inputs.get("scenario") else inputs.get("dataset")
    if net is not None:
        utilities = sorted(set(net.node_utility.tolist()) & set(GRAVITY))
    else:
        with get_engine().connect() as c:
            utilities = c.scalars(sa.text(
                "select distinct s.utility from pipe_segments s join city_objects o on o.id = s.object_id join "
                "datasets d on d.id = o.dataset_id where s.utility = any(:g) and (cast(:n as text) is null or d.name = :n)"),
                {"g": list(GRAVITY), "n": dataset}).all()
    ctx.require(*(f"pipes_{u}" for u in utilities or GRAVITY))


def _findings(run_id: int, rule: str | None = None) -> list[dict]:
    """The objects of a run's findings (for clients that mark them)."""
    with get_engine().connect() as c:
        rows = c.execute(sa.text("select rule, object_id, related_id from qa_findings where run_id = :r "
                                 "and (cast(:rule as text) is null or rule = :rule) order by id"),
                         {"r": run_id, "rule": rule}).mappings().all()
    return [dict(r) for r in rows]


def _trace(inputs: dict, ctx: Context) -> dict:
    # the loaded network, reused until the model changes
    net = dn.load_cached(dataset=inputs.get("dataset"), scenario=inputs.get("scenario"))
    _require_drainage(ctx, inputs, net)
    point = inputs.get("point")
    t = tracing.trace(node=inputs.get("node"), segment=inputs.get("segment"),
                      point=tuple(point) if point else None, direction=inputs.get("direction", "both"), net=net)
    return t.as_dict()


def _catchment(inputs: dict, ctx: Context) -> dict:
    _require_drainage(ctx, inputs)
    return {"catchment": tracing.catchment(inputs["node"], dataset=inputs.get("dataset"),
                                           scenario=inputs.get("scenario"))}


def _outfalls(inputs: dict, ctx: Context) -> dict:
    _require_drainage(ctx, inputs)
    return {"run": tracing.outfall_check(inputs.get("dataset"), scenario=inputs.get("scenario"),
                                         requested_by=ctx.requested_by)}


def _misconnections(inputs: dict, ctx: Context) -> dict:
    _require_drainage(ctx, inputs)
    out = misconnections.check(inputs.get("dataset"), areas=inputs.get("areas"), scenario=inputs.get("scenario"),
                               requested_by=ctx.requested_by)
    return {"run": out, "rules": misconnections.rules(), "objects": _findings(out["run_id"])}


register(Process(
    id="drainage-trace",
    title="Drainage trace",
    description="Everything upstream and/or downstream of a manhole, a pipe or the nearest of them to a point, "
                "following the flow (direction from the inverts, else the stored from/to); the outfalls reached.",
    keywords=("drainage", "trace"),
    inputs={"node": {"title": "Manhole", "description": "object id or key", "schema": REF, "minOccurs": 0},
            "segment": {"title": "Pipe", "description": "object id or key", "schema": REF, "minOccurs": 0},
            "point": {"title": "Point", "description": "[x, y] in the storage CRS",
                      "schema": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
                      "minOccurs": 0},
            "direction": {"title": "Direction", "schema": {"enum": list(tracing.DIRECTIONS), "default": "both"},
                          "minOccurs": 0},
            "dataset": DATASET, "scenario": SCENARIO},
    outputs={"start": {"title": "Start", "schema": {"type": "object"}},
             "upstream": {"title": "Upstream nodes, segments (object ids) and length", "schema": {}},
             "downstream": {"title": "Downstream nodes, segments (object ids) and length", "schema": {}},
             "outfalls": {"title": "Outfalls reached", "schema": {"type": "array", "items": {"type": "integer"}}}},
    execute=_trace,
))

register(Process(
    id="drainage-catchment",
    title="Catchment of a manhole",
    description="The pipes and nodes that drain to a manhole, and the buildings and land-use parcels whose "
                "nearest manhole of its network is among them.",
    keywords=("drainage", "catchment"),
    inputs={"node": {"title": "Manhole", "description": "object id or key", "schema": REF}, "dataset": DATASET,
            "scenario": SCENARIO},
    outputs={"catchment": {"title": "Catchment", "schema": {"type": "object"}}},
    execute=_catchment,
))

register(Process(
    id="drainage-outfalls",
    title="Outfalls and pieces without one",
    description="The outfalls, the connected pieces of drainage network that reach none (no_outfall) and the "
                "nodes where flow stops short of one (flow_sink); stored as a run with findings.",
    keywords=("drainage", "outfall"),
    inputs={"dataset": DATASET, "scenario": SCENARIO},
    outputs={"run": RUN},
    execute=_outfalls,
))

register(Process(
    id="drainage-misconnections",
    title="Drainage misconnections (错接混接)",
    description="Rain pipes into sewage and the reverse, sewage reaching rain outfalls, combined pipes inside "
                "separated areas, pipes joining against the flow and step-ups; stored as a run with findings "
                "that name both objects.",
    keywords=("drainage", "misconnection", "GB 50014"),
    inputs={"dataset": DATASET, "scenario": SCENARIO,
            "areas": {"title": "Separated areas", "description": "extra areas where no combined pipe may remain: "
                      "[{name, geometry: GeoJSON polygon in the storage CRS}]; stored objects whose attribute "
                      "drainage_system is 'separated' count as well",
                      "schema": {"type": "array", "items": {"type": "object", "required": ["geometry"]}},
                      "minOccurs": 0}},
    outputs={"run": RUN, "rules": {"title": "The rules, their parameters and sources", "schema": {"type": "object"}},
             "objects": {"title": "The findings' objects: [{rule, object_id, related_id}]",
                         "schema": {"type": "array"}}},
    execute=_misconnections,
))


def _storm(inputs: dict, ctx: Context) -> dict:
    _require_drainage(ctx, inputs)
    out = storm.run(inputs["dataset"], return_period=inputs["return_period"], duration_min=inputs["duration_min"],
                    scenario=inputs.get("scenario"), requested_by=ctx.requested_by)
    return {"run": out, "flooded": [f["object_id"] for f in _findings(out["run_id"], "flooding")]}


register(Process(
    id="drainage-storm",
    title="Design storm run (SWMM)",
    description="A Chicago hyetograph from the storm intensity formula over a dataset's drainage network with "
                "subcatchments from the land-use parcels (each piece to its nearest inlet), run with SWMM; "
                "stores peak depth, surcharge and flooding per manhole, peak flow and capacity ratio per "
                "conduit, and as findings the waterlogging risk points: manholes whose flooding would stand "
                "deeper than the road-depth rule (0.15 m over the ponding area, storm.toml).",
    keywords=("drainage", "storm", "SWMM", "waterlogging"),
    inputs={"dataset": {**DATASET, "minOccurs": 1}, "scenario": SCENARIO,
            "return_period": {"title": "Return period (years)", "schema": {"type": "number", "exclusiveMinimum": 0}},
            "duration_min": {"title": "Duration (minutes)",
                             "schema": {"type": "number", "exclusiveMinimum": 0, "maximum": 2880}}},
    outputs={"run": RUN, "flooded": {"title": "The waterlogging risk points (manhole object ids)",
                                     "schema": {"type": "array", "items": {"type": "integer"}}}},
    execute=_storm,
))


def _grade(inputs: dict, ctx: Context) -> dict:
    _require_drainage(ctx, {})
    return {"run": inspection.grade(inputs.get("dataset"), target_km=inputs.get("target_km"),
                                    requested_by=ctx.requested_by)}


register(Process(
    id="drainage-inspection-grade",
    title="CCTV inspection grading (CJJ 181-2012)",
    description="Structural and functional condition grades, repair and maintenance priority of every inspected "
                "pipe, and the campaign's progress (km inspected of the target, km graded III-IV, repairs done); "
                "stored as a run whose segment_condition findings carry each pipe's grades.",
    keywords=("drainage", "CCTV", "CJJ 181"),
    inputs={"dataset": {"title": "Inspection dataset", "description": "default: every inspection dataset",
                        "schema": {"type": "string", "minLength": 1}, "minOccurs": 0},
            "target_km": {"title": "Campaign target (km)", "schema": {"type": "number", "exclusiveMinimum": 0},
                          "minOccurs": 0}},
    outputs={"run": RUN},
    execute=_grade,
))

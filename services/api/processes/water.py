"""Water supply processes (issue 14): burst isolation and pipe criticality over analyses.water.

Both read the water network, a restricted layer: the caller needs `pipes_water` and `pipe_nodes`.
"""
from __future__ import annotations

from analyses.water import criticality, hydraulics, isolation, renewal
from cim_core.db import get_engine

from . import Context, Process, register

LAYERS = ("pipes_water", "pipe_nodes")
_PIPE = {"title": "Pipe", "description": "the burst pipe: object id, key (pipe:10) or the source's name",
         "schema": {"oneOf": [{"type": "integer"}, {"type": "string", "minLength": 1}]}, "minOccurs": 0}
_POINT = {"title": "Point", "description": "x, y in the storage CRS: the pipe nearest to it (instead of `pipe`)",
          "schema": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}, "minOccurs": 0}
_DATASET = {"title": "Dataset", "description": "only this dataset's network (default: the whole water network)",
            "schema": {"type": "string", "minLength": 1}, "minOccurs": 0}
_VALVES = {"title": "Valve layer", "description": "valves as [pipe, node] pairs (WNTR's valve layer); default: "
           "the network's valve nodes", "minOccurs": 0,
           "schema": {"type": "array", "items": {"type": "array", "items": {"type": "string"}, "minItems": 2,
                                                 "maxItems": 2}}}


def _isolate(inputs: dict, ctx: Context) -> dict:
    for layer in LAYERS:
        ctx.require(layer)
    point = inputs.get("point")
    out = isolation.isolate(inputs.get("pipe"), point=tuple(point) if point else None,
                            dataset=inputs.get("dataset"), valves=inputs.get("valves"),
                            max_distance=inputs.get("max_distance", isolation.MAX_POINT_DISTANCE_M),
                            pressure=inputs.get("pressure", False), requested_by=ctx.requested_by,
                            engine=get_engine())
    return {"isolation": out}


def _criticality(inputs: dict, ctx: Context) -> dict:
    for layer in LAYERS:
        ctx.require(layer)
    return {"criticality": criticality.criticality(dataset=inputs.get("dataset"), valves=inputs.get("valves"),
                                                   requested_by=ctx.requested_by, engine=get_engine())}


register(Process(
    id="burst-isolation",
    title="Burst isolation (valves to close)",
    description="For a burst water pipe (by id or the pipe nearest a point): the valves to close (the valve "
                "segment around it), the pipes and nodes isolated, the parts cut off unintentionally because no "
                "valve lies between them and a source, and the inoperable valves met (status seized, missing...). "
                "The run is recorded with its findings.",
    keywords=("water", "isolation", "valves", "mincut"),
    inputs={"pipe": _PIPE, "point": _POINT, "dataset": _DATASET, "valves": _VALVES,
            "max_distance": {"title": "Pick distance (m)", "description": "how far from `point` a pipe may lie",
                             "schema": {"type": "number", "exclusiveMinimum": 0}, "minOccurs": 0},
            "pressure": {"title": "Pressure drop", "description": "also simulate a day with the area shut "
                         "(EPANET, pressure-dependent demand) and report how far pressures fall elsewhere",
                         "schema": {"type": "boolean"}, "minOccurs": 0}},
    outputs={"isolation": {"title": "Valves to close, isolated and cut-off parts", "schema": {"type": "object"}}},
    execute=_isolate,
))

register(Process(
    id="pipe-criticality",
    title="Pipe criticality (isolation segment size)",
    description="For every water pipe: what a burst on it takes out of service: the pipes, length and demand "
                "of its valve segment and of the parts cut off with it. Recorded as a run; returns the values "
                "per pipe for a map.",
    keywords=("water", "criticality", "valves"),
    inputs={"dataset": _DATASET, "valves": _VALVES},
    outputs={"criticality": {"title": "Criticality per pipe", "schema": {"type": "object"}}},
    execute=_criticality,
))


def _hydraulics(inputs: dict, ctx: Context) -> dict:
    for layer in LAYERS:
        ctx.require(layer)
    bbox = inputs.get("bbox")
    out = hydraulics.simulate(dataset=inputs.get("dataset"), bbox=tuple(bbox) if bbox else None,
                              duration_h=inputs.get("duration_h"), min_pressure=inputs.get("min_pressure"),
                              requested_by=ctx.requested_by, engine=get_engine())
    return {"run": out}


register(Process(
    id="hydraulics",
    title="Hydraulic simulation (EPANET via WNTR)",
    description="Simulates the stored water network (24 h extended period by default) from its exported "
                "EPANET model; pressures, heads and demands per node and flows and velocities per link and time "
                "step are stored as the run's results (/api/water/runs/{run}/results/{object}); junctions below "
                "the minimum service pressure become findings.",
    keywords=("water", "hydraulics", "EPANET", "WNTR"),
    inputs={"dataset": _DATASET,
            "bbox": {"title": "Box", "description": "xmin, ymin, xmax, ymax in the storage CRS", "minOccurs": 0,
                     "schema": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4}},
            "duration_h": {"title": "Duration (h)", "schema": {"type": "number", "exclusiveMinimum": 0,
                                                               "maximum": 8760}, "minOccurs": 0},
            "min_pressure": {"title": "Minimum service pressure (m)", "description": "default: 28 m "
                             "(GB 50282-2016; see docs/water.md)", "schema": {"type": "number"}, "minOccurs": 0}},
    outputs={"run": {"title": "The run: id, reporting times, summary", "schema": {"type": "object"}}},
    execute=_hydraulics,
))


def _renewal(inputs: dict, ctx: Context) -> dict:
    for layer in LAYERS:
        ctx.require(layer)
    return {"programme": renewal.programme(
        dataset=inputs.get("dataset"), target_km=inputs.get("target_km"), target_date=inputs.get("target_date"),
        start_year=inputs.get("start_year"), weights=inputs.get("weights"), requested_by=ctx.requested_by,
        engine=get_engine())}


register(Process(
    id="renewal-programme",
    title="Old water mains renewal programme",
    description="Ranks the water mains for renewal (age against the design life of their material, materials "
                "the national plan names, criticality, low pressure, size; weights configurable) and spreads the "
                "target (default 144.34 km by 2027-12-31) over the years with km and cost per year.",
    keywords=("water", "renewal", "asset management"),
    inputs={"dataset": _DATASET,
            "target_km": {"title": "Target (km)", "schema": {"type": "number", "exclusiveMinimum": 0},
                          "minOccurs": 0},
            "target_date": {"title": "Target date", "schema": {"type": "string", "format": "date"}, "minOccurs": 0},
            "start_year": {"title": "First year", "schema": {"type": "integer", "minimum": 1900}, "minOccurs": 0},
            "weights": {"title": "Weights", "description": "factor -> weight: age, material, criticality, repairs, "
                        "pressure, diameter", "minOccurs": 0,
                        "schema": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0},
                                   "propertyNames": {"enum": ["age", "material", "criticality", "repairs",
                                                              "pressure", "diameter"]}}}},
    outputs={"programme": {"title": "Years and ranked mains", "schema": {"type": "object"}}},
    execute=_renewal,
))

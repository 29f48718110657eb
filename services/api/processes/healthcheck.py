"""The `healthcheck-run` process: the city health check of analyses.healthcheck for one year."""
from __future__ import annotations

from analyses.healthcheck import yearly
from cim_core.db import get_engine

from . import Context, Process, register


def _execute(inputs: dict, ctx: Context) -> dict:
    hc = yearly.run(inputs["year"], only=inputs.get("indicators"), engine=get_engine(),
                    requested_by=ctx.requested_by)
    district = {ind.id: {"value": v.value, "straight_value": v.straight, "unit": ind.unit, "target": ind.target,
                         "passes": ind.passes(v.value)} for ind, v in hc.values if v.unit.level == "district"}
    return {"run_id": hc.run_id, "district": district, "problems": hc.problems}


register(Process(
    id="healthcheck-run",
    title="City health check (城市体检)",
    description="Computes the national base set's indicators (service-radius coverage on foot and in a straight "
                "line, road density, per-capita areas, monitoring rate, waterlogging points) for the district "
                "and its streets and communities from the model as it is now; stores the values per unit with "
                "their provenance and the problem list under the year given. Indicators whose inputs are absent "
                "are null (no data).",
    keywords=("城市体检", "indicators", "coverage"),
    inputs={"year": {"title": "Year", "description": "the year the values stand for",
                     "schema": {"type": "integer", "minimum": 1900, "maximum": 2200}},
            "indicators": {"title": "Indicators", "description": "compute only these indicator ids",
                           "schema": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                           "minOccurs": 0}},
    outputs={"run_id": {"title": "Run", "schema": {"type": "integer"}},
             "district": {"title": "District values by indicator", "schema": {"type": "object"}},
             "problems": {"title": "Problem-list entries", "schema": {"type": "integer"}}},
    execute=_execute,
))

"""Renewal scenarios over HTTP: the list (as-is first), one scenario, and its comparison with as-is.

Every reader of the model takes `?scenario=NAME` (features, search, vector tiles, /tiles); an unknown
name is a 404 problem."""
from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Path, Query, Response
from starlette.concurrency import run_in_threadpool

from analyses import scenarios as comparison
from cim_core import scenarios
from cim_core.errors import NotFoundError
from services import auth

router = APIRouter(prefix="/scenarios", tags=["Renewal scenarios"])
Caller = Annotated[auth.Caller, Depends(auth.caller)]
Name = Annotated[str, Path(max_length=64, description="scenario name, e.g. renewal")]


def _json(doc) -> Response:
    return Response(orjson.dumps(doc, default=str), media_type="application/json")


@router.get("", summary="The as-is model and the renewal plans, with their datasets and removals")
def scenario_list(who: Caller) -> Response:
    return _json({"scenarios": scenarios.list_scenarios(auth.current_engine())})


@router.get("/{name}", summary="One scenario")
def scenario(who: Caller, name: Name) -> Response:
    for s in scenarios.list_scenarios(auth.current_engine()):
        if s["name"] == name or (name in scenarios.AS_IS and s["name"] == "as-is"):
            return _json(s)
    raise NotFoundError(f"no scenario {name!r}", hint="/api/scenarios lists them")


Healthcheck = Annotated[bool, Query(description="also recompute the district's health-check indicators for "
                                                "both models")]


@router.get("/{name}/comparison", summary="The plan against as-is: buildings demolished, new and changed, "
            "floor area, households, green area, health-check indicators (computed, not recorded)")
async def scenario_comparison(who: Caller, name: Name, healthcheck: Healthcheck = True) -> Response:
    cmp = await run_in_threadpool(comparison.compare, name, healthcheck=healthcheck, engine=auth.current_engine())
    return _json(cmp.as_json())


@router.post("/{name}/comparison", status_code=201, summary="Compare the plan with as-is and record the "
             "comparison as an analysis run (its findings at /api/runs/{run_id}/findings)")
async def record_comparison(who: Caller, name: Name, healthcheck: Healthcheck = True) -> Response:
    def run() -> dict:
        cmp = comparison.compare(name, healthcheck=healthcheck, engine=auth.current_engine())
        by = who.role if who.key_id is None else f"{who.role} (key {who.key_id})"  # as the processes record it
        comparison.record(cmp, requested_by=by, engine=auth.write_engine())
        return cmp.as_json()

    return Response(orjson.dumps(await run_in_threadpool(run), default=str), status_code=201,
                    media_type="application/json")

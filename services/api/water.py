"""Results of water supply analyses (issue 14): the stored series of a hydraulic simulation run, per object
and as a layer (one value per object at one time step), for the viewer and other clients."""
from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from analyses.water import renewals
from analyses.water.hydraulics import results_of
from cim_core.errors import InputError, NotFoundError
from cim_core.runs import get_run
from services import auth

router = APIRouter(tags=["Water supply"])
Caller = Annotated[auth.Caller, Depends(auth.caller)]
LAYERS = ("pipes_water", "pipe_nodes")


def _run(request: Request, who: auth.Caller, run_id: int) -> dict:
    for layer in LAYERS:
        auth.require_layer(request, who, layer)
    run = get_run(run_id, auth.current_engine())
    if run["analysis"] != "hydraulics":
        raise NotFoundError(f"run {run_id} is not a hydraulic simulation")
    return run


@router.get("/water/runs/{run_id}/results/{object_id}", summary="Time series of one node or link in a run")
def object_results(request: Request, who: Caller, run_id: int, object_id: int):
    run = _run(request, who, run_id)
    series = results_of(run_id, object_id, auth.current_engine())
    if not series:
        raise NotFoundError(f"no results for object {object_id} in run {run_id}")
    return {"run_id": run_id, "object_id": object_id, "times_s": run["summary"]["times_s"], "series": series}


@router.get("/water/runs/{run_id}/layer", summary="One quantity of every object at one time step")
def layer(request: Request, who: Caller, run_id: int,
          quantity: str = Query("pressure", pattern="^(pressure|head|demand|flow|velocity)$"),
          time_s: int = Query(0, ge=0)):
    run = _run(request, who, run_id)
    times = run["summary"]["times_s"]
    if time_s not in times:
        raise InputError(f"time_s {time_s}: not a reporting time of run {run_id} (every "
                         f"{times[1] - times[0] if len(times) > 1 else 0} s from {times[0]} to {times[-1]})")
    with auth.current_engine().connect() as c:
        rows = c.execute(sa.text("select object_id, series[:i] from hydraulic_results where run_id = :r and "
                                 "quantity = :q order by object_id"),
                         {"r": run_id, "q": quantity, "i": times.index(time_s) + 1}).all()
    return {"run_id": run_id, "quantity": quantity, "time_s": time_s,
            "values": {str(o): v for o, v in rows}}


class Renewal(BaseModel):
    segment: str | int = Field(..., examples=["pipe:10"], description="object id or key of the current segment")
    material: str = Field(..., min_length=1, examples=["PE"])
    year: int = Field(..., examples=[2026], description="install year of the new main")
    date: str | None = Field(None, examples=["2026-05-20"], description="date of the renewal (default today)")
    diameter_mm: float | None = Field(None, gt=0, description="diameter of the new main (default unchanged)")


class Renewals(BaseModel):
    renewals: list[Renewal] = Field(..., min_length=1, max_length=10000)


RENEWAL_ACTION = "water_renewals"  # the action granted to the `water` role (migration 0009)


@router.post("/water/renewals", summary="Record renewals as new versions of the segments", status_code=201)
def record_renewals(request: Request, who: Caller, body: Renewals) -> dict:
    """Each renewal closes the segment's current version on its date and writes a new version with the new
    material and year; all or none (a bad row is a 400 naming it). Needs a role granted `water_renewals`."""
    auth.require_layers(request, who, [*LAYERS, RENEWAL_ACTION])
    rows = [{**r.model_dump(), "segment": str(r.segment)} for r in body.renewals]
    return renewals.record(rows, source="renewals", requested_by=f"key {who.key_id} ({who.role})",
                           engine=auth.write_engine())


@router.get("/water/renewals/status", summary="Km renewed against the target, by year and street")
def renewal_status(request: Request, who: Caller, target_km: float | None = Query(None, gt=0),
                   target_date: str | None = Query(None, pattern=r"^\d{4}-\d{2}-\d{2}$"),
                   format: str = Query("json", pattern="^(json|csv|xlsx)$")):
    auth.require_layers(request, who, list(LAYERS))
    r = renewals.status(target_km=target_km, target_date=target_date, engine=auth.current_engine())
    if format == "json":
        return r
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        data = renewals.write_status(r, Path(tmp) / f"renewal-status.{format}").read_bytes()
    media = "text/csv; charset=utf-8" if format == "csv" else \
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(data, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="renewal-status.{format}"'})

"""Stored drainage results as layers (issue 15): the waterlogging risk points of a design-storm run, the
condition grades of the inspected pipes and their CCTV defects along the pipes (analyses.drainage.layers).
Each reads the drainage networks: a caller needs a role that may read the rain, sewage and combined pipes."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from analyses.drainage import layers
from services import auth

router = APIRouter(tags=["Drainage"])
Caller = Annotated[auth.Caller, Depends(auth.caller)]
LAYERS = ["pipes_rain", "pipes_sewage", "pipes_combined", "pipe_nodes"]
RUN = Query(None, ge=1, description="an analysis run (default: the latest)")


@router.get("/drainage/waterlogging", summary="Waterlogging risk points: the flooding manholes of a storm run")
def waterlogging(request: Request, who: Caller, run: int | None = RUN):
    auth.require_layers(request, who, LAYERS)
    return layers.waterlogging_points(run, engine=auth.current_engine())


@router.get("/drainage/grades", summary="Condition grades of the inspected pipes (CJJ 181-2012) of a grading run")
def grades(request: Request, who: Caller, run: int | None = RUN):
    auth.require_layers(request, who, LAYERS)
    return layers.grades(run, engine=auth.current_engine())


@router.get("/drainage/defects", summary="CCTV defects of each pipe's latest inspection, along the pipe")
def defects(request: Request, who: Caller):
    auth.require_layers(request, who, LAYERS)
    return layers.defects(engine=auth.current_engine())

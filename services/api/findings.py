"""The findings of an analysis run (clearance checks, drainage checks...), filtered, as GeoJSON features for
the viewer's findings list and other clients. A finding names pipes: the caller must be allowed to read the
pipe layers of the findings returned (and the pipe nodes)."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from cim_core.crs import transform
from cim_core.db import storage_srid
from cim_core.errors import InputError
from cim_core.findings import run_findings
from services import auth

router = APIRouter(tags=["Analysis runs"])
Caller = Annotated[auth.Caller, Depends(auth.caller)]


def _bbox(text: str) -> tuple[float, float, float, float]:
    """'minlon,minlat,maxlon,maxlat' (CRS84) -> the enclosing box in the storage CRS."""
    try:
        b = [float(v) for v in text.split(",")]
    except ValueError:
        b = []
    if len(b) != 4 or not (-180 <= b[0] < b[2] <= 180 and -90 <= b[1] < b[3] <= 90):
        raise InputError(f"bbox {text!r}: expected minlon,minlat,maxlon,maxlat (CRS84) with min < max")
    x, y = transform(4326, storage_srid(auth.current_engine()), [b[0], b[2], b[0], b[2]], [b[1], b[1], b[3], b[3]])
    return float(min(x)), float(min(y)), float(max(x)), float(max(y))


def _feature(f: dict) -> dict:
    geometry = {"type": "Point", "coordinates": [f["lon"], f["lat"]]} if f["lon"] is not None else None
    props = {k: v for k, v in f.items() if k not in ("lon", "lat", "id")}
    return {"type": "Feature", "id": f["id"], "geometry": geometry, "properties": props}


@router.get("/runs/{run_id}/findings", summary="The findings of an analysis run, filtered (GeoJSON)")
def findings(request: Request, who: Caller, run_id: int,
             rule: str | None = Query(None, description="only this rule, e.g. clash_3d"),
             severity: str | None = Query(None, pattern="^(error|warning|info)$"),
             utility: str | None = Query(None, description="only findings naming a pipe of this utility"),
             bbox: str | None = Query(None, description="minlon,minlat,maxlon,maxlat (CRS84)"),
             limit: int = Query(1000, ge=1, le=10000), offset: int = Query(0, ge=0)):
    matched, found = run_findings(run_id, rule=rule, severity=severity, utility=utility,
                                  bbox=_bbox(bbox) if bbox else None, limit=limit, offset=offset,
                                  engine=auth.current_engine())
    utilities = sorted({u for f in found for u in f["utilities"]})
    if utilities:
        auth.require_layers(request, who, [f"pipes_{u}" for u in utilities] + ["pipe_nodes"])
    return {"type": "FeatureCollection", "run_id": run_id, "numberMatched": matched,
            "numberReturned": len(found), "features": [_feature(f) for f in found]}

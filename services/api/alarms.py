"""Alarms over HTTP: list and read them, acknowledge and close them. A key of a role granted
`alarms_ack` (`operator`, `admin`) is needed: 401 without a key, 403 with another role."""
from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from analyses import alarms
from cim_core.db import get_engine
from cim_core.errors import InputError
from services import auth

router = APIRouter(tags=["Monitoring"])
Caller = Annotated[auth.Caller, Depends(auth.caller)]
ACK_LAYER = "alarms_ack"
STATUSES = ("open", "raised", "escalated", "acknowledged", "closed", "all")


class Note(BaseModel):
    note: str | None = Field(None, max_length=2000, examples=["crew sent; manhole cover lifted for venting"])


def _who(request: Request, who: auth.Caller) -> str:
    auth.require_layer(request, who, ACK_LAYER)
    with auth.current_engine().connect() as c:
        name = c.scalar(sa.text("select name from api_keys where id = :i"), {"i": who.key_id})
    return name or f"key {who.key_id} ({who.role})"


def _list(status: str, sensor: str | None, limit: int) -> list[dict[str, Any]]:
    where = {"open": "a.closed_at is null", "all": "true"}.get(status, "a.status = :st")
    with auth.current_engine().connect() as c:
        return [dict(r._mapping) for r in c.execute(sa.text(
            "select a.*, s.code sensor, s.kind, s.asset_id from alarms a join sensors s on s.object_id = a.sensor_id "
            f"where {where} and (cast(:code as text) is null or s.code = :code) order by a.id desc limit :n"),
            {"st": status, "code": sensor, "n": limit})]


@router.get("/alarms", summary="Alarms, newest first")
def list_alarms(request: Request, who: Caller,
                status: str = Query("open", description="open (not closed), raised, escalated, acknowledged, "
                                    "closed or all"),
                sensor: str | None = Query(None, description="a sensor's code"),
                limit: int = Query(100, ge=1, le=1000)) -> dict:
    auth.require_layer(request, who, ACK_LAYER)
    if status not in STATUSES:
        raise InputError(f"status must be one of {', '.join(STATUSES)}")
    return {"alarms": _list(status, sensor, limit)}


@router.get("/alarms/{alarm_id}", summary="One alarm with its context and events")
def get_alarm(alarm_id: int, request: Request, who: Caller) -> dict:
    auth.require_layer(request, who, ACK_LAYER)
    found = alarms.alarm(auth.current_engine(), alarm_id)
    with auth.current_engine().connect() as c:
        found["events"] = [dict(r._mapping) for r in c.execute(sa.text(
            "select at, event, details from alarm_events where alarm_id = :i order by id"), {"i": alarm_id})]
    return found


@router.post("/alarms/{alarm_id}/acknowledge", summary="Acknowledge an alarm (operator)")
def acknowledge(alarm_id: int, request: Request, who: Caller, body: Note | None = None) -> dict:
    by = _who(request, who)
    return alarms.acknowledge(get_engine(), alarm_id, by, body.note if body else None)


@router.post("/alarms/{alarm_id}/close", summary="Close an alarm by hand (operator)")
def close(alarm_id: int, request: Request, who: Caller, body: Note | None = None) -> dict:
    by = _who(request, who)
    return alarms.close(get_engine(), alarm_id, by, body.note if body else None)

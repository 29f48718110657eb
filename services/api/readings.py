"""POST /api/readings: a batch of sensor readings over HTTP, for a key of a role granted `readings_write`
(`sensor-writer`). The same checks and the same write path as the MQTT ingest: a repeated post stores
nothing twice, and every rejected reading is a dead letter and is listed in the answer."""
from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from analyses import alarms
from cim_core.db import get_engine
from services import auth
from services.monitor.messages import Sorted, sort_batch
from services.monitor.writer import Writer

router = APIRouter(tags=["Monitoring"])
Caller = Annotated[auth.Caller, Depends(auth.caller)]
WRITE_LAYER = "readings_write"
_writers: dict[str, Writer] = {}


class Rejected(BaseModel):
    reason: str = Field(examples=["unknown-sensor"])
    detail: str


class StoredReadings(BaseModel):
    received: int = Field(description="readings in the request")
    stored: int = Field(description="readings new to the database (a repeated reading is stored once)")
    rejected: list[Rejected] = Field(description="readings refused, each also kept as a dead letter")


def writer() -> Writer:
    engine = get_engine()
    key = str(engine.url)
    if key not in _writers:
        _writers[key] = Writer(engine, alarms.evaluate)
    return _writers[key]


def _ingest(body: bytes) -> StoredReadings:
    w = writer()
    batch: Sorted = sort_batch([("cim/gateway/http", body)], w.sensors, source="http")
    stored = w.write(batch)
    return StoredReadings(received=len(batch.readings) + len(batch.dead), stored=stored,
                          rejected=[Rejected(reason=d.reason, detail=d.detail) for d in batch.dead])


@router.post("/readings", response_model=StoredReadings, summary="Post sensor readings")
async def post_readings(request: Request, who: Caller) -> StoredReadings:
    """Body: `{"readings": [{"sensor": "GAS-001", "time": "2026-12-01T08:00:00+08:00", "value": 3.2,
    "quality": 0}, ...]}`; `time` may also be seconds since the epoch."""
    auth.require_layer(request, who, WRITE_LAYER, throttle=auth.TILE_AUDIT_SECONDS)
    body = await request.body()
    return await anyio.to_thread.run_sync(_ingest, body)


"""Live monitoring: sensors with their state, a sensor's series from the rollups, and a server-sent
events stream of readings, state changes and alarm events.

A sensor on a restricted layer (a pipe node or segment) is shown only to roles that may read that
layer; alarm events only to roles granted `alarms_ack` as well.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

import psycopg
import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from analyses.alarms import CHANNEL
from cim_core.errors import NotFoundError
from services import auth

router = APIRouter(prefix="/monitor", tags=["Monitoring"])
Caller = Annotated[auth.Caller, Depends(auth.caller)]
KEEPALIVE_S = 15.0

_SENSORS = sa.text("""
    select s.object_id id, s.code, s.kind, s.unit, s.period_s, s.asset_id, o.name,
           st_x(s.geom) x, st_y(s.geom) y, st_z(s.geom) z, st_x(st_transform(s.geom, 4326)) lon,
           st_y(st_transform(s.geom, 4326)) lat,
           coalesce(st.state, 'unknown') state, st.last_time, st.last_value,
           case when n.object_id is not null then 'pipe_nodes'
                when g.object_id is not null then 'pipes_' || g.utility end layer,
           a.key asset_key, a.class asset_class, a.zmin asset_zmin, a.zmax asset_zmax,
           cast(st_asgeojson(st_transform(st_force2d(coalesce(n.geom, g.centerline, a.footprint)), 4326), 7) as json)
             asset_geometry
    from sensors s join city_objects o on o.id = s.object_id
    left join sensor_state st on st.sensor_id = s.object_id
    left join pipe_nodes n on n.object_id = s.asset_id left join pipe_segments g on g.object_id = s.asset_id
    left join city_objects a on a.id = s.asset_id
    order by s.code""")


def visible(who: auth.Caller, layer: str | None) -> bool:
    return layer is None or auth.may_read(who, layer)


@router.get("/sensors", summary="Sensors with their state (normal, warning, alarm, critical, offline), and "
            "whether the caller may read and acknowledge alarms")
def sensors(who: Caller) -> dict:
    with auth.current_engine().connect() as c:
        rows = [dict(r._mapping) for r in c.execute(_SENSORS)]
    return {"sensors": [r for r in rows if visible(who, r["layer"])],
            "alarms_readable": auth.may_read(who, "alarms_ack")}


@router.get("/sensors/{code}/series", summary="A sensor's readings from the rollups")
def series(code: str, who: Caller, hours: float = Query(24, gt=0, le=24 * 90)) -> dict:
    """One-minute buckets up to 24 hours, one-hour buckets beyond: time, n, min, max, mean."""
    table = "readings_1m" if hours <= 24 else "readings_1h"
    with auth.current_engine().connect() as c:
        s = next((r for r in (dict(x._mapping) for x in c.execute(_SENSORS)) if r["code"] == code), None)
        if s is None or not visible(who, s["layer"]):
            raise NotFoundError(f"no sensor {code!r}")
        rows = c.execute(sa.text(
            f"select bucket, n, vmin, vmax, vsum / n mean from {table} where sensor_id = :s and "
            "bucket >= now() - make_interval(secs => :h * 3600) order by bucket"), {"s": s["id"], "h": hours})
        points = [{"t": r.bucket.isoformat(), "n": r.n, "min": r.vmin, "max": r.vmax, "mean": r.mean} for r in rows]
    return {"sensor": code, "unit": s["unit"], "kind": s["kind"], "bucket": table[-2:], "points": points}


def _hidden(who: auth.Caller) -> frozenset[str]:
    """The restricted layers the caller may not read (the same rule as `visible`, once per round of
    notifications instead of once per reading)."""
    return frozenset() if "*" in who.grants else auth.restricted_layers(auth.current_engine()) - who.grants


def _event(payload: str, hidden: frozenset[str], may_ack: bool) -> bytes | None:
    """The server-sent event of a notification, or None when the caller may see nothing of it. A message
    the caller may see whole is relayed as it came (its JSON text is what `json.dumps` of it would give):
    at 10,000-50,000 readings/s the stream decodes each `readings` message once and encodes again only
    those it had to cut."""
    msg = json.loads(payload)
    kind = msg.get("type")
    if kind == "readings":
        items = [i for i in msg["items"] if i[1] not in hidden]
        if not items:
            return None
        if len(items) < len(msg["items"]):
            payload = json.dumps({**msg, "items": items})
    elif (kind == "alarm" and not may_ack) or msg.get("layer") in hidden:
        return None
    return f"event: {kind}\ndata: {payload}\n\n".encode()


async def _events(request: Request, who: auth.Caller) -> AsyncIterator[bytes]:
    url = auth.current_engine().url.render_as_string(hide_password=False).replace("+psycopg", "")
    may_ack = auth.may_read(who, "alarms_ack")
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(f"listen {CHANNEL}")
        yield b": connected\n\n"
        while not await request.is_disconnected():
            got, hidden = False, _hidden(who)
            async for n in conn.notifies(timeout=KEEPALIVE_S, stop_after=100):
                got = True
                event = _event(n.payload, hidden, may_ack)
                if event is not None:
                    yield event
            if not got:
                yield b": keepalive\n\n"
            await asyncio.sleep(0)


@router.get("/stream", summary="Server-sent events: readings, state changes, alarm events")
async def stream(request: Request, who: Caller) -> StreamingResponse:
    """Events `readings` (latest value per sensor of each stored batch), `state` (a sensor's state
    changed) and `alarm` (raised, escalated, lowered, acknowledged, closed); `?key=` works as a header."""
    return StreamingResponse(_events(request, who), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

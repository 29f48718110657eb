"""Alarms over newly stored readings, in the transaction that stores them: the level, rate and offline
rules of rules.py; an alarm is raised, escalated (or lowered), acknowledged by an operator and closed
when the readings return to normal. Every change is an alarm event, announced on the PostgreSQL channel
`cim_monitor` (delivered at commit) for the live stream."""
from __future__ import annotations

import json
import time
from collections import defaultdict
from datetime import datetime

import orjson
import sqlalchemy as sa

from cim_core.errors import InputError, NotFoundError
from cim_core.readings import INCOMING

from .context import alarm_context
from . import replay
from .rules import KindRules, LevelState, Rules, load_rules, step

CHANNEL = "cim_monitor"
NOTIFY_MAX = 7000  # bytes of a NOTIFY payload (PostgreSQL's limit is 8000)

_SENSORS = sa.text("""
    select s.object_id id, s.code, s.kind, s.period_s, s.asset_id,
           case when n.object_id is not null then 'pipe_nodes'
                when g.object_id is not null then 'pipes_' || g.utility end layer
    from sensors s left join pipe_nodes n on n.object_id = s.asset_id
    left join pipe_segments g on g.object_id = s.asset_id where s.object_id = any(:ids)""")
# The batch is in the temporary table INCOMING of its transaction (cim_core.readings.store_readings):
# the statements below take the sensors from there, where arrays of a thousand ids, times and values
# cost more to send than the readings' COPY.
_BATCH = f"(select distinct sensor_id from {INCOMING})"
_NEW_STATES = sa.text(f"insert into sensor_state (sensor_id) {_BATCH[1:-1]} on conflict do nothing")
_STATES = sa.text("select sensor_id, last_time, last_value, state, cast(streaks as text) streaks from sensor_state "
                  f"where sensor_id in {_BATCH} order by sensor_id for update")
_SAVE_LAST = sa.text(f"""
    update sensor_state s set last_time = x.time, last_value = x.value
    from (select distinct on (sensor_id) sensor_id, time, value from {INCOMING} order by sensor_id, time desc) x
    where s.sensor_id = x.sensor_id and (s.last_time is null or x.time > s.last_time)""")
_SAVE_STATE = sa.text("""
    update sensor_state s set state = x.state, streaks = x.streaks
    from unnest(cast(:id as bigint[]), cast(:state as text[]), cast(:streaks as jsonb[])) x(id, state, streaks)
    where s.sensor_id = x.id""")
# The window's max and min from the one-minute rollups (kept in the same transaction, before the rules
# run): a few rows a sensor however fast it samples, where the readings themselves made each batch scan
# every reading of the window. The window ends at the sensor's latest reading (sensor_state, saved before) and starts at
# the minute holding its start, up to 59 s early.
_WINDOW = sa.text(f"""
    with last as (select sensor_id, last_time t1 from sensor_state where sensor_id in {_BATCH})
    select r.sensor_id, max(r.vmax), min(r.vmin) from last
    join sensors s on s.object_id = last.sensor_id
    join unnest(cast(:kinds as text[]), cast(:windows as float8[])) k(kind, w) on k.kind = s.kind
    join readings_1m r on r.sensor_id = last.sensor_id
      and r.bucket >= date_trunc('minute', last.t1 - make_interval(secs => k.w), 'UTC') and r.bucket <= last.t1
    group by r.sensor_id""")
_OPEN = sa.text(f"select id, sensor_id, rule, level, status from alarms where sensor_id in {_BATCH} "
                "and closed_at is null")
SENSOR_CACHE_S = 30.0  # how long a process trusts what it read of a sensor (kind, asset, layer)
_sensor_cache: dict[tuple[str, int], tuple[float, dict]] = {}  # (database URL, sensor id)


def notify(conn: sa.Connection, *messages: dict) -> None:
    """Announce messages on CHANNEL in one statement (a NOTIFY each cost a round trip; the bodies go as
    one JSON text, as psycopg dumps a text array element by element with a regular expression)."""
    bodies = [b for b in (json.dumps(m, default=str) for m in messages) if len(b.encode()) <= NOTIFY_MAX]
    if bodies:
        conn.execute(sa.text("select pg_notify(:c, m) from jsonb_array_elements_text(cast(:m as jsonb)) "
                             "with ordinality x(m, i) order by i"), {"c": CHANNEL, "m": json.dumps(bodies)})


def _event(conn: sa.Connection, alarm_id: int, event: str, at: datetime, sensor: dict, details: dict) -> None:
    conn.execute(sa.text("insert into alarm_events (alarm_id, at, event, details) values (:a, :t, :e, "
                         "cast(:d as jsonb))"), {"a": alarm_id, "t": at, "e": event, "d": json.dumps(details)})
    notify(conn, {"type": "alarm", "event": event, "alarm_id": alarm_id, "sensor": sensor["code"],
                  "sensor_id": sensor["id"], "asset_id": sensor["asset_id"], "layer": sensor["layer"],
                  "at": at.isoformat(), **details})


def transition(conn: sa.Connection, sensor: dict, rule: str, level: str | None, at: datetime, value: float | None,
               open_alarm: dict | None, message: str = "", severity: int = 0) -> None:
    """Move the sensor's alarm of `rule` to `level` (None: back to normal, which closes it)."""
    if level is None:
        if open_alarm:
            conn.execute(sa.text("update alarms set status = 'closed', closed_at = :t where id = :i"),
                         {"t": at, "i": open_alarm["id"]})
            _event(conn, open_alarm["id"], "closed", at, sensor, {"rule": rule, "value": value, "status": "closed"})
        return
    if open_alarm is None:
        ctx = alarm_context(conn, sensor, rule)
        aid = conn.scalar(sa.text(
            "insert into alarms (sensor_id, rule, level, status, value, message, raised_at, context) values "
            "(:s, :r, :l, 'raised', :v, :m, :t, cast(:c as jsonb)) returning id"),
            {"s": sensor["id"], "r": rule, "l": level, "v": value, "m": message, "t": at, "c": json.dumps(ctx)})
        _event(conn, aid, "raised", at, sensor, {"rule": rule, "level": level, "value": value, "status": "raised",
                                                 "message": message})
        return
    if severity > 0:
        conn.execute(sa.text("update alarms set level = :l, status = 'escalated', escalated_at = :t, value = :v "
                             "where id = :i"), {"l": level, "t": at, "v": value, "i": open_alarm["id"]})
        _event(conn, open_alarm["id"], "escalated", at, sensor,
               {"rule": rule, "level": level, "value": value, "status": "escalated"})
    else:
        conn.execute(sa.text("update alarms set level = :l, value = :v where id = :i"),
                     {"l": level, "v": value, "i": open_alarm["id"]})
        _event(conn, open_alarm["id"], "lowered", at, sensor,
               {"rule": rule, "level": level, "value": value, "status": open_alarm["status"]})


def _move(conn, sensor: dict, kr: KindRules, t: datetime, v: float, old: int, new: int, open_alarm: dict | None):
    """Apply a level change of the sensor's level rule; returns its open alarm after."""
    name = kr.levels.name_of(new)
    msg = (f"{sensor['code']}: {kr.kind} {v:g} {kr.levels.direction} the {name} threshold "
           f"{kr.levels.levels[new - 1].threshold:g}" if new else "")
    rule = f"{sensor['kind']}-level"
    transition(conn, sensor, rule, name if new else None, t, v, open_alarm, msg, new - old)
    return None if new == 0 else (open_alarm or {"id": conn.scalar(sa.text(
        "select id from alarms where sensor_id = :s and rule = :r and closed_at is null"),
        {"s": sensor["id"], "r": rule}), "status": "raised"})


def _levels(conn, sensor: dict, kr: KindRules, st: LevelState, snaps: dict, readings: list,
            open_alarm: dict | None):
    values = [v for _, v in readings]
    lo, hi = min(values), max(values)
    if kr.levels.target(lo, st.level) == st.level == kr.levels.target(hi, st.level):
        st.streak, st.toward = 0, st.level  # target() is monotonic: every reading keeps the level
        if "calm" not in snaps:
            snaps["calm"] = readings[0][0].isoformat()
        return
    for t, v in readings:
        change = step(kr.levels, st, v)
        replay.calm(snaps, st, t, change, kr.levels)
        if change is not None:
            open_alarm = _move(conn, sensor, kr, t, v, *change, open_alarm)


def _late(conn, sensor: dict, kr: KindRules, st: LevelState, snaps: dict, upto: datetime,
          open_alarm: dict | None) -> LevelState:
    """The level rule run again in time order over the stored readings (replay.py), reconciled with the
    transitions already announced; returns the sensor's new state."""
    t0 = replay.base_time(snaps)
    new_st, moves, last = replay.replay(conn, sensor, kr, snaps, upto)
    after, cur = replay.last_applied(conn, sensor), st.level
    replay.retime(conn, sensor, kr, t0, moves, after)
    for t, v, _old, new in moves:
        if (after is None or t > after) and new != cur:
            open_alarm, cur = _move(conn, sensor, kr, t, v, cur, new, open_alarm), new
    if cur != new_st.level and last is not None:
        _move(conn, sensor, kr, last[0], last[1], cur, new_st.level, open_alarm)
    return new_st


def _rates(conn, rules: Rules, sensors: dict, latest: dict, open_by: dict) -> None:
    rated = [s for s in latest if (kr := rules.kinds.get(sensors[s]["kind"])) and kr.rate]
    if not rated:
        return
    kinds = [k for k, kr in rules.kinds.items() if kr.rate]
    rows = conn.execute(_WINDOW, {"kinds": kinds, "windows": [rules.kinds[k].rate.window_s for k in kinds]})
    for sid, wmax, wmin in rows:
        if sid not in latest:
            continue
        sensor, rr = sensors[sid], rules.kinds[sensors[sid]["kind"]].rate
        t, v = latest[sid]
        change = rr.change(wmax, wmin, v)
        current = open_by.get((sid, rr.rule))
        if change >= rr.delta and current is None:
            msg = f"{sensor['code']}: {sensor['kind']} {rr.direction} of {change:g} within {rr.window_s:g} s"
            transition(conn, sensor, rr.rule, rr.level, t, v, None, msg)
        elif change < rr.delta / 2 and current is not None:
            transition(conn, sensor, rr.rule, None, t, v, current)


def _sensors(conn: sa.Connection, ids: list[int]) -> dict[int, dict]:
    """The sensors' code, kind, asset and layer; read again after SENSOR_CACHE_S (a batch would otherwise
    read a thousand sensors that seldom change)."""
    now, db = time.monotonic(), str(conn.engine.url)
    stale = [i for i in ids if now - _sensor_cache.get((db, i), (-1e9, None))[0] > SENSOR_CACHE_S]
    if stale:
        for r in conn.execute(_SENSORS, {"ids": stale}):
            _sensor_cache[db, r.id] = (now, dict(r._mapping))
    return {i: _sensor_cache[db, i][1] for i in ids if (db, i) in _sensor_cache}


def _sensor(conn, rules: Rules, sensor: dict, row, fresh: list, open_by: dict):
    """The rules' step for one sensor of a batch (its readings sorted): (newest reading past its last
    evaluated one or None, the state document to save or None when unchanged)."""
    prev = row.last_time
    newer = fresh if prev is None or fresh[0][0] > prev else [x for x in fresh if x[0] > prev]
    kr = rules.kinds.get(sensor["kind"])
    st, snaps = replay.load(orjson.loads(row.streaks))
    before = (dict(st.__dict__), dict(snaps))
    late = kr and kr.levels and len(newer) < len(fresh) \
        and not replay.changes_nothing(snaps, st, kr.levels, fresh[:len(fresh) - len(newer)])
    if late and not replay.can_replay(snaps, fresh[0][0]):
        replay.rebase(conn, sensor, kr, snaps, fresh[0][0])
    if not newer and not late:
        return None, None  # repeated readings, or later than a replay reaches
    if newer and (sensor["id"], "offline") in open_by:
        transition(conn, sensor, "offline", None, newer[0][0], newer[0][1], open_by.pop((sensor["id"], "offline")))
    level_open = open_by.get((sensor["id"], f"{sensor['kind']}-level"))
    if late:
        st = _late(conn, sensor, kr, st, snaps, max(fresh[-1][0], prev), level_open)
    elif kr and kr.levels:
        replay.advance(snaps, prev, st)
        _levels(conn, sensor, kr, st, snaps, newer, level_open)
    state = kr.levels.name_of(st.level) if kr and kr.levels else "normal"
    if not newer and row.state == "offline" and st.level == before[0]["level"]:
        state = "offline"  # late readings that move no level do not end an offline spell
    if state != row.state:
        notify(conn, {"type": "state", "sensor": sensor["code"], "sensor_id": sensor["id"],
                      "asset_id": sensor["asset_id"], "layer": sensor["layer"], "state": state})
    doc = None
    if state != row.state or (st.__dict__, snaps) != before:
        doc = (state, json.dumps({**st.__dict__, **snaps}))
    return (newer[-1] if newer else None), doc


def evaluate(conn: sa.Connection, new: list[tuple[int, datetime, float]], rules: Rules | None = None) -> None:
    """The alarm rules over a batch of readings (sensor id, time, value) in the transaction that stored
    them. A sensor's readings newer than its last evaluated one go through the rules in time order; one
    older than that (it came from another process's batch that committed later) has the level rule run
    again over the sensor's stored readings (replay.py); a repeated reading changes nothing."""
    rules = rules or load_rules()
    by_sensor: dict[int, list] = defaultdict(list)
    for sid, t, v in new:
        by_sensor[sid].append((t, v))
    ids = sorted(by_sensor)
    sensors = _sensors(conn, ids)
    conn.execute(_NEW_STATES)
    states = {r.sensor_id: r for r in conn.execute(_STATES)}  # locked: one process evaluates a sensor
    open_by = {(r.sensor_id, r.rule): dict(r._mapping) for r in conn.execute(_OPEN)}
    latest, rate_at, changed = {}, {}, []
    for sid in ids:
        row = states[sid]
        newest, doc = _sensor(conn, rules, sensors[sid], row, sorted(by_sensor[sid]), open_by)
        if newest is not None:
            latest[sid] = rate_at[sid] = newest
        elif row.last_time is not None:
            rate_at[sid] = (row.last_time, row.last_value)  # the window now holds the late readings
        if doc is not None:
            changed.append((sid, *doc))
    if latest:  # one statement for the batch: a statement per sensor would cost more than the COPY
        conn.execute(_SAVE_LAST)
    if changed:
        conn.execute(_SAVE_STATE, dict(zip(("id", "state", "streaks"), map(list, zip(*changed)))))
    _rates(conn, rules, sensors, rate_at, open_by)
    _notify_readings(conn, sensors, latest)


def _notify_readings(conn: sa.Connection, sensors: dict, latest: dict) -> None:
    """The latest reading of each sensor of the batch, in messages that fit a NOTIFY."""
    items = [[sensors[s]["code"], sensors[s]["layer"], t.isoformat(), v] for s, (t, v) in latest.items()]
    per = 60  # about 110 bytes an item
    notify(conn, *({"type": "readings", "items": items[i:i + per]} for i in range(0, len(items), per)))


def check_offline(engine: sa.Engine, now: datetime, rules: Rules | None = None) -> int:
    """Raise an offline alarm for each sensor silent for the rules' number of sampling periods."""
    rules = rules or load_rules()
    with engine.begin() as c:
        if not c.scalar(sa.text("select pg_try_advisory_xact_lock(7461018)")):
            return 0  # another ingest process is checking
        silent = [dict(r._mapping) for r in c.execute(sa.text(
            "select st.sensor_id id, st.last_time from sensor_state st join sensors s on s.object_id = st.sensor_id "
            "where st.last_time < :now - make_interval(secs => s.period_s * :k) and st.state <> 'offline' "
            "and not exists (select 1 from alarms a where a.sensor_id = st.sensor_id and a.rule = 'offline' "
            "and a.closed_at is null)"), {"now": now, "k": rules.offline_periods})]
        if not silent:
            return 0
        sensors = {r.id: dict(r._mapping) for r in c.execute(_SENSORS, {"ids": [s["id"] for s in silent]})}
        for s in silent:
            sensor = sensors[s["id"]]
            transition(c, sensor, "offline", "warning", now, None, None,
                       f"{sensor['code']}: no reading since {s['last_time']:%Y-%m-%d %H:%M:%S}")
            c.execute(sa.text("update sensor_state set state = 'offline' where sensor_id = :i"), {"i": s["id"]})
            notify(c, {"type": "state", "sensor": sensor["code"], "sensor_id": s["id"],
                       "asset_id": sensor["asset_id"], "layer": sensor["layer"], "state": "offline"})
    return len(silent)


def acknowledge(engine: sa.Engine, alarm_id: int, by: str, note: str | None = None) -> dict:
    """An operator acknowledges an open alarm (who, when, a note)."""
    with engine.begin() as c:
        row = c.execute(sa.text("select a.id, a.status, a.sensor_id from alarms a where a.id = :i for update"),
                        {"i": alarm_id}).first()
        if row is None:
            raise NotFoundError(f"no alarm {alarm_id}")
        if row.status == "closed":
            raise InputError(f"alarm {alarm_id} is closed")
        at = c.scalar(sa.text("update alarms set status = 'acknowledged', acknowledged_at = now(), "
                              "acknowledged_by = :b, note = :n where id = :i returning acknowledged_at"),
                      {"b": by, "n": note, "i": alarm_id})
        sensor = next(iter(dict(r._mapping) for r in c.execute(_SENSORS, {"ids": [row.sensor_id]})))
        _event(c, alarm_id, "acknowledged", at, sensor, {"by": by, "note": note, "status": "acknowledged"})
    return alarm(engine, alarm_id)


def close(engine: sa.Engine, alarm_id: int, by: str, note: str | None = None) -> dict:
    """An operator closes an alarm by hand (the readings may not have returned to normal)."""
    with engine.begin() as c:
        row = c.execute(sa.text("select status, sensor_id from alarms where id = :i for update"),
                        {"i": alarm_id}).first()
        if row is None:
            raise NotFoundError(f"no alarm {alarm_id}")
        if row.status == "closed":
            raise InputError(f"alarm {alarm_id} is closed already")
        at = c.scalar(sa.text("update alarms set status = 'closed', closed_at = now(), note = coalesce(:n, note) "
                              "where id = :i returning closed_at"), {"n": note, "i": alarm_id})
        sensor = next(iter(dict(r._mapping) for r in c.execute(_SENSORS, {"ids": [row.sensor_id]})))
        _event(c, alarm_id, "closed", at, sensor, {"by": by, "note": note, "status": "closed"})
    return alarm(engine, alarm_id)


def alarm(engine: sa.Engine, alarm_id: int) -> dict:
    with engine.connect() as c:
        row = c.execute(sa.text("select a.*, s.code sensor, s.kind, s.asset_id from alarms a join sensors s "
                                "on s.object_id = a.sensor_id where a.id = :i"), {"i": alarm_id}).first()
    if row is None:
        raise NotFoundError(f"no alarm {alarm_id}")
    return dict(row._mapping)

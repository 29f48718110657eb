"""Late readings: a sensor's level rule re-run over its stored readings in time order.

With N ingest processes a shared subscription deals one sensor's messages to different processes, whose
batches commit in either order: a reading can reach the rules after a later one of its sensor. The rules
take a sensor's readings in time order when they come in order (lifecycle.evaluate); when a batch holds a
reading older than its sensor's last evaluated one, the level rule is run again from a snapshot of the
sensor's state taken at least REPLAY_S before, over the sensor's stored readings in time order (the late
one among them; the sensor's row of sensor_state is locked, so no other process evaluates it meanwhile).

Snapshots live in sensor_state.streaks beside the state: `base` (the one replays start from, at least
REPLAY_S old when taken into use) and `next` (the newer one that becomes `base` REPLAY_S later). A
reading older than `base` (more than REPLAY_S late: a device sending what it buffered while cut off)
gets a base rebuilt from the stored history instead (`rebase`): the level of the sensor's last level
transition before the reading (its alarm events), and the streak of the `consecutive` - 1 stored
readings before it.

What the replay finds is reconciled with the alarms already raised: transitions at or before the last
one announced for the sensor's level rule are history and stay as they were (an event is not taken
back); later ones are applied from the level the sensor is at; and the sensor ends at the level of the
replay's last reading. So an alarm missed for lack of a reading is raised once, at the time of the
reading that completed its streak, and one already raised is not raised again.
"""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from .rules import KindRules, LevelState, step

REPLAY_S = 60.0  # how late (in reading time) a reading may come and still count; project choice
_READINGS = sa.text("select time, value from readings where sensor_id = :s and time > :t0 and time <= :t1 "
                    "order by time")
_ALL_READINGS = sa.text("select time, value from readings where sensor_id = :s and time <= :t1 order by time")
_LAST_APPLIED = sa.text("""
    select max(e.at) from alarm_events e join alarms a on a.id = e.alarm_id
    where a.sensor_id = :s and a.rule = :r and e.event in ('raised', 'escalated', 'lowered', 'closed')""")


def _snap(at: datetime | None, st: LevelState) -> list:
    return [at.isoformat() if at else None, st.level, st.streak, st.toward]


def _unsnap(s: list) -> tuple[datetime | None, LevelState]:
    return (datetime.fromisoformat(s[0]) if s[0] else None), LevelState(*s[1:])


def load(streaks: dict) -> tuple[LevelState, dict]:
    """The level state and the snapshots of a sensor_state.streaks document."""
    snaps = {k: streaks.pop(k) for k in ("base", "next", "calm") if k in streaks}
    return LevelState(**streaks), snaps


def advance(snaps: dict, prev_last: datetime | None, st: LevelState) -> None:
    """Take a snapshot of the state `st` the sensor had at its last reading `prev_last`, before a batch's
    readings: the first one is `base` (from the sensor's first reading on), then `next` every REPLAY_S,
    which becomes `base` once REPLAY_S old."""
    if prev_last is None:
        snaps.setdefault("base", _snap(None, st))
        return
    nxt = snaps.get("next")
    if nxt is None:
        snaps["next"] = _snap(prev_last, st)
    elif (prev_last - datetime.fromisoformat(nxt[0])).total_seconds() >= REPLAY_S:
        snaps["base"], snaps["next"] = nxt, _snap(prev_last, st)


def calm(snaps: dict, st: LevelState, t: datetime, change, rule) -> None:
    """Keep `calm`: the time of a reading after which the sensor sat at its level with no streak, every
    later reading pointing to that level too (`rule.target`). Dropped by a reading that starts a streak."""
    if change is None and st.streak == 0:
        snaps.setdefault("calm", t.isoformat())
    else:
        snaps.pop("calm", None)


def changes_nothing(snaps: dict, st: LevelState, rule, late: list) -> bool:
    """Late readings within the sensor's calm run, each pointing to its level, change nothing (put in
    among readings that keep a level and its empty streak, they keep them too): no replay needed. This
    is the common case of N processes at a high rate: every batch of one holds readings older than the
    other's last."""
    c = snaps.get("calm")
    return (c is not None and st.streak == 0 and datetime.fromisoformat(c) < late[0][0]
            and all(rule.target(v, st.level) == st.level for _, v in late))


def base_time(snaps: dict) -> datetime | None:
    return _unsnap(snaps["base"])[0]


_LEVEL_BEFORE = sa.text("""
    select e.event, e.details->>'level' level, e.at from alarm_events e join alarms a on a.id = e.alarm_id
    where a.sensor_id = :s and a.rule = :r and e.event in ('raised', 'escalated', 'lowered', 'closed')
      and e.at < :t order by e.at desc, e.id desc limit 1""")
_BEFORE = sa.text("select time, value from readings where sensor_id = :s and time < :t "
                  "and (cast(:after as timestamptz) is null or time > :after) order by time desc limit :n")


def rebase(conn: sa.Connection, sensor: dict, kr: KindRules, snaps: dict, earliest: datetime) -> None:
    """A base snapshot just before `earliest`, from what is stored. Besides its level, a level rule keeps
    only a streak shorter than `consecutive`: the level of the last transition announced before (normal
    when none) and the last `consecutive` - 1 readings after that transition rebuild the state exactly
    (none of them can complete a streak)."""
    last = conn.execute(_LEVEL_BEFORE, {"s": sensor["id"], "r": f"{sensor['kind']}-level", "t": earliest}).first()
    names = {kr.levels.name_of(i): i for i in range(len(kr.levels.levels) + 1)}
    st = LevelState(0 if last is None or last.event == "closed" else names.get(last.level, 0))
    st.toward = st.level
    rows = conn.execute(_BEFORE, {"s": sensor["id"], "t": earliest, "after": last and last.at,
                                  "n": max(kr.levels.consecutive - 1, 1)}).all()
    for _, v in reversed(rows if kr.levels.consecutive > 1 else []):
        step(kr.levels, st, v)
    snaps["base"] = _snap(rows[0][0] if rows else (last and last.at), st)


def can_replay(snaps: dict, earliest: datetime) -> bool:
    """Whether a reading at `earliest` is within reach of the sensor's base snapshot."""
    base = snaps.get("base")
    return base is not None and (base[0] is None or datetime.fromisoformat(base[0]) < earliest)


def replay(conn: sa.Connection, sensor: dict, kr: KindRules, snaps: dict, upto: datetime):
    """The level rule over the sensor's stored readings from its base snapshot up to `upto`, in time
    order: (state at the end, transitions [(time, value, old level, new level)], last reading)."""
    t0, st = _unsnap(snaps["base"])
    rows = conn.execute(_ALL_READINGS if t0 is None else _READINGS, {"s": sensor["id"], "t0": t0, "t1": upto})
    nxt_t = datetime.fromisoformat(snaps["next"][0]) if snaps.get("next") else None
    moves, last = [], None
    snaps.pop("calm", None)  # found again over the replayed readings
    for t, v in rows:
        change = step(kr.levels, st, v)
        calm(snaps, st, t, change, kr.levels)
        if change:
            moves.append((t, v, *change))
        if nxt_t is not None and t <= nxt_t:
            snaps["next"] = _snap(nxt_t, st)  # the late reading may have changed the state there too
        last = (t, v)
    return st, moves, last


_APPLIED = sa.text("""
    select e.id, e.alarm_id, e.event, e.at, e.details->>'level' level from alarm_events e
    join alarms a on a.id = e.alarm_id
    where a.sensor_id = :s and a.rule = :r and e.event in ('raised', 'escalated', 'lowered', 'closed')
      and (cast(:t0 as timestamptz) is null or e.at > :t0) order by e.at, e.id""")
_COLUMN = {"raised": "raised_at", "escalated": "escalated_at", "closed": "closed_at"}


def retime(conn: sa.Connection, sensor: dict, kr: KindRules, t0: datetime | None, moves: list,
           after: datetime | None) -> None:
    """When the transitions announced since the base snapshot are the replay's, only at other times (a
    reading was in flight in another process when they were decided), record them at the replay's times:
    the time of the reading that completed the streak. (What went out on the live stream stays.)"""
    old = [m for m in moves if after is not None and m[0] <= after]
    rows = conn.execute(_APPLIED, {"s": sensor["id"], "r": f"{sensor['kind']}-level", "t0": t0}).all()
    names = {kr.levels.name_of(i): i for i in range(len(kr.levels.levels) + 1)}
    if [0 if r.event == "closed" else names.get(r.level) for r in rows] != [m[3] for m in old]:
        return  # another course (a reading in flight broke or made a streak): the reconciliation's
    for r, m in zip(rows, old, strict=True):
        if r.at != m[0]:
            conn.execute(sa.text("update alarm_events set at = :t where id = :i"), {"t": m[0], "i": r.id})
            if r.event in _COLUMN:
                conn.execute(sa.text(f"update alarms set {_COLUMN[r.event]} = :t where id = :i"),
                             {"t": m[0], "i": r.alarm_id})


def last_applied(conn: sa.Connection, sensor: dict) -> datetime | None:
    return conn.scalar(_LAST_APPLIED, {"s": sensor["id"], "r": f"{sensor['kind']}-level"})

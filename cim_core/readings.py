"""Sensor readings: the one write path of the monitoring ingest (HTTP and MQTT alike).

A batch is COPYed into a temporary table and moved into `readings` with ON CONFLICT DO NOTHING, so a
reading delivered twice (MQTT QoS 1 redelivery, a repeated HTTP post) is stored once; the same
statement adds the newly stored readings, and only those, to the one-minute and one-hour rollups.
Readings are partitioned by UTC day; the partitions are made on first use and dropped after the
retention period (rollups stay).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from time import monotonic

import sqlalchemy as sa

# Rollup upserts; a newly stored reading is counted once, in the transaction that stores it.
_ROLLUP = """
    {name} as (insert into {table} (sensor_id, bucket, n, vmin, vmax, vsum)
        select sensor_id, date_trunc('{unit}', time, 'UTC'), count(*), min(value), max(value), sum(value)
        from ins group by 1, 2 order by 1, 2
        on conflict (sensor_id, bucket) do update set n = {table}.n + excluded.n,
            vmin = least({table}.vmin, excluded.vmin), vmax = greatest({table}.vmax, excluded.vmax),
            vsum = {table}.vsum + excluded.vsum)"""
INCOMING = "incoming"  # the batch's temporary table, emptied at commit
_MOVE = ("with ins as (insert into readings (sensor_id, time, value, quality) "
         f"select sensor_id, time, value, quality from {INCOMING} on conflict do nothing "
         "returning sensor_id, time, value),"
         + _ROLLUP.format(name="m", table="readings_1m", unit="minute") + ","
         + _ROLLUP.format(name="h", table="readings_1h", unit="hour")
         + " select count(*) from ins")


@dataclass(frozen=True, slots=True)
class Sensor:
    """What the ingest needs of a sensor: its object id, kind, unit and sampling period."""
    id: int
    code: str
    kind: str
    unit: str
    period_s: float
    asset_id: int | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    source: str
    reason: str
    detail: str
    topic: str | None = None
    payload: bytes | None = None


Reading = tuple[int, datetime, float, "int | None"]


def partition_name(day: date) -> str:
    return f"readings_p{day:%Y%m%d}"


class Partitions:
    """The daily partitions this process knows to exist."""

    def __init__(self):
        self.known: set[date] = set()
        self.lock = threading.Lock()

    def ensure(self, engine: sa.Engine, days: set[date]) -> None:
        missing = days - self.known
        if not missing:
            return
        with self.lock, engine.begin() as c:
            # one creator at a time across processes: CREATE ... IF NOT EXISTS still races
            c.execute(sa.text("select pg_advisory_xact_lock(7461017)"))
            for day in sorted(missing):
                c.execute(sa.text(
                    f"create table if not exists {partition_name(day)} partition of readings "
                    f"for values from ('{day.isoformat()}') to ('{(day + timedelta(days=1)).isoformat()}')"))
            self.known |= missing


def utc_day(t: datetime) -> date:
    return t.astimezone(UTC).date()


def store_readings(conn: sa.Connection, rows: list[Reading]) -> int:
    """Store a batch (partitions must exist); returns how many readings were new. (Handing the new rows
    back to Python cost more than the COPY: the alarm rules take the batch and skip readings not newer
    than a sensor's last, which covers every repeated one.)"""
    if not rows:
        return 0
    conn.execute(sa.text(f"create temp table if not exists {INCOMING} (sensor_id bigint, time timestamptz, "
                         "value float8, quality int2) on commit delete rows"))
    cur = conn.connection.driver_connection.cursor()
    with cur.copy(f"copy {INCOMING} (sensor_id, time, value, quality) from stdin (format binary)") as cp:
        cp.set_types(["int8", "timestamptz", "float8", "int2"])
        for r in rows:
            cp.write_row(r)
    return int(conn.execute(sa.text(_MOVE)).scalar_one())


def store_dead_letters(conn: sa.Connection, letters: list[DeadLetter]) -> None:
    if letters:
        conn.execute(sa.text("insert into dead_letters (source, topic, reason, detail, payload) "
                             "values (:source, :topic, :reason, :detail, :payload)"),
                     [{"source": d.source, "topic": d.topic, "reason": d.reason, "detail": d.detail[:1000],
                       "payload": d.payload} for d in letters])


def drop_old_partitions(engine: sa.Engine, keep_days: int, today: date | None = None) -> list[str]:
    """Drop daily partitions wholly older than `keep_days` days; returns their names."""
    cutoff = partition_name((today or datetime.now(UTC).date()) - timedelta(days=keep_days))
    with engine.begin() as c:
        names = c.scalars(sa.text(
            "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid "
            "where i.inhparent = 'readings'::regclass order by 1")).all()
        old = [n for n in names if n < cutoff]
        for n in old:
            c.execute(sa.text(f"drop table {n}"))
    return old


class SensorDirectory:
    """Sensors by code, read from the database on first need; an unknown code is asked again at most
    every `negative_s` seconds (a misconfigured device must not cost a query per message)."""

    def __init__(self, engine: sa.Engine, negative_s: float = 5.0):
        self.engine = engine
        self.negative_s = negative_s
        self.by_code: dict[str, Sensor] = {}
        self.unknown: dict[str, float] = {}
        self.loaded = False

    def _query(self, code: str | None) -> list[Sensor]:
        sql = "select object_id, code, kind, unit, period_s, asset_id from sensors"
        with self.engine.connect() as c:
            rows = c.execute(sa.text(sql + (" where code = :c" if code else "")), {"c": code})
            return [Sensor(*r) for r in rows]

    def get(self, code: str) -> Sensor | None:
        if not self.loaded:
            self.by_code = {s.code: s for s in self._query(None)}
            self.loaded = True
        found = self.by_code.get(code)
        if found is not None:
            return found
        now = monotonic()
        if now - self.unknown.get(code, -1e9) < self.negative_s:
            return None
        hits = self._query(code)
        if not hits:
            self.unknown[code] = now
            return None
        self.by_code[code] = hits[0]
        return hits[0]

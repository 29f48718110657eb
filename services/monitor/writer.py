"""One transaction per batch: readings (once per sensor and time), rollups, dead letters, then the
alarm rules over the new readings. HTTP and MQTT ingest share it."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa

from cim_core.readings import Partitions, SensorDirectory, store_dead_letters, store_readings, utc_day

from .messages import Sorted

log = logging.getLogger("cim.monitor")

# Called in the batch's transaction with the batch's readings (sensor id, time, value), once per (sensor,
# time); a reading already stored is not newer than its sensor's last, which the alarm rules skip.
AfterStore = Callable[[sa.Connection, list[tuple[int, datetime, float]]], None]


def days(rows: list) -> set:
    """The UTC days of the rows' times (one, mostly: then the earliest and latest tell)."""
    if not rows:
        return set()
    first, last = utc_day(min(r[1] for r in rows)), utc_day(max(r[1] for r in rows))
    return {first} if first == last else {utc_day(r[1]) for r in rows}


class Writer:
    def __init__(self, engine: sa.Engine, after_store: AfterStore | None = None):
        self.engine = engine
        self.sensors = SensorDirectory(engine)
        self.partitions = Partitions()
        self.after_store = after_store

    def write(self, batch: Sorted) -> int:
        """Store a sorted batch in one transaction; returns how many readings were new."""
        # within a batch, the first copy of a (sensor, time) wins, as across batches
        rows = list({(r[0], r[1]): r for r in reversed(batch.readings)}.values())
        self.partitions.ensure(self.engine, days(rows))
        with self.engine.begin() as c:
            new = store_readings(c, rows)
            store_dead_letters(c, batch.dead)
            if self.after_store and new:
                self.after_store(c, [r[:3] for r in rows])
        return new

    def write_until_stored(self, make: Callable[[], Sorted],
                           stop: Callable[[], bool] = lambda: False) -> tuple[Sorted, int] | None:
        """Sort (the sensor directory may need the database) and write, retrying while the database is
        unreachable (restarting, failing over); (batch, new readings), or None when stopped first."""
        delay = 0.2
        while True:
            try:
                batch = make()
                return batch, self.write(batch)
            except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
                first = str(getattr(exc, "orig", exc)).strip().splitlines()
                log.warning("database unavailable, retrying in %.1f s: %s", delay, first[0] if first else exc)
                self.engine.dispose()
                if stop():
                    return None
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

"""Repair incidents of a pipe network (bursts, leaks, repairs) from a CSV file, as a dataset of `incident`
objects tied to the pipes they happened on.

Columns (header names, case-insensitive): `date` (YYYY-MM-DD, YYYY/MM/DD, optionally with a time), `kind`
(burst, leak, repair...), and either `pipe` (the pipe's object id or key) or `x`, `y` (storage CRS: the
nearest current pipe of the utility within `max_distance` m). Rows whose date does not parse or whose pipe
does not exist are refused and listed in the report (`refused`: row number and reason); every other row
is stored. A file with no row left is refused as a whole.
"""
from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import shapely
import sqlalchemy as sa

from cim_core.db import get_engine, storage_srid
from cim_core.errors import InputError
from cim_core.model import CityObject, DatasetInfo
from cim_core.network.queries import CURRENT
from cim_core.store import write_dataset

from .common import ImportResult, already_loaded, options_key

MAX_DISTANCE_M = 30.0
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y%m%d")
REPORTED = 100  # refused rows listed in the report


def parse_date(text: str) -> dt.date | None:
    for fmt in DATE_FORMATS:
        try:
            return dt.datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    return None


def _pipe_by_ref(c: sa.Connection, ref: str, utility: str) -> tuple | None:
    """(id, key, x, y at the middle) of a current pipe by object id or key."""
    cond = "o.id = cast(:r as bigint)" if ref.isdigit() else "o.key = :r"
    return c.execute(sa.text(f"""
        select o.id, o.key, st_x(p), st_y(p) from pipe_segments s join city_objects o on o.id = s.object_id,
             lateral st_lineinterpolatepoint(st_force2d(s.centerline), 0.5) p
        where {cond} and s.utility = :u and {CURRENT} limit 1"""), {"r": ref, "u": utility}).first()


def _pipe_near(c: sa.Connection, x: float, y: float, utility: str, max_distance: float, srid: int) -> tuple | None:
    return c.execute(sa.text(f"""
        select o.id, o.key, :x, :y from pipe_segments s join city_objects o on o.id = s.object_id
        where s.utility = :u and {CURRENT}
          and st_dwithin(s.centerline, st_setsrid(st_makepoint(:x, :y), :srid), :d)
        order by s.centerline <-> st_setsrid(st_makepoint(:x, :y), :srid) limit 1"""),
                     {"x": x, "y": y, "u": utility, "d": max_distance, "srid": srid}).first()


def _rows(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [{(k or "").strip().lower(): (v or "").strip() for k, v in r.items()} for r in csv.DictReader(f)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: not a UTF-8 CSV file ({exc})") from None
    if rows and "date" not in rows[0]:
        raise InputError(f"{path}: no `date` column (columns: date, kind, pipe or x and y)")
    return rows


def _resolve(c: sa.Connection, row: dict, utility: str, max_distance: float, srid: int) -> tuple | str:
    """The pipe of a row, or the reason it is refused."""
    if row.get("pipe"):
        return _pipe_by_ref(c, row["pipe"], utility) or f"no current {utility} pipe {row['pipe']!r}"
    try:
        x, y = float(row["x"]), float(row["y"])
    except (KeyError, ValueError):
        return "neither a pipe nor x, y"
    return (_pipe_near(c, x, y, utility, max_distance, srid)
            or f"no {utility} pipe within {max_distance:g} m of ({x:.1f}, {y:.1f})")


def import_file(path: str | Path, *, dataset: str | None = None, utility: str = "water",
                max_distance: float = MAX_DISTANCE_M, engine: sa.Engine | None = None,
                force: bool = False) -> ImportResult:
    """Import one incidents CSV as a dataset (default name: the file's stem); refused rows are reported."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    engine = engine or get_engine()
    name = dataset or path.stem
    options = {"dataset": name, "utility": utility, "max_distance": max_distance}
    sha, done = already_loaded(path, force, options, engine)
    if done:
        return ImportResult(path=str(path), dataset=done["name"], skipped=True)
    srid = storage_srid(engine)
    objects, refused = [], []
    with engine.connect() as c:
        for n, row in enumerate(_rows(path), start=2):  # row 1 is the header
            date = parse_date(row.get("date", ""))
            pipe = _resolve(c, row, utility, max_distance, srid) if date else f"date {row.get('date')!r} does not parse"
            if isinstance(pipe, str):
                refused.append({"row": n, "reason": pipe})
                continue
            objects.append(CityObject(
                key=f"incident:{n}", cls="incident", name=row.get("kind") or "incident",
                footprint=shapely.Point(float(pipe[2]), float(pipe[3])), valid_from=date,
                attributes={"date": date.isoformat(), "kind": row.get("kind") or None, "pipe_id": int(pipe[0]),
                            "pipe_key": pipe[1], "row": n}))
    if not objects:
        first = refused[0] if refused else {"row": None, "reason": "the file has no rows"}
        raise InputError(f"{path}: no incident could be stored ({len(refused)} rows refused; row {first['row']}: "
                         f"{first['reason']})")
    report = {"rows": len(objects) + len(refused), "stored": len(objects), "refused_count": len(refused),
              "refused": refused[:REPORTED], "options": options_key(options)}
    info = DatasetInfo(name=name, kind="incidents", source_path=str(path), sha256=sha, report=report)
    return ImportResult.written(path, write_dataset(info, objects, engine=engine), report)

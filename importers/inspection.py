"""CCTV inspection records (CSV) of drainage pipes: one row per defect observed, with CJJ 181-2012 codes.

Columns: `segment` (a pipe's object id, key, or survey id: `WS000123` for key `pipe:WS000123`) or `from_manhole` and `to_manhole` (the keys of its two
manholes, either way round); `date` (YYYY-MM-DD); `code` (PL, BX, ... as cim_core.defects lists them);
`position_m` (metres from the pipe's start); `grade` (1-4, as the code defines it); optional `remarks` and
`repaired` (the repair date). A row with an empty code records a pipe inspected without defects. Rows with an unknown code, a grade the code does not define, a position past
the pipe's length or a pipe that does not exist are refused and listed; the rest are imported as one
dataset (kind `inspection`), which a repeated import replaces.
"""
from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from psycopg.types.json import Jsonb

from cim_core.db import get_engine
from cim_core.defects import defect_codes
from cim_core.errors import InputError
from cim_core.network.columns import GRAVITY
from cim_core.network.queries import CURRENT
from cim_core.store import sha256_of

SUFFIXES = (".csv",)
REQUIRED = ("date", "code", "position_m", "grade")
LENGTH_TOLERANCE_M = 0.05
NO_DEFECT = "NONE"  # the record of a pipe inspected without defects (a row with an empty code)  # positions up to this past the recorded length are the pipe's end


@dataclass
class InspectionImport:
    dataset: str
    imported: int
    refused: list[dict] = field(default_factory=list)  # {"line", "reason"}


class Pipes:
    """The current drainage pipes, by id, key and manhole pair."""

    def __init__(self, engine: sa.Engine):
        with engine.connect() as c:
            rows = c.execute(sa.text(f"""
                select s.object_id, o.key, s.length_m, fo.key, tob.key
                from pipe_segments s join city_objects o on o.id = s.object_id
                left join city_objects fo on fo.id = s.from_node left join city_objects tob on tob.id = s.to_node
                where s.utility = any(:g) and {CURRENT}"""), {"g": list(GRAVITY)}).all()
        self.length = {r[0]: r[2] for r in rows}
        self.by_key: dict[str, list[int]] = {}
        self.by_pair: dict[frozenset, list[int]] = {}
        for i, key, _, a, b in rows:
            self.by_key.setdefault(key, []).append(i)
            if a and b:
                self.by_pair.setdefault(frozenset((a, b)), []).append(i)

    def find(self, row: dict) -> int:
        seg = (row.get("segment") or "").strip()
        if seg:
            hits = [int(seg)] if seg.isdigit() and int(seg) in self.length \
                else self.by_key.get(seg) or self.by_key.get(f"pipe:{seg}", [])
            what = f"pipe {seg!r}"
        else:
            a, b = (row.get("from_manhole") or "").strip(), (row.get("to_manhole") or "").strip()
            if not (a and b):
                raise ValueError("no segment and no manhole pair")
            hits, what = self.by_pair.get(frozenset((a, b)), []), f"a pipe between {a!r} and {b!r}"
        if not hits:
            raise ValueError(f"no drainage {what}")
        if len(hits) > 1:
            raise ValueError(f"{len(hits)} drainage pipes match {what}; give the object id")
        return hits[0]


def _date(v: str | None, what: str) -> dt.date | None:
    if not v or not v.strip():
        return None
    try:
        return dt.date.fromisoformat(v.strip())
    except ValueError:
        raise ValueError(f"{what} {v!r} is not a date (YYYY-MM-DD)") from None


def check_row(row: dict, pipes: Pipes) -> dict:
    """A valid record from a CSV row; ValueError says why a row is refused."""
    codes = defect_codes()
    code = (row.get("code") or "").strip().upper()
    if not code:  # inspected, no defect
        when = _date(row.get("date"), "date")
        if when is None:
            raise ValueError("no date")
        return {"segment_id": pipes.find(row), "inspected_on": when, "code": NO_DEFECT, "kind": "none", "grade": 0,
                "position_m": 0.0, "remarks": (row.get("remarks") or "").strip() or None, "repaired_on": None}
    if code not in codes:
        raise ValueError(f"unknown defect code {row.get('code')!r} (CJJ 181-2012 codes: {', '.join(codes)})")
    try:
        grade = int((row.get("grade") or "").strip())
    except ValueError:
        raise ValueError(f"grade {row.get('grade')!r} is not a number from 1 to 4") from None
    if grade not in codes[code].scores:
        raise ValueError(f"grade {grade} is not defined for {code} ({codes[code].name_zh}): "
                         f"grades {', '.join(map(str, codes[code].scores))}")
    try:
        pos = float((row.get("position_m") or "").strip())
    except ValueError:
        raise ValueError(f"position {row.get('position_m')!r} is not a number of metres") from None
    seg = pipes.find(row)
    length = pipes.length[seg]
    if pos < 0 or (length is not None and pos > length + LENGTH_TOLERANCE_M):
        raise ValueError(f"position {pos:g} m lies outside the pipe (0 to {length:.2f} m)")
    when = _date(row.get("date"), "date")
    if when is None:
        raise ValueError("no date")
    return {"segment_id": seg, "inspected_on": when, "code": code, "kind": codes[code].kind, "grade": grade,
            "position_m": pos, "remarks": (row.get("remarks") or "").strip() or None,
            "repaired_on": _date(row.get("repaired"), "repair date")}


def _read(path: Path) -> list[dict]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(f"{path}: missing column(s) {', '.join(missing)}",
                                 hint="columns: segment or from_manhole,to_manhole; date, code, position_m, grade")
            return [{k.strip(): v for k, v in r.items() if k} for r in reader]
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc.strerror}") from None


def _write(c: sa.Connection, name: str, path: Path, records: list[dict], refused: list[dict]) -> None:
    kind = c.scalar(sa.text("select kind from datasets where name = :n"), {"n": name})
    if kind is not None and kind != "inspection":
        raise InputError(f"dataset {name!r} exists and is not an inspection dataset", hint="give --dataset")
    c.execute(sa.text("delete from datasets where name = :n"), {"n": name})
    ds = c.scalar(sa.text("""insert into datasets (name, kind, source_path, sha256, counts, report)
                             values (:n, 'inspection', :p, :h, :c, :r) returning id"""),
                  {"n": name, "p": path.name, "h": sha256_of(path), "c": Jsonb({"inspections": len(records)}),
                   "r": Jsonb({"refused": refused})})
    if records:
        c.execute(sa.text("""insert into pipe_inspections (dataset_id, segment_id, inspected_on, code, kind, grade,
                                 position_m, remarks, repaired_on, line)
                             values (:d, :segment_id, :inspected_on, :code, :kind, :grade, :position_m, :remarks,
                                     :repaired_on, :line)"""), [{**r, "d": ds} for r in records])


def import_file(path: str | Path, *, dataset: str | None = None, engine: sa.Engine | None = None) -> InspectionImport:
    """Import an inspection CSV; refused rows are listed (line numbers count the header as line 1)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    engine = engine or get_engine()
    pipes = Pipes(engine)
    records, refused = [], []
    for line, row in enumerate(_read(path), 2):
        try:
            records.append({**check_row(row, pipes), "line": line})
        except ValueError as exc:
            refused.append({"line": line, "reason": str(exc)})
    name = dataset or path.stem
    with engine.begin() as c:
        _write(c, name, path, records, refused)
    return InspectionImport(name, len(records), refused)

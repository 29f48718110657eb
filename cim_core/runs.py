"""Analysis runs: results with provenance, and findings that name their objects.

An analysis computes in memory and then records its run in one statement: what it was asked
(inputs), the rules or definitions it applied with their source, the datasets of the model it read
(name, content hash, import time), when it started and ended, a summary, and its findings. A finding
names its object by database id and, for a pair (a clearance between two pipes), the other object.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from psycopg.types.json import Jsonb

from .db import get_engine, storage_srid
from .errors import NotFoundError
from .store import dumps


@dataclass(slots=True)
class Finding:
    """One finding of a run. `details`: measured and required values, the rule's source and confidence."""
    rule: str
    message: str
    object_id: int | None = None
    related_id: int | None = None
    location: tuple[float, float] | None = None
    severity: str = "warning"
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Run:
    id: int
    analysis: str
    started_at: dt.datetime
    finished_at: dt.datetime
    summary: dict[str, Any]
    findings: int


def _json(value) -> Jsonb:
    return Jsonb(value, dumps=lambda v: dumps(v).decode())


RECORD_SQL = """
    with run as (
        insert into analysis_runs (analysis, inputs, rules, datasets, summary, requested_by, started_at, finished_at)
        select :a, :i, :r, coalesce((
            select jsonb_agg(jsonb_build_object('id', id, 'name', name, 'kind', kind, 'sha256', sha256,
                                                'imported_at', imported_at) order by name)
            from datasets where status = 'complete'), '[]'::jsonb), :s, :by, :t0, clock_timestamp()
        returning id, finished_at),
    stored as (
        insert into qa_findings (run_id, object_id, related_id, rule, severity, message, details, geom)
        select run.id, f.o, f.rel, f.rule, f.sev, f.msg, f.det,
               case when f.x is not null then st_setsrid(st_makepoint(f.x, f.y), :srid) end
        from run, unnest(cast(:o as int8[]), cast(:rel as int8[]), cast(:rule as text[]), cast(:sev as text[]),
                         cast(:msg as text[]), cast(:det as jsonb[]), cast(:x as float8[]), cast(:y as float8[]))
                  with ordinality f(o, rel, rule, sev, msg, det, x, y, n)
        order by f.n
        returning 1)
    select id, finished_at, (select count(*) from stored) from run"""


def record_run(analysis: str, inputs: dict, rules: dict, findings: Iterable[Finding], summary: dict, *,
               started_at: dt.datetime, requested_by: str | None = None,
               engine: sa.Engine | None = None, srid: int | None = None) -> Run:
    """Store a run with its provenance (every complete dataset with its content hash and import time) and
    its findings, in one statement (atomic without a transaction around it: one round trip). srid: the
    storage CRS's, when the caller knows it already."""
    engine = engine or get_engine()
    findings = list(findings)
    srid = srid or storage_srid(engine)
    loc = [f.location or (None, None) for f in findings]
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        run_id, finished, _ = c.execute(sa.text(RECORD_SQL), {
            "a": analysis, "i": _json(inputs), "r": _json(rules), "s": _json(summary), "by": requested_by,
            "t0": started_at, "srid": srid, "o": [f.object_id for f in findings],
            "rel": [f.related_id for f in findings], "rule": [f.rule for f in findings],
            "sev": [f.severity for f in findings], "msg": [f.message for f in findings],
            "det": [dumps(f.details).decode() for f in findings],
            "x": [None if p[0] is None else float(p[0]) for p in loc],
            "y": [None if p[1] is None else float(p[1]) for p in loc]}).one()
    return Run(run_id, analysis, started_at, finished, summary, len(findings))


def get_run(run_id: int, engine: sa.Engine | None = None) -> dict:
    """A stored run with its provenance and its findings' counts by rule."""
    engine = engine or get_engine()
    with engine.connect() as c:
        row = c.execute(sa.text("select * from analysis_runs where id = :i"), {"i": run_id}).mappings().first()
        if row is None:
            raise NotFoundError(f"no analysis run {run_id}")
        counts = dict(c.execute(sa.text("select rule, count(*) from qa_findings where run_id = :i "
                                        "group by rule order by rule"), {"i": run_id}).all())
    return {**row, "findings": counts}


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)

"""QA findings of a dataset: counting them, replacing an analysis's findings, and summarising what is stored.

An import stores the findings about its source with the dataset (store.write_dataset); an analysis
replaces the findings of its own rules later (`replace_findings`). Either way the dataset's report
keeps the counts by rule (`report["qa"]`) and its counts the total (`counts["qa_findings"]`).
"""
from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from psycopg.types.json import Jsonb

from .db import get_engine, storage_srid
from .errors import NotFoundError
from .model import QAFinding


def qa_counts(findings: Iterable[QAFinding]) -> dict[str, int]:
    """Findings by rule, rules in alphabetical order."""
    c: dict[str, int] = {}
    for f in findings:
        c[f.rule] = c.get(f.rule, 0) + 1
    return dict(sorted(c.items()))


def dataset_report(dataset: str, engine: sa.Engine | None = None) -> dict:
    """The stored report of a dataset (its import options are report["options"], a JSON string)."""
    engine = engine or get_engine()
    with engine.connect() as c:
        report = c.scalar(sa.text("select report from datasets where name = :n"), {"n": dataset})
    if report is None:
        raise NotFoundError(f"no dataset named {dataset!r}", hint="`cim datasets` lists them")
    return report


def replace_findings(dataset: str, rules: Iterable[str], findings: Iterable[QAFinding],
                     engine: sa.Engine | None = None) -> dict[str, int]:
    """Replace the dataset's findings of `rules` with `findings`, in one transaction, and update the
    dataset's QA counts. A finding's object_key names an object of the dataset. Returns the dataset's
    counts by rule over all its findings."""
    engine = engine or get_engine()
    findings = list(findings)
    with engine.begin() as c:
        row = c.execute(sa.text("select id, report, counts from datasets where name = :n for update"),
                        {"n": dataset}).first()
        if row is None:
            raise NotFoundError(f"no dataset named {dataset!r}", hint="`cim datasets` lists them")
        c.execute(sa.text("delete from qa_findings where dataset_id = :d and rule = any(:r)"),
                  {"d": row.id, "r": list(rules)})
        if findings:
            _insert(c, row.id, findings, storage_srid(engine))
        by_rule = dict(c.execute(sa.text("select rule, count(*) from qa_findings where dataset_id = :d "
                                         "group by rule order by rule"), {"d": row.id}).all())
        counts = {k: v for k, v in row.counts.items() if k != "qa_findings"}
        if by_rule:
            counts["qa_findings"] = sum(by_rule.values())
        c.execute(sa.text("update datasets set report = :rep, counts = :c where id = :d"),
                  {"rep": Jsonb({**row.report, "qa": by_rule}), "c": Jsonb(counts), "d": row.id})
    return by_rule


def _insert(c: sa.Connection, dataset_id: int, findings: list[QAFinding], srid: int) -> None:
    """Findings in one statement, in their order; object keys resolve to the dataset's objects."""
    loc = [f.location or (None, None) for f in findings]
    c.execute(sa.text("""
        insert into qa_findings (dataset_id, object_id, rule, severity, message, geom)
        select :d, o.id, f.rule, f.severity, f.message,
               case when f.x is not null then st_setsrid(st_makepoint(f.x, f.y), :srid) end
        from unnest(cast(:keys as text[]), cast(:rules as text[]), cast(:sev as text[]), cast(:msg as text[]),
                    cast(:x as float8[]), cast(:y as float8[]))
             with ordinality f(key, rule, severity, message, x, y, n)
        left join city_objects o on o.dataset_id = :d and o.key = f.key
        order by f.n"""), {
        "d": dataset_id, "srid": srid, "keys": [f.object_key for f in findings],
        "rules": [f.rule for f in findings],
        "sev": [f.severity for f in findings], "msg": [f.message for f in findings],
        "x": [float(p[0]) if p[0] is not None else None for p in loc],
        "y": [float(p[1]) if p[1] is not None else None for p in loc]})


def qa_summary(dataset: str, engine: sa.Engine | None = None, examples: int = 3) -> dict[str, dict]:
    """Stored QA findings of a dataset: rule -> {"count", "severity", "examples": [message...]}."""
    engine = engine or get_engine()
    with engine.connect() as c:
        ds = c.scalar(sa.text("select id from datasets where name = :n"), {"n": dataset})
        if ds is None:
            raise NotFoundError(f"no dataset named {dataset!r}", hint="`cim datasets` lists them")
        rows = c.execute(sa.text("""
            select rule, max(severity), count(*), (array_agg(message order by id))[1:(:k)]
            from qa_findings where dataset_id = :d group by rule order by rule"""),
                         {"d": ds, "k": examples}).all()
    return {r[0]: {"severity": r[1], "count": r[2], "examples": list(r[3])} for r in rows}


FINDINGS_SQL = """
    select f.id, f.rule, f.severity, f.message, f.object_id, a.key as object_key, f.related_id,
           b.key as related_key, f.details, st_x(f.geom) as x, st_y(f.geom) as y,
           st_x(st_transform(f.geom, 4326)) as lon, st_y(st_transform(f.geom, 4326)) as lat,
           array_remove(array[sa.utility, sb.utility], null) as utilities, count(*) over () as matched
    from qa_findings f
    left join city_objects a on a.id = f.object_id left join city_objects b on b.id = f.related_id
    left join pipe_segments sa on sa.object_id = f.object_id
    left join pipe_segments sb on sb.object_id = f.related_id
    where f.run_id = :run{filters}
    order by f.id limit :limit offset :offset"""


def run_findings(run_id: int, *, rule: str | None = None, severity: str | None = None, utility: str | None = None,
                 bbox: tuple[float, float, float, float] | None = None, limit: int = 1000, offset: int = 0,
                 engine: sa.Engine | None = None) -> tuple[int, list[dict]]:
    """A stored run's findings, filtered: rule, severity (error | warning | info), utility (of either pipe
    the finding names), bbox (xmin, ymin, xmax, ymax in the storage CRS). Returns (number matched, the
    findings from `offset`, at most `limit`), each with both objects' ids and keys, its details (measured,
    required, rule, source...), its location in the storage CRS (x, y) and in lon/lat."""
    engine = engine or get_engine()
    filters, params = [], {"run": run_id, "limit": limit, "offset": offset}
    for name, value, sql in (("rule", rule, "f.rule = :rule"), ("severity", severity, "f.severity = :severity"),
                             ("utility", utility, ":utility in (sa.utility, sb.utility)")):
        if value is not None:
            filters.append(sql)
            params[name] = value
    if bbox is not None:
        filters.append("f.geom && st_makeenvelope(:x0, :y0, :x1, :y1, :srid)")
        params |= dict(zip(("x0", "y0", "x1", "y1"), bbox)) | {"srid": storage_srid(engine)}
    with engine.connect() as c:
        if c.scalar(sa.text("select 1 from analysis_runs where id = :r"), {"r": run_id}) is None:
            raise NotFoundError(f"no analysis run {run_id}", hint="an analysis prints its run id")
        rows = c.execute(sa.text(FINDINGS_SQL.format(filters="".join(f" and {f}" for f in filters))),
                         params).mappings().all()
    matched = rows[0]["matched"] if rows else 0
    return matched, [{k: v for k, v in r.items() if k != "matched"} for r in rows]

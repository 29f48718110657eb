"""The monitored length of each pipe network, for the health-check indicator 市政管网管线智能化监测管理率
(share of municipal pipe length under intelligent monitoring). A segment counts as monitored when a
sensor is bound to it or to one of its end nodes; this reading of the indicator is ours (the indicator's
own definition of "monitored" was not confirmed), so the run records it as the rule."""
from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from cim_core.db import get_engine
from cim_core.runs import record_run

RULE = {"indicator": "市政管网管线智能化监测管理率", "monitored": "a sensor bound to the segment or to one of its "
        "end nodes", "source": "issue 17; the indicator's definition of monitored length not confirmed"}


def monitored(segment: str) -> str:
    """SQL: whether the pipe_segments row `segment` (its alias) is monitored by RULE; the health check's
    `monitored` attribute is the same test."""
    g = segment
    return f"exists (select 1 from sensors x where x.asset_id in ({g}.object_id, {g}.from_node, {g}.to_node))"


_LENGTHS = sa.text(f"""
    select g.utility, sum(g.length_m) total_m,
           coalesce(sum(g.length_m) filter (where {monitored('g')}), 0) monitored_m
    from pipe_segments g group by g.utility order by g.utility""")


def monitored_length(engine: sa.Engine | None = None) -> dict[str, dict[str, float]]:
    """{utility: {total_m, monitored_m, share}}; recorded as an analysis run `monitoring-coverage`."""
    engine = engine or get_engine()
    started = datetime.now(UTC)
    with engine.connect() as c:
        out = {r.utility: {"total_m": round(r.total_m or 0.0, 1), "monitored_m": round(r.monitored_m, 1),
                           "share": round(r.monitored_m / r.total_m, 4) if r.total_m else 0.0}
               for r in c.execute(_LENGTHS)}
    record_run("monitoring-coverage", {}, RULE, [], out, started_at=started, engine=engine)
    return out

"""The `network-qa` process: the survey QA rules of analyses.network_qa over one stored pipe dataset."""
from __future__ import annotations

import sqlalchemy as sa

from analyses import network_qa
from cim_core.db import get_engine

from . import Context, Process, register


def _execute(inputs: dict, ctx: Context) -> dict:
    engine = get_engine()  # the analysis writes its findings: the primary
    with engine.connect() as c:
        utilities = c.scalars(sa.text(
            "select distinct s.utility from pipe_segments s join city_objects o on o.id = s.object_id "
            "join datasets d on d.id = o.dataset_id where d.name = :n"), {"n": inputs["dataset"]}).all()
    ctx.require(*(f"pipes_{u}" for u in utilities))  # the findings describe these networks
    counts = network_qa.check(inputs["dataset"], engine)
    return {"findings": counts, "rules": {"source": "CJJ 61-2017 survey practice", "rules": list(network_qa.RULES)}}


register(Process(
    id="network-qa",
    title="Pipe network survey QA",
    description="Checks a stored pipe network dataset for dangling ends, segments too long or too short, "
                "duplicate segments, tees whose degree is not 3 and nodes where the segments that meet disagree "
                "on depth; stores the findings with the dataset (replacing earlier ones) and returns their "
                "counts by rule.",
    keywords=("pipes", "QA", "CJJ 61"),
    inputs={"dataset": {"title": "Dataset", "description": "name of a pipe dataset, as /api/collections' "
                        "features name it in `dataset`", "schema": {"type": "string", "minLength": 1}}},
    outputs={"findings": {"title": "Findings by rule", "schema": {"type": "object",
                                                                  "additionalProperties": {"type": "integer"}}},
             "rules": {"title": "The rules and their source", "schema": {"type": "object"}}},
    execute=_execute,
))

"""Drainage analyses over a renewal scenario's model (cim_core.scenarios): what the plan removes is gone, what
its own datasets add is traced, and the as-is model is unchanged. The hand-made network of
tests/test_drainage_tracing.py; the plan `relief` removes r2 (R2 -> R3) and adds, as its own dataset, a relief
pipe from R9 (where the as-is flow stops) to a new outfall OUT2 below it."""
from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from analyses.drainage import misconnections, swmm_export, tracing
from cim_core import scenarios
from cim_core.errors import InputError, NotFoundError
from cim_core.model import CityObject, DatasetInfo, PipeNode, PipeSegment
from cim_core.store import write_dataset
from services import auth
from services.app import create_app

from test_drainage_tracing import GROUND, X0, Y0, drains, ids, xy  # noqa: F401  (drains: the fixture)


@pytest.fixture
def relief(drains):
    out2 = (X0 + 50, Y0 - 100, GROUND)
    write_dataset(DatasetInfo("relief-pipes", "pipes", "relief.gpkg", "r", scenario="relief"), [
        CityObject("OUT2", "pipe_node", node=PipeNode("rain", "outlet", out2, depth=GROUND - 7.5, ground_z=GROUND,
                                                      invert_z=7.5)),
        # the start lies on R9 (another dataset's manhole): a loose end that the trace joins to it
        CityObject("p9", "pipe_segment", pipe=PipeSegment("rain", np.array([[*xy("R9"), 8.7], [*out2[:2], 7.5]]),
                                                          diameter_mm=300, start_invert=8.7, end_invert=7.5,
                                                          to_node="OUT2"))], engine=drains)
    scenarios.define("relief", removes=[("drains", "r2")], engine=drains)
    return drains


def test_trace_follows_the_plan(relief):
    db = relief
    asis = tracing.trace(node="R1", direction="down", dataset="drains", engine=db)
    assert set(asis.downstream.nodes) == ids(db, ["R1", "R2", "R3", "OUT1", "R9"])
    assert asis.outfalls == sorted(ids(db, ["OUT1"]))
    plan = tracing.trace(node="R1", direction="down", scenario="relief", engine=db)
    out2 = ids(db, ["OUT2"], "relief-pipes")
    assert set(plan.downstream.nodes) == ids(db, ["R1", "R2", "R9"]) | out2  # no r2: R3 and OUT1 not reached
    assert set(plan.downstream.segments) == ids(db, ["r1", "r8"]) | ids(db, ["p9"], "relief-pipes")
    assert plan.outfalls == sorted(out2)
    # a named dataset in the scenario: the plan's removal and its own datasets apply too
    named = tracing.trace(node="R1", direction="down", dataset="drains", scenario="relief", engine=db)
    assert named.downstream == plan.downstream
    assert tracing.trace(node="R1", direction="down", scenario="现状", engine=db).downstream.nodes == \
        asis.downstream.nodes
    with pytest.raises(NotFoundError, match="no scenario"):
        tracing.trace(node="R1", scenario="nope", engine=db)

    _, key = auth.create_key("utilities", engine=db)
    with TestClient(create_app()) as c:
        url = "/api/processes/drainage-trace/execution"
        r = c.post(url, json={"inputs": {"node": "R1", "direction": "down", "scenario": "relief"}},
                   headers={"X-API-Key": key})
        assert r.status_code == 200, r.text
        assert r.json()["outfalls"] == sorted(out2)
        r = c.post(url, json={"inputs": {"node": "R1", "direction": "down"}}, headers={"X-API-Key": key})
        assert r.json()["outfalls"] == sorted(ids(db, ["OUT1"]))  # the as-is network, not the cached plan's
        r = c.post(url, json={"inputs": {"node": "R1", "scenario": "nope"}}, headers={"X-API-Key": key})
        assert r.status_code == 404


def test_outfalls_misconnections_and_export_in_a_scenario(relief):
    db = relief
    # as-is, R9 is a flow sink; the relief pipe drains it
    assert tracing.outfall_check(engine=db)["flow_sinks"] == tracing.outfall_check(scenario="relief", engine=db)[
        "flow_sinks"] + 1
    assert misconnections.check(scenario="relief", engine=db)["run_id"]
    scenarios.define("cut", removes=[("drains", "r2")], engine=db)
    asis, cut = swmm_export.build("drains", engine=db), swmm_export.build("drains", scenario="cut", engine=db)
    assert "\nr2 R2 R3 " in asis and "\nr2 " not in cut and "\nr1 R1 R2 " in cut
    with pytest.raises(InputError, match="pipe p9: both ends need a node"):  # the plan's own pipe is written too
        swmm_export.build("drains", scenario="relief", engine=db)


def test_cli_scenario(relief, cli_env):
    import json

    from test_drainage_tracing import cim

    r = cim(cli_env, "drainage", "trace", "--node", "R1", "--direction", "down", "--scenario", "relief", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["outfalls"] == sorted(ids(relief, ["OUT2"], "relief-pipes"))
    r = cim(cli_env, "drainage", "outfalls", "--scenario", "relief")
    assert r.returncode == 0 and "3 outfalls" in r.stdout and "0 flow sinks" in r.stdout, r.stdout + r.stderr
    r = cim(cli_env, "drainage", "misconnections", "--scenario", "nope")
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [r.stderr.strip()] and "no scenario" in r.stderr

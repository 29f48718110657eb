"""OGC API - Processes over the analyses, driven by a real client (OWSLib) against a running server."""
from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from owslib.ogcapi.processes import Processes
from test_api_clients import server  # noqa: F401  (a real uvicorn process on the test database)

from cim_core.model import CityObject, DatasetInfo, PipeNode, PipeSegment
from cim_core.store import write_dataset
from services import auth
from services.app import create_app

X0, Y0 = 501800.0, 3649500.0


def survey():
    """A sewer survey: a, b, c on a line; a 120 m segment (too long) and a stub whose end meets nothing."""
    nodes = [CityObject(k, "pipe_node", node=PipeNode("sewage", "manhole", (X0 + x, Y0, 50.0), depth=2.0,
                                                      ground_z=50.0, invert_z=48.0))
             for k, x in (("a", 0), ("b", 40), ("c", 160))]
    segs = [CityObject(k, "pipe_segment", attributes={"height_source": ["invert", "invert"]},
                       pipe=PipeSegment("sewage", np.array([[X0 + x0, Y0, i0 + 0.2], [X0 + x1, Y0, i1 + 0.2]]),
                                        diameter_mm=400, start_invert=i0, end_invert=i1, from_node=f, to_node=t))
            for k, x0, x1, i0, i1, f, t in (("s1", 0, 40, 48.0, 47.95, "a", "b"), ("s2", 40, 160, 47.95, 47.9, "b", "c"),
                                            ("s3", 160, 170, 47.9, 47.88, "c", None))]
    return [*nodes, *segs]


@pytest.fixture
def loaded(db):
    write_dataset(DatasetInfo("sewer-survey", "pipes", "survey.gpkg", "x", report={"kind": "pipes"}), survey(),
                  engine=db)
    return db


def test_owslib_lists_describes_and_executes(loaded, server):  # noqa: F811
    base = server
    _, key = auth.create_key("utilities", engine=loaded)
    client = Processes(f"{base}/api", headers={"X-API-Key": key})
    assert "network-qa" in [p["id"] for p in client.processes()]
    desc = client.process("network-qa")
    assert desc["inputs"]["dataset"]["schema"]["type"] == "string"
    assert "sync-execute" in desc["jobControlOptions"]
    out = client.execute("network-qa", {"dataset": "sewer-survey"})
    assert out["findings"] == {"dangling_end": 1, "segment_too_long": 1}
    with loaded.connect() as c:
        rules = c.scalars(sa.text("select rule from qa_findings order by rule")).all()
    assert rules == ["dangling_end", "segment_too_long"]
    assert "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core" in client.conformance()["conformsTo"]


def test_bad_inputs_and_access_are_problems(loaded):
    with TestClient(create_app()) as c:
        url = "/api/processes/network-qa/execution"
        r = c.post(url, json={"inputs": {"dataset": "sewer-survey"}})
        assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
        _, water = auth.create_key("water", engine=loaded)
        assert c.post(url, json={"inputs": {"dataset": "sewer-survey"}}, headers={"X-API-Key": water}).status_code == 403
        _, key = auth.create_key("utilities", engine=loaded)
        h = {"X-API-Key": key}
        for body, words in (({"inputs": {}}, "inputs.dataset: required"),
                            ({"inputs": {"dataset": 3}}, "inputs.dataset: 3 is not of type 'string'"),
                            ({"inputs": {"dataset": "x", "depth": 1}}, "unknown input 'depth'"),
                            ({"inputs": {"dataset": "x"}, "response": "ref"}, "response")):
            r = c.post(url, json=body, headers=h)
            assert r.status_code == 400 and words in r.json()["detail"], r.text
        assert c.post(url, json={"inputs": {"dataset": "nope"}}, headers=h).status_code == 404
        assert c.get("/api/processes/nope").status_code == 404

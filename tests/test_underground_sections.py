"""Cross-section and long section on the hand-made street and sewer run of underground_fixture.py."""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from fastapi.testclient import TestClient
from underground_fixture import at, sewer_run, street

from analyses.underground.sections import cross_section, long_section
from cim_core.errors import InputError, NotFoundError
from services import auth
from services.app import create_app

SVG = "{http://www.w3.org/2000/svg}"


def test_cross_section_across_the_street(db):
    street(db)
    line = {"type": "LineString", "coordinates": [list(at(10, -8)), list(at(10, 10))]}
    s = cross_section(line, engine=db)
    got = [(p["key"], p["chainage_m"], p["top_depth_m"], p["invert_depth_m"], p["gap_after_m"]) for p in s["pipes"]]
    # from y = -8 northwards: R1 at y = -2, S1 at 0, W1 at 1.5, S2 at 6.5 (T1, R2 and G1 lie elsewhere)
    assert got == [("R1", 6.0, 2.7, 3.3, 1.5), ("S1", 8.0, 2.6, 3.0, 1.15), ("W1", 9.5, 1.15, 1.45, 4.7),
                   ("S2", 14.5, 2.35, 2.65, None)]
    assert s["pipes"][2]["color"] == [0, 255, 255] and s["pipes"][2]["cover_m"] == 1.15
    assert s["length_m"] == 18.0
    svg = ET.fromstring(s["svg"])
    shapes = [e for e in svg.iter() if e.get("class") == "pipe"]
    assert len(shapes) == 4 and shapes[2].get("fill") == "rgb(0,255,255)"
    # to scale: W1's circle is 0.3 m across, S1's 0.4 m
    assert float(shapes[1].get("rx")) / float(shapes[2].get("rx")) == pytest.approx(0.4 / 0.3, rel=0.02)


def test_cross_section_bad_lines(db):
    for line, words in (({"type": "LineString", "coordinates": [list(at(0, 0))]}, "line:"),
                        ({"type": "LineString", "coordinates": [list(at(0, 0)), list(at(0, 0))]}, "two distinct"),
                        ({"type": "Point", "coordinates": list(at(0, 0))}, "expected a LineString")):
        with pytest.raises(InputError, match=words):
            cross_section(line, engine=db)


@pytest.mark.parametrize("start, end", [("M1", "M4"), ("M4", "M1")])
def test_long_section_runs_downstream_and_flags_adverse_slopes_and_steps(db, start, end):
    sewer_run(db)
    p = long_section(start, end, engine=db)
    assert [m["key"] for m in p["manholes"]] == ["M1", "M2", "M3", "M4"]
    assert [(s["key"], s["slope"]) for s in p["segments"]] == [("s1", 0.0025), ("s2", -0.00125), ("s3", 0.0075)]
    assert p["adverse"] == ["s2"] and p["steps"] == ["s3"] and p["length_m"] == pytest.approx(120.0, abs=0.01)
    svg = ET.fromstring(p["svg"])
    assert len([e for e in svg.iter(f"{SVG}polyline") if "adverse" in (e.get("class") or "")]) == 1
    assert len([e for e in svg.iter(f"{SVG}line") if e.get("class") == "manhole"]) == 4


def test_long_section_bad_manholes(db):
    sewer_run(db)
    with pytest.raises(NotFoundError):
        long_section("M1", "nope", engine=db)
    with pytest.raises(InputError, match="two different"):
        long_section("M2", "M2", engine=db)


def test_sections_over_http_and_cli(db, cli_env, tmp_path):
    street(db)
    sewer_run(db)
    _, key = auth.create_key("utilities", engine=db)
    line = {"type": "LineString", "coordinates": [list(at(10, -8)), list(at(10, 10))]}
    with TestClient(create_app()) as c:
        r = c.post("/api/processes/underground-cross-section/execution", json={"inputs": {"line": line}},
                   headers={"X-API-Key": key})
        assert r.status_code == 200 and [p["key"] for p in r.json()["pipes"]] == ["R1", "S1", "W1", "S2"]
        r = c.post("/api/processes/underground-long-section/execution", json={"inputs": {"start": "M1", "end": "M4"}},
                   headers={"X-API-Key": key})
        assert r.status_code == 200 and r.json()["adverse"] == ["s2"]
        r = c.post("/api/processes/underground-cross-section/execution",
                   json={"inputs": {"line": {"type": "LineString", "coordinates": [list(at(0, 0))]}}},
                   headers={"X-API-Key": key})
        assert r.status_code == 400
    out = tmp_path / "p.svg"
    r = subprocess.run([sys.executable, "-m", "services.cli", "analyse", "profile", "M4", "M1", "--svg", str(out),
                        "--json"], check=False, capture_output=True, text=True, env=cli_env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout[r.stdout.index("{"):])["steps"] == ["s3"] and out.read_text().startswith("<svg")

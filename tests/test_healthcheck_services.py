"""The health check through its services: the `cim healthcheck` commands, the HTTP endpoints and the
`healthcheck-run` process (OWSLib against a real uvicorn), on the hand-made district of test_healthcheck."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from owslib.ogcapi.processes import Processes
from test_api_clients import server  # noqa: F401  (a real uvicorn process on the test database)
from test_healthcheck import fixture_objects

from cim_core.model import DatasetInfo
from cim_core.store import write_dataset
from services import auth
from services.app import create_app

ROOT = Path(__file__).resolve().parents[1]


def cim(env, *args):
    return subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=ROOT, env={**env, "COLUMNS": "250"},
                          capture_output=True, text=True, timeout=300, check=False)


def test_cli_run_compare_problems_export(db, cli_env, tmp_path):
    write_dataset(DatasetInfo("hc-fixture", "test", "fixture", "x"), fixture_objects(), engine=db)
    first = cim(cli_env, "healthcheck", "run", "--year", "2024")
    assert first.returncode == 0, first.stderr
    assert "公园绿化活动场地服务半径覆盖率" in first.stdout and "58.00" in first.stdout and "80.00" in first.stdout
    assert "no data" in first.stdout  # no waterlogging points stored
    assert cim(cli_env, "healthcheck", "run", "--year", "2025", "--only", "park_coverage").returncode == 0
    cmp = cim(cli_env, "healthcheck", "compare", "2024", "2025")
    assert cmp.returncode == 0 and "park_coverage" in cmp.stdout and "+0.00" in cmp.stdout
    probs = cim(cli_env, "healthcheck", "problems", "2024")
    assert "西街道" in probs.stdout and "C2: 不在服务范围内" in probs.stdout
    out = tmp_path / "体检.xlsx"
    assert cim(cli_env, "healthcheck", "export", "2024", "--out", str(out)).returncode == 0
    assert load_workbook(out)["问题清单"].max_row > 1
    pdf = tmp_path / "报告.pdf"
    rep = cim(cli_env, "healthcheck", "report", "2025", "--out", str(pdf))
    assert rep.returncode == 0, rep.stderr
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 5000
    page = tmp_path / "report.html"
    assert cim(cli_env, "healthcheck", "report", "2025", "--out", str(page)).returncode == 0
    text = page.read_text(encoding="utf-8")
    assert "2025年城市体检报告" in text and "西街道" in text and "+0" in text  # the change from 2024
    bad = cim(cli_env, "healthcheck", "compare", "2024", "2031")
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1 and "2031" in bad.stderr
    helps = cim(cli_env, "healthcheck", "run", "--help")
    assert "Example: cim healthcheck run --year 2025" in helps.stdout


def test_endpoints_and_process(db, server):  # noqa: F811
    write_dataset(DatasetInfo("hc-fixture", "test", "fixture", "x"), fixture_objects(), engine=db)
    _, key = auth.create_key("utilities", engine=db)
    client = Processes(f"{server}/api", headers={"X-API-Key": key})
    assert "healthcheck-run" in [p["id"] for p in client.processes()]
    out = client.execute("healthcheck-run", {"year": 2025})
    assert round(out["district"]["park_coverage"]["straight_value"], 6) == 80.0
    assert out["district"]["waterlogging_points"]["value"] is None and out["problems"] > 0
    with TestClient(create_app()) as c:
        doc = c.get("/api/healthcheck").json()
        assert doc["years"][0]["year"] == 2025 and len(doc["set"]["indicators"]) >= 10
        fc = c.get("/api/healthcheck/2025/results", params={"indicator": "park_coverage", "level": "street"}).json()
        west = next(f for f in fc["features"] if f["properties"]["unit_key"] == "W")
        assert round(west["properties"]["value"], 6) == 40.0 and west["geometry"]["type"] == "Polygon"
        assert 113 < west["geometry"]["coordinates"][0][0][0] < 115  # WGS84 longitude
        probs = c.get("/api/healthcheck/2025/problems").json()["problems"]
        assert any(p["object_key"] == "C2" for p in probs)
        missing = c.get("/api/healthcheck/2019/results")
        assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")
        bad = c.post("/api/processes/healthcheck-run/execution", json={"inputs": {"year": "soon"}},
                     headers={"X-API-Key": key})
        assert bad.status_code == 400

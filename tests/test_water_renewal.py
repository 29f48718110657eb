"""The renewal programme on the hand-made valve network: ranking, year-by-year allocation, export."""
from __future__ import annotations

import csv

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from test_water_isolation import hand_made

from analyses.water import renewal
from cim_core.errors import InputError


def materials(db, ids, spec: dict[str, tuple[str, int]]) -> None:
    with db.begin() as c:
        c.execute(sa.text("update pipe_segments set material = 'PE', install_year = 2015"))
        for name, (material, year) in spec.items():
            c.execute(sa.text("update pipe_segments set material = :m, install_year = :y where object_id = :i"),
                      {"m": material, "y": year, "i": ids[name]})


def test_programme_ranks_and_fills_the_years(db, tmp_path):
    ids = hand_made(db, tmp_path)
    # three 80 m cast-iron mains of 1985 (the national plan names them); a ductile main of 1990 is within its life
    materials(db, ids, {"p2": ("cast iron", 1985), "p4": ("灰口铸铁", 1985), "p6": ("cast iron", 1985),
                        "p11": ("ductile iron", 1990)})
    r = renewal.programme(target_km=0.18, target_date="2027-12-31", start_year=2025, engine=db)
    # criticality orders them: p2 (780 m out of service), p4 (680), p6 (200); 60 m a year: one a year
    assert [(p["id"], p["year"]) for p in r["pipes"]] == [(ids["p2"], 2025), (ids["p4"], 2026), (ids["p6"], 2027)]
    # relative to the worst pipe, p1 next to the reservoir (800 m)
    assert r["pipes"][0]["f_criticality"] == pytest.approx(780 / 800) and r["pipes"][2]["f_criticality"] == pytest.approx(0.25)
    assert r["backlog_km"] == pytest.approx(0.24) and r["planned_km"] == pytest.approx(0.24) and r["reachable"]
    assert [y["km"] for y in r["years"]] == pytest.approx([0.08, 0.08, 0.08])
    assert [y["cost_cny"] for y in r["years"]] == [120000, 120000, 120000]  # DN200: 1500 CNY/m (placeholder)
    short = renewal.programme(target_km=1.0, target_date="2026-12-31", start_year=2025, engine=db)
    assert not short["reachable"] and short["planned_km"] == pytest.approx(0.24)
    with db.connect() as c:
        assert c.scalar(sa.text("select count(*) from analysis_runs where analysis = 'renewal-programme'")) == 2
    # CSV and XLSX
    renewal.write_programme(r, tmp_path / "p.csv")
    with open(tmp_path / "p.csv", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    assert [row["year"] for row in rows] == ["2025", "2026", "2027"] and rows[1]["material"] == "灰口铸铁"
    renewal.write_programme(r, tmp_path / "p.xlsx")
    wb = load_workbook(tmp_path / "p.xlsx")
    assert wb["years"]["A2"].value == 2025 and wb["pipes"].max_row == 4
    with pytest.raises(InputError, match="write .csv or .xlsx"):
        renewal.write_programme(r, tmp_path / "p.txt")
    with pytest.raises(InputError, match="must not precede"):
        renewal.programme(target_date="2020-01-01", start_year=2025, engine=db)


def test_design_life_table_has_sources():
    table = renewal.design_life()
    assert table["cast iron"]["must_renew"] and table["灰口铸铁"]["life"] == 30
    assert all(row["source"] for row in table.values())
    assert abs(sum(renewal.config()["weights"].values()) - 1.0) < 1e-9


def test_cli_and_process(db, tmp_path, cli_env):
    import subprocess
    from pathlib import Path

    from fastapi.testclient import TestClient

    from services import auth
    from services.app import create_app

    ids = hand_made(db, tmp_path)
    materials(db, ids, {"p2": ("cast iron", 1985)})
    out = subprocess.run([".venv/bin/cim", "water", "renewal", "--target-km", "0.05", "--by", "2026-12-31",
                          "--start-year", "2026", "--out", str(tmp_path / "r.xlsx")], env=cli_env,
                         cwd=Path(__file__).parents[1], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "0.08 of 0.05 km planned by 2026-12-31" in out.stdout and (tmp_path / "r.xlsx").exists()
    _, key = auth.create_key("water", engine=db)
    with TestClient(create_app()) as c:
        url = "/api/processes/renewal-programme/execution"
        r = c.post(url, json={"inputs": {"target_km": 0.05, "start_year": 2026, "target_date": "2026-12-31"}},
                   headers={"X-API-Key": key})
        assert r.status_code == 200 and r.json()["programme"]["pipes"][0]["id"] == ids["p2"]
        bad = c.post(url, json={"inputs": {"weights": {"colour": 1}}}, headers={"X-API-Key": key})
        assert bad.status_code == 400 and "inputs.weights" in bad.json()["detail"]

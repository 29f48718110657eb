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


def test_incidents_import_refuses_bad_rows_and_feeds_the_ranking(db, tmp_path, cli_env):
    import subprocess
    from pathlib import Path

    from test_water_isolation import X0, Y0

    from importers import incidents

    ids = hand_made(db, tmp_path)
    materials(db, ids, {"p2": ("cast iron", 1985), "p6": ("cast iron", 1985)})
    f = tmp_path / "repairs.csv"
    f.write_text("date,kind,pipe,x,y\n"
                 f"2024-03-02,burst,{ids['p6']},,\n"
                 f"2024/07/19,leak,,{X0 + 200.5},{Y0 + 60}\n"  # on p6, by position
                 f"32/13/2024,burst,{ids['p2']},,\n"
                 "2024-05-01,leak,999999,,\n"
                 f"2024-05-02,leak,,{X0 + 5000},{Y0}\n", encoding="utf-8")
    r = incidents.import_file(f, engine=db)
    assert r.report["stored"] == 2 and r.counts == {"incident": 2}
    assert [(x["row"], x["reason"]) for x in r.report["refused"]] == [
        (4, "date '32/13/2024' does not parse"), (5, "no current water pipe '999999'"),
        (6, f"no water pipe within 30 m of ({X0 + 5000:.1f}, {Y0:.1f})")]
    with db.connect() as c:
        on = c.execute(sa.text("select (attributes->>'pipe_id')::bigint, valid_from from city_objects "
                               "where class = 'incident' order by id")).all()
    assert [p for p, _ in on] == [ids["p6"], ids["p6"]] and str(on[1][1]) == "2024-07-19"
    # p6's two repairs count in its score; p2 has none
    s = renewal.programme(target_km=0.16, target_date="2026-12-31", start_year=2025, engine=db)
    by = {p["id"]: p for p in s["pipes"]}
    assert by[ids["p6"]]["f_repairs"] == 1.0 and by[ids["p2"]]["f_repairs"] == 0.0
    # a file with nothing to store is refused in one line
    bad = tmp_path / "bad.csv"
    bad.write_text("date,kind,pipe\nyesterday,burst,1\n", encoding="utf-8")
    out = subprocess.run([".venv/bin/cim", "import", "incidents", str(bad)], env=cli_env,
                         cwd=Path(__file__).parents[1], capture_output=True, text=True, check=False)
    assert out.returncode == 1 and out.stderr.strip().count("\n") == 0 and "row 2: date 'yesterday'" in out.stderr
    ok = subprocess.run([".venv/bin/cim", "import", "incidents", str(f), "--dataset", "again"], env=cli_env,
                        cwd=Path(__file__).parents[1], capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and "2 incidents stored, 3 rows refused" in ok.stdout and "row 5:" in ok.stdout

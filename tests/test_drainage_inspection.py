"""CCTV inspection import and grading (CJJ 181-2012), on two sewers whose grades are worked out here.

    A -w1 (40 m, 1600 mm)-> B -w2 (40 m, 1200 mm)-> C

w1: PL grade 3 (score 5), SL grade 1 (0.5), CJ grade 2 (2, given by its manhole pair B-A).
    F = max(5, mean 2.75) = 5: structural III; G = 2: functional II; E = 10 (>= 1500 mm), K = 3, T = 0:
    RI = 0.7*5 + 0.1*3 + 0.05*10 = 4.3: repair priority III; MI = 0.8*2 + 0.15*3 + 0.05*10 = 2.55: II.
w2: BX grade 4 repaired, TJ grade 2 (2): F = 2: II; G = 0: I; E = 6: RI = 1.4 + 0.3 + 0.3 = 2.0: II.
"""
from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from analyses.drainage import inspection
from cim_core.model import CityObject, DatasetInfo, PipeNode, PipeSegment
from cim_core.store import write_dataset
from importers import inspection as importer

X0, Y0 = 501800.0, 3649500.0
CSV = """segment,from_manhole,to_manhole,date,code,position_m,grade,remarks,repaired
w1,,,2025-05-01,PL,10,3,crack at crown,
,B,A,2025-05-01,CJ,12,2,,
w1,,,2025-05-01,SL,20,1,,
w2,,,2025-05-02,BX,5,4,,2025-06-01
w2,,,2025-05-02,TJ,30,2,,
w1,,,2025-05-01,XX,3,2,,
w1,,,2025-05-01,PL,3,5,,
w1,,,2025-05-01,FS,3,4,,
w1,,,2025-05-01,PL,45,2,,
nope,,,2025-05-01,PL,3,2,,
w1,,,yesterday,PL,3,2,,
"""


@pytest.fixture
def sewers(db):
    objs = [CityObject(k, "pipe_node", node=PipeNode("sewage", "manhole", (X0 + x, Y0, 60.0), ground_z=60.0,
                                                     invert_z=57.0))
            for k, x in (("A", 0), ("B", 40), ("C", 80))]
    objs += [CityObject(k, "pipe_segment", pipe=PipeSegment("sewage", np.array([[X0 + x, Y0, 57.0], [X0 + x + 40, Y0, 57.0]]),
                                                            diameter_mm=d, start_invert=57.0, end_invert=57.0,
                                                            from_node=a, to_node=b))
             for k, x, d, a, b in (("w1", 0, 1600, "A", "B"), ("w2", 40, 1200, "B", "C"))]
    write_dataset(DatasetInfo("sewers", "pipes", "sewers.gpkg", "s"), objs, engine=db)
    return db


def test_import_refuses_bad_rows_and_keeps_the_rest(sewers, tmp_path):
    src = tmp_path / "cctv-2025.csv"
    src.write_text(CSV, encoding="utf-8")
    res = importer.import_file(src, engine=sewers)
    assert res.dataset == "cctv-2025" and res.imported == 5
    reasons = {r["line"]: r["reason"] for r in res.refused}
    assert sorted(reasons) == [7, 8, 9, 10, 11, 12]
    assert "unknown defect code 'XX'" in reasons[7]
    assert "grade 5 is not defined for PL" in reasons[8] and "grade 4 is not defined for FS" in reasons[9]
    assert "position 45 m lies outside the pipe (0 to 40.00 m)" in reasons[10]
    assert "no drainage pipe 'nope'" in reasons[11] and "not a date" in reasons[12]
    again = importer.import_file(src, engine=sewers)  # a repeated import replaces
    assert again.imported == 5
    with sewers.connect() as c:
        assert c.scalar(sa.text("select count(*) from pipe_inspections")) == 5


def test_grading_and_repair_list(sewers, tmp_path):
    src = tmp_path / "cctv.csv"
    src.write_text(CSV, encoding="utf-8")
    importer.import_file(src, engine=sewers)
    out = inspection.grade(engine=sewers)
    assert out["segments"] == 2 and out["inspected_km"] == pytest.approx(0.08)
    assert out["graded_3_4_km"] == pytest.approx(0.04) and out["repairs_done"] == 1
    assert out["progress_pct"] == pytest.approx(100 * 0.08 / 2000)
    with sewers.connect() as c:
        got = {k: d for k, d in c.execute(sa.text(
            "select o.key, f.details from qa_findings f join city_objects o on o.id = f.object_id "
            "where f.run_id = :r"), {"r": out["run_id"]})}
    w1, w2 = got["w1"], got["w2"]
    assert (w1["F"], w1["structural_grade"], w1["G"], w1["functional_grade"]) == (5, 3, 2, 2)
    assert (w1["RI"], w1["repair_priority"], w1["MI"], w1["maintenance_priority"]) == (4.3, 3, 2.55, 2)
    assert (w2["F"], w2["structural_grade"], w2["G"], w2["functional_grade"], w2["RI"], w2["repair_priority"]) == \
        (2, 2, 0, 1, 2.0, 2)
    assert [r["segment"] for r in inspection.repair_list(out["run_id"], engine=sewers)] == ["w1"]


def test_cli(sewers, cli_env, tmp_path):
    import subprocess
    from pathlib import Path

    from openpyxl import load_workbook

    root = Path(__file__).parent.parent

    def cim(*args):
        return subprocess.run([str(root / ".venv/bin/python"), "-m", "services.cli", *args], capture_output=True,
                              text=True, cwd=root, env={**cli_env, "PYTHONPATH": str(root), "COLUMNS": "200"},
                              check=False)

    src = tmp_path / "cctv.csv"
    src.write_text(CSV, encoding="utf-8")
    r = cim("import", "inspection", str(src))
    assert r.returncode == 0 and "5 records imported, 6 refused" in r.stdout and "line 7: unknown" in r.stdout
    r = cim("drainage", "grade")
    assert r.returncode == 0 and "0.080 km inspected of 2000 km" in r.stdout, r.stdout + r.stderr
    run_id = r.stdout.split()[1].rstrip(":")
    assert cim("drainage", "repairs", run_id, "--out", str(tmp_path / "r.xlsx")).returncode == 0
    ws = load_workbook(tmp_path / "r.xlsx").active
    assert [c.value for c in ws[2]][:3] == ["w1", int(ws[2][1].value), 3]
    assert cim("drainage", "repairs", run_id, "--out", str(tmp_path / "r.csv")).returncode == 0
    assert (tmp_path / "r.csv").read_text().splitlines()[1].startswith("w1,")
    r = cim("drainage", "repairs", run_id, "--out", str(tmp_path / "r.txt"))
    assert r.returncode == 1 and "csv or .xlsx" in r.stderr


def test_process(sewers, tmp_path):
    from fastapi.testclient import TestClient

    from services import auth
    from services.app import create_app

    src = tmp_path / "cctv.csv"
    src.write_text(CSV, encoding="utf-8")
    importer.import_file(src, engine=sewers)
    _, key = auth.create_key("utilities", engine=sewers)
    with TestClient(create_app()) as c:
        url = "/api/processes/drainage-inspection-grade/execution"
        r = c.post(url, json={"inputs": {"target_km": 0.16}}, headers={"X-API-Key": key})
        assert r.status_code == 200 and r.json()["run"]["progress_pct"] == pytest.approx(50.0), r.text
        assert c.post(url, json={"inputs": {"target_km": -1}}, headers={"X-API-Key": key}).status_code == 400

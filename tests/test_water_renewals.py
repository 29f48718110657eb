"""Renewals recorded as new versions of segments, and progress against the target by year and by street,
on the hand-made valve network with two named roads; numbers worked out here."""
from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import pytest
import shapely
import sqlalchemy as sa
from openpyxl import load_workbook
from test_water_isolation import X0, Y0, hand_made, write_layer

from analyses.healthcheck import assets, definitions
from analyses.healthcheck.inputs import ModelInputs
from analyses.healthcheck.kinds import Unit
from analyses.water import isolation, renewals
from cim_core.errors import InputError
from importers import gis

ROOT = Path(__file__).parents[1]


def with_roads(db, tmp_path) -> dict[str, int]:
    ids = hand_made(db, tmp_path)
    roads = tmp_path / "roads.gpkg"
    # 人民路 along the main (y = 0), 解放路 along the loop E-F (y = 100)
    write_layer(roads, "roads", [shapely.LineString([(X0 - 10, Y0), (X0 + 410, Y0)]),
                                 shapely.LineString([(X0 + 190, Y0 + 100), (X0 + 310, Y0 + 100)])],
                id=["R1", "R2"], name=["人民路", "解放路"])
    gis.import_file(roads, layer="roads", kind="roads", dataset="roads", engine=db)
    return ids


def test_renewals_are_versions_and_progress_is_tracked(db, tmp_path):
    ids = with_roads(db, tmp_path)
    before = isolation.isolate(ids["p4"], engine=db)
    r = renewals.record([{"segment": str(ids["p2"]), "material": "PE", "year": 2024, "date": "2024-06-01"}], engine=db)
    assert r["km"] == pytest.approx(0.08) and r["renewed"][0]["previous_material"] is None
    key_p4 = next(k for k, i in _keys(db).items() if i == ids["p4"])
    renewals.record([{"segment": key_p4, "material": "ductile iron", "year": 2025, "date": "2025-03-01",
                      "diameter_mm": 300}], engine=db)
    f = tmp_path / "renewals.csv"
    f.write_text(f"segment,material,year,date\n{ids['p8']},PE,2025,2025-09-01\n{ids['p12']},PE,2026,2026-01-10\n")
    assert len(renewals.record_csv(f, engine=db)["renewed"]) == 2
    with db.connect() as c:
        rows = c.execute(sa.text("""
            select o.key, o.valid_from, o.valid_to, s.material, s.install_year, s.diameter_mm
            from city_objects o join pipe_segments s on s.object_id = o.id where o.key like :k order by o.id"""),
                         {"k": key_p4 + "%"}).all()
    # the old version stays in history, closed on the renewal date; the new one keeps the key
    assert [tuple(r) for r in rows] == [
        (f"{key_p4}@2025-03-01", None, _d("2025-03-01"), None, None, 200.0),
        (key_p4, _d("2025-03-01"), None, "ductile iron", 2025, 300.0)]
    # the current network is the same graph: 14 pipes, the same isolation answer
    after = isolation.isolate(key_p4, engine=db)
    assert len(after["isolated"]["pipes"]) == len(before["isolated"]["pipes"]) == 6
    assert sorted(v["key"] for v in after["valves_to_close"]) == sorted(v["key"] for v in before["valves_to_close"])
    s = renewals.status(target_km=1.0, target_date="2027-12-31", engine=db)
    # 2024: p2 80 m; 2025: p4 80 + p8 80; 2026: p12 100 (E-F); 2027: nothing yet
    assert [(y["year"], y["km"], y["segments"]) for y in s["by_year"]] == [
        (2024, 0.08, 1), (2025, 0.16, 2), (2026, 0.1, 1), (2027, 0.0, 0)]
    assert [y["cumulative_km"] for y in s["by_year"]] == [0.08, 0.24, 0.34, 0.34]
    assert s["renewed_km"] == 0.34 and s["share"] == 0.34 and s["remaining_km"] == 0.66
    assert [(b["street"], b["km"], b["segments"]) for b in s["by_street"]] == [("人民路", 0.24, 3), ("解放路", 0.1, 1)]
    # exports
    renewals.write_status(s, tmp_path / "s.xlsx")
    wb = load_workbook(tmp_path / "s.xlsx")
    assert wb.sheetnames == ["segments", "by_year", "by_street", "summary"] and wb["segments"].max_row == 5
    renewals.write_status(s, tmp_path / "s.csv")
    with open(tmp_path / "s.csv", encoding="utf-8-sig") as fh:
        assert [r["street"] for r in csv.DictReader(fh)] == ["人民路", "人民路", "人民路", "解放路"]
    # the health check counts the same renewals against the 144.34 km, and each main once (current versions)
    iset = definitions.load(None)
    district = [Unit("district", "d", "district", shapely.box(X0 - 1000, Y0 - 1000, X0 + 1000, Y0 + 1000), None)]
    for year, km in ((2025, 0.24), (2026, 0.34)):
        v, = assets.renewal_progress(iset.indicator("water_main_renewal"), district, ModelInputs(iset, db, year))
        assert v.details["renewed_m"] == pytest.approx(km * 1000, abs=0.5)
        assert v.value == pytest.approx(100 * km / 144.34, rel=1e-3)
    with db.connect() as c:
        total = c.scalar(sa.text("select sum(length_m) from pipe_segments s join city_objects o on o.id = s.object_id "
                                 "where s.utility = 'water' and o.valid_to is null"))
    v, = assets.past_design_life(iset.indicator("old_water_mains"), district, ModelInputs(iset, db, 2026))
    assert v.details["total_m"] == pytest.approx(total, abs=0.5)


def _d(text):
    import datetime as dt
    return dt.date.fromisoformat(text)


def _keys(db) -> dict[str, int]:
    with db.connect() as c:
        return dict(c.execute(sa.text("select key, id from city_objects")).all())


def test_bad_renewals_write_nothing(db, tmp_path):
    ids = with_roads(db, tmp_path)
    count = lambda: len(_keys(db))  # noqa: E731
    n = count()
    with pytest.raises(InputError, match="no current water segment '999999'"):
        renewals.record([{"segment": "999999", "material": "PE", "year": 2025}], engine=db)
    f = tmp_path / "bad.csv"
    f.write_text(f"segment,material,year,date\n{ids['p2']},PE,2025,2025-01-01\n{ids['p4']},PE,2025,2025-13-01\n")
    with pytest.raises(InputError, match="row 2"):
        renewals.record_csv(f, engine=db)
    with pytest.raises(InputError, match="in the future"):
        renewals.record([{"segment": ids["p2"], "material": "PE", "year": 2025, "date": "2999-01-01"}], engine=db)
    (tmp_path / "cols.csv").write_text("pipe,material\n1,PE\n")
    with pytest.raises(InputError, match="missing column"):
        renewals.record_csv(tmp_path / "cols.csv", engine=db)
    assert count() == n


def test_cli_and_api(db, tmp_path, cli_env):
    from fastapi.testclient import TestClient

    from services import auth
    from services.app import create_app

    ids = with_roads(db, tmp_path)
    cim = [str(ROOT / ".venv/bin/cim"), "renewal"]
    out = subprocess.run([*cim, "record", "--segment", str(ids["p12"]), "--material", "PE", "--year", "2025",
                          "--date", "2025-05-05"], env=cli_env, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    out = subprocess.run([*cim, "status", "--target-km", "0.5", "--by", "2026-12-31", "--out",
                          str(tmp_path / "st.xlsx")], env=cli_env, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and "0.100 of 0.5 km" in out.stdout and "解放路" in out.stdout, out.stdout + out.stderr
    bad = subprocess.run([*cim, "record", "--segment", "nope", "--material", "PE", "--year", "2025"], env=cli_env,
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode != 0 and "no current water segment 'nope'" in bad.stdout + bad.stderr
    _, water = auth.create_key("water", engine=db)
    _, other = auth.create_key("utilities", engine=db)
    body = {"renewals": [{"segment": ids["p2"], "material": "PE", "year": 2026, "date": "2026-01-02"}]}
    with TestClient(create_app()) as c:
        assert c.post("/api/water/renewals", json=body).status_code == 401
        assert c.post("/api/water/renewals", json=body, headers={"X-API-Key": other}).status_code == 403
        r = c.post("/api/water/renewals", json=body, headers={"X-API-Key": water})
        assert r.status_code == 201 and r.json()["km"] == 0.08
        again = c.post("/api/water/renewals", json={"renewals": [{**body["renewals"][0], "segment": "nope"}]},
                       headers={"X-API-Key": water})
        assert again.status_code == 400 and "nope" in again.json()["detail"]
        s = c.get("/api/water/renewals/status?target_km=0.5&target_date=2026-12-31", headers={"X-API-Key": water})
        assert s.status_code == 200 and s.json()["renewed_km"] == 0.18
        x = c.get("/api/water/renewals/status?format=xlsx", headers={"X-API-Key": water})
        assert x.status_code == 200 and x.content[:2] == b"PK"

"""The sample district's low-lying area (易涝片区) floods in a 3-year design storm run through `cim analyse storm`,
and its flooding manholes are what the health check counts as 严重易涝积水点.

Independent check of why it floods: the rational method (GB 50014-2021 4.2: Q = psi q F) with the storm
formula's 10-minute intensity over the parcels that drain to the area's upper manhole (through the pipes)
gives a peak far above what the area's old 200 mm pipe carries even full under the whole head from the sunk
rim down to the far end's invert (Manning). The generator picks the manhole by a rule of its own (3-8 ha
drain to it, the lowest such), so the check holds at any scale: the demo's scale 1 was run by hand on
2026-12-01 (the area's upper manhole floods 428 m3, 3.73 ha drain to it), this test runs scale 0.1 (118 m3)."""
from __future__ import annotations

import math
import subprocess
from pathlib import Path

import shapely
import sqlalchemy as sa

from analyses.drainage import storm
from analyses.healthcheck import yearly
from importers import gis
from sample_models.district import drainage, generate

ROOT = Path(__file__).parent.parent


def test_low_lying_area_floods_in_a_3_year_storm(db, cli_env, tmp_path):
    manifest = generate(tmp_path, scale=0.1, seed=7)
    lowland = manifest["drainage"]["lowland"]
    assert lowland["manholes"] and 3.0 <= lowland["drained_ha"] <= 8.0
    gis.import_file(tmp_path / "district.gpkg", layer="pipes", kind="pipes", dataset="sample-pipes", engine=db)
    gis.import_file(tmp_path / "district.gpkg", layer="landuse", kind="landuse", dataset="sample-landuse", engine=db)
    drainage.load(tmp_path, engine=db)
    with db.connect() as c:
        pipe = c.execute(sa.text("""select s.diameter_mm, n.ground_z, s.end_invert, st_length(s.centerline)
            from pipe_segments s join city_objects o on o.id = s.object_id join pipe_nodes n on n.object_id = s.from_node
            where o.key = :k"""), {"k": lowland["pipes"][0]}).one()
        # a depression: the sunk manhole lies lower than every other manhole within 100 m
        rim = c.execute(sa.text("""select n.ground_z - min(m.ground_z) from pipe_nodes n join city_objects o
            on o.id = n.object_id join pipe_nodes m on st_dwithin(m.geom, n.geom, 100) and m.object_id <> n.object_id
            where o.key = :k and m.node_type = 'manhole' and m.object_id not in (
                select id from city_objects where key = any(:sunk)) group by n.ground_z"""),
                        {"k": lowland["manholes"][0], "sunk": lowland["manholes"]}).scalar_one()
        area = c.execute(sa.text("""select o.attributes ->> 'area_type' from city_objects o join datasets d
            on d.id = o.dataset_id where d.name = 'sample-drainage-areas' and o.key like '%DA002'""")).scalar_one()
    assert pipe[0] == 200 and area == "waterlogging"
    assert rim < 0, rim
    f = storm.config()["formula"]
    q10 = 167 * f["A1"] * (1 + f["C"] * math.log10(3)) / (10 + f["b"]) ** f["n"]  # L/(s ha)
    peak = 0.5 * q10 * lowland["drained_ha"] / 1000  # m3/s, psi 0.5 below every built-up class in the table
    d, head = pipe[0] / 1000, pipe[1] - pipe[2]  # from the sunk rim to the far end's invert
    full = 1 / 0.013 * math.pi * d ** 2 / 4 * (d / 4) ** (2 / 3) * math.sqrt(head / pipe[3])
    assert peak > 4 * full, (peak, full)

    r = subprocess.run([str(ROOT / ".venv/bin/python"), "-m", "services.cli", "analyse", "storm", "--dataset",
                        "sample-pipes", "--return-period", "3", "--duration", "120"], capture_output=True, text=True,
                       cwd=ROOT, env={**cli_env, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}, check=False)
    assert r.returncode == 0, r.stderr
    with db.connect() as c:
        run_id = c.scalar(sa.text("select max(id) from analysis_runs where analysis = 'drainage-storm'"))
        rows = c.execute(sa.text("""select o.key, (f.details ->> 'flooding_m3')::float, st_x(n.geom), st_y(n.geom)
            from qa_findings f join city_objects o on o.id = f.object_id join pipe_nodes n on n.object_id = o.id
            where f.run_id = :r and f.rule = 'flooding'"""), {"r": run_id}).all()
    flooded = {k: v for k, v, _, _ in rows}
    assert f"{len(flooded)} flooding manholes" in r.stdout
    there = {k: v for k, v in flooded.items() if k in lowland["manholes"]}
    assert there and max(there.values()) > 2 * storm.waterlogging_m3(storm.config()), (there, lowland)
    assert max(flooded, key=flooded.get) in there  # the area floods most

    hc = yearly.run(2025, only=["waterlogging_points"], engine=db)
    v = hc.value("waterlogging_points")
    inside = {k for k, _, x, y in rows if shapely.contains_xy(v.unit.geom, x, y)}  # the district: the built-up area
    assert v.value == len(inside) > 0 and {name for _, name in v.objects} == inside
    assert {name for _, name in v.objects} >= set(there)


def test_layers_over_http(db, tmp_path):
    """/api/drainage/{waterlogging,grades,defects}: restricted like the pipes, 404 before any run, the storm's
    flooding manholes as points, each defect at its distance along its pipe."""
    from fastapi.testclient import TestClient
    from pyproj import Transformer

    from analyses.drainage import inspection
    from services import auth
    from services.app import create_app

    generate(tmp_path, scale=0.05, seed=7)
    gis.import_file(tmp_path / "district.gpkg", layer="pipes", kind="pipes", dataset="sample-pipes", engine=db)
    gis.import_file(tmp_path / "district.gpkg", layer="landuse", kind="landuse", dataset="sample-landuse", engine=db)
    drainage.load(tmp_path, engine=db)
    _, key = auth.create_key("utilities", engine=db)
    h = {"X-API-Key": key}
    with TestClient(create_app()) as c:
        assert c.get("/api/drainage/waterlogging").status_code == 401
        r = c.get("/api/drainage/waterlogging", headers=h)
        assert r.status_code == 404 and "no drainage-storm run" in r.json()["detail"]
        run = storm.run("sample-pipes", return_period=3, duration_min=120, engine=db)
        r = c.get("/api/drainage/waterlogging", headers=h).json()
        assert r["run_id"] == run["run_id"] and r["numberReturned"] == run["flooding_points"] > 0
        vols = [f["properties"]["flooding_m3"] for f in r["features"]]
        assert vols == sorted(vols, reverse=True) and min(vols) > 0.1
        graded = inspection.grade(engine=db)
        g = c.get("/api/drainage/grades", headers=h).json()
        assert g["run_id"] == graded["run_id"] and len(g["segments"]) == graded["segments"]
        assert all(1 <= s["structural_grade"] <= 4 and 1 <= s["functional_grade"] <= 4 for s in g["segments"].values())
        d = c.get("/api/drainage/defects", headers=h).json()
    assert d["numberReturned"] > 0
    to_xy = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True)
    with db.connect() as conn:
        for f in d["features"][:20]:
            p = f["properties"]
            line = shapely.from_wkb(bytes(conn.scalar(sa.text(
                "select st_asbinary(centerline) from pipe_segments where object_id = :i"), {"i": p["segment_id"]})))
            want = line.interpolate(p["position_m"])  # 2D distance: the pipes fall by under 1 %
            x, y = to_xy.transform(*f["geometry"]["coordinates"][:2])
            assert math.hypot(x - want.x, y - want.y) < 0.05, (p, x - want.x, y - want.y)
            assert p["kind"] in ("structural", "functional") and 1 <= p["grade"] <= 4

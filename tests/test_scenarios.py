"""Renewal scenarios: a plan's model (as-is minus its removals plus its datasets) in the features API, search,
vector tiles and 3D tiles, and the comparison report, checked against numbers worked out by hand below."""
from __future__ import annotations

import subprocess
import sys

import pytest
import shapely
import sqlalchemy as sa
from fastapi.testclient import TestClient

from analyses.scenarios import compare, floors_of, record
from cim_core import scenarios
from cim_core.errors import NotFoundError
from cim_core.model import CityObject, DatasetInfo
from cim_core.store import write_dataset
from services import auth
from services.app import create_app
from services.tiles import source
from test_vector_tiles import gdal_features, tile_of

X0, Y0 = 501800.0, 3649500.0  # EPSG:4547, near 114.02E 32.98N


def box(x, y, w, d):
    return shapely.box(X0 + x, Y0 + y, X0 + x + w, Y0 + y + d)


def building(key, fp, floors=None, **attrs):
    return CityObject(key=key, cls="building", name=key, footprint=fp, zmin=0.0, zmax=3.0 * (floors or 1),
                      attributes={**({"floors": floors} if floors else {}), **attrs})


def write(name, objs, engine, scenario=None):
    write_dataset(DatasetInfo(name, "test", f"{name}.gpkg", name, scenario=scenario), objs, engine=engine)


@pytest.fixture
def town(db):
    """As-is: B1 20x10 m, 5 floors (1,000 m2), also as an IFC-like model on the same footprint; B2 10x10, 3 floors
    (300 m2); B3 30x10, 6 floors (1,800 m2); compound C1 with 100 households; park G1 50x20 (1,000 m2).
    Plan `renewal`: B1 renewed with 8 floors (1,600 m2), B2 demolished for a pocket park on its footprint
    (100 m2), a new building N 10x20, 2 floors (400 m2) on empty land, C1 revised to 90 households."""
    write("town", [building("B1", box(0, 0, 20, 10), 5), building("B2", box(40, 0, 10, 10), 3),
                   building("B3", box(80, 0, 30, 10), 6),
                   CityObject("C1", "landuse", name="C1", footprint=box(-10, -10, 140, 40), attributes={"households": 100}),
                   CityObject("G1", "green", name="G1", footprint=box(0, 100, 50, 20))], db)
    # the same building B1 as a BIM model: storeys in a property set
    write("b1-model", [CityObject("H", "building", name="B1 model", footprint=box(0, 0, 20, 10), zmin=0.0, zmax=15.0,
                                  attributes={"Pset_BuildingCommon": {"NumberOfStoreys": 5}})], db)
    write("renewal-b1", [building("B1R", box(0, 0, 20, 10), 8)], db, scenario="renewal")
    write("renewal-site", [building("N", box(0, 50, 10, 20), 2),
                           CityObject("P", "green", name="口袋公园", footprint=box(40, 0, 10, 10)),
                           CityObject("C1", "landuse", name="C1", footprint=box(-10, -10, 140, 40),
                                      attributes={"households": 90})], db, scenario="renewal")
    scenarios.define("renewal", title="旧改方案", engine=db,
                     removes=[("town", "B1"), ("town", "B2"), ("town", "C1"), ("b1-model", None)])
    return db


def names(client, collection, scenario=None):
    params = {"limit": 100} | ({"scenario": scenario} if scenario else {})
    r = client.get(f"/api/collections/{collection}/items", params=params)
    assert r.status_code == 200, r.text
    return sorted(f["properties"]["name"] for f in r.json()["features"])


def test_the_features_api_reads_the_model_of_a_scenario(town):
    client = TestClient(create_app())
    assert names(client, "buildings") == ["B1", "B1 model", "B2", "B3"]
    assert names(client, "buildings", "现状") == ["B1", "B1 model", "B2", "B3"]
    assert names(client, "buildings", "renewal") == ["B1R", "B3", "N"]
    assert names(client, "green", "renewal") == ["G1", "口袋公园"]
    r = client.get("/api/collections/buildings/items", params={"scenario": "nope"})
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    assert "nope" in r.json()["detail"]
    found = client.get("/api/search", params={"q": "B1", "scenario": "renewal"}).json()["results"]
    assert [x["name"] for x in found] == ["B1R"]
    listed = client.get("/api/scenarios").json()["scenarios"]
    assert [s["name"] for s in listed] == ["as-is", "renewal"]
    assert listed[1]["datasets"] == ["renewal-b1", "renewal-site"] and listed[1]["title"] == "旧改方案"
    assert client.get("/api/scenarios/nope").status_code == 404


def test_vector_tiles_of_a_scenario(town, tmp_path):
    client = TestClient(create_app())
    col, row = tile_of(X0 + 45, Y0 + 5, 16)

    def tile_names(collection, scenario=None):
        r = client.get(f"/api/collections/{collection}/tiles/WebMercatorQuad/16/{row}/{col}",
                       params={"scenario": scenario} if scenario else {})
        assert r.status_code == 200
        if not r.content:
            return []
        path = tmp_path / f"{collection}-{scenario}.pbf"
        path.write_bytes(r.content)
        return sorted(f["fields"]["name"] for f in gdal_features(str(path), "-oo", "Z=16", "-oo", f"X={col}",
                                                                   "-oo", f"Y={row}"))

    assert "B2" in tile_names("buildings") and "B2" not in tile_names("buildings", "renewal")
    assert "口袋公园" in tile_names("green", "renewal") and "口袋公园" not in tile_names("green")
    assert client.get(f"/api/collections/green/tiles/WebMercatorQuad/16/{row}/{col}",
                      params={"scenario": "nope"}).status_code == 404


def test_removing_an_object_removes_its_subtree(db):
    """A plan demolishing E1 removes its storeys, the storeys' elements and its installation, not E2's."""
    write("estate", [building("E1", box(0, 0, 20, 10), 2), building("E2", box(40, 0, 20, 10), 2),
                     CityObject("E1-F1", "storey", name="E1 F1", parent="E1", footprint=box(0, 0, 20, 10)),
                     CityObject("E1-W", "element", name="E1 wall", parent="E1-F1", ifc_class="IfcWall",
                                footprint=box(0, 0, 20, 1)),
                     CityObject("E1-I", "facility", name="E1 lift", parent="E1", footprint=box(1, 1, 2, 2)),
                     CityObject("E2-F1", "storey", name="E2 F1", parent="E2", footprint=box(40, 0, 20, 10))], db)
    scenarios.define("clearance", removes=[("estate", "E1")], engine=db)
    client = TestClient(create_app())
    for collection, as_is, plan in (("buildings", ["E1", "E2"], ["E2"]), ("storeys", ["E1 F1", "E2 F1"], ["E2 F1"]),
                                    ("bim_elements", ["E1 wall"], []), ("facilities", ["E1 lift"], [])):
        assert names(client, collection) == as_is and names(client, collection, "clearance") == plan, collection
    with db.connect() as c:
        plan = sorted(f.name for f in source.load_buildings(c, scenarios.resolve(c, "clearance")))
    assert plan == ["E2"]
    assert [b.key for b in compare("clearance", healthcheck=False, engine=db).demolished] == ["E1"]


def test_3d_tile_sources_take_the_scenario(town):
    with town.connect() as c:
        as_is = sorted(f.name for f in source.load_buildings(c))
        plan = sorted(f.name for f in source.load_buildings(c, scenarios.resolve(c, "renewal")))
        ground = sorted(f.name for f in source.load_ground(c, scenarios.resolve(c, "renewal")) if f.name)
        with pytest.raises(NotFoundError):
            scenarios.resolve(c, "nope")
    assert as_is == ["B1", "B1 model", "B2", "B3"] and plan == ["B1R", "B3", "N"]
    assert "口袋公园" in ground and "G1" in ground


def test_the_comparison_report_has_the_worked_out_numbers(town):
    cmp = compare("renewal", healthcheck=False, engine=town)
    assert cmp.run_id is None and runs(town) == 0
    assert record(cmp, engine=town) == cmp.run_id and runs(town) == 1
    doc = cmp.as_json()
    assert doc["buildings"] == {"demolished": 1, "new": 1, "changed": 1}
    assert [b.key for b in cmp.demolished] == ["B2"] and [b.key for b in cmp.new] == ["N"]
    (plan, was), = cmp.changed
    assert plan.key == "B1R" and was.floor_area == pytest.approx(1000.0)
    t = doc["totals"]
    # removed: B1 (1,000; its model on the same footprint counts once) + B2 (300); added: B1R 1,600 + N 400
    assert t["floor_area_m2"] == {"removed": 1300.0, "added": 2000.0, "change": 700.0}
    assert t["as_is"]["buildings"] == 4 and t["plan"]["buildings"] == 3
    assert t["as_is"]["households"] == 100 and t["plan"]["households"] == 90 and t["change"]["households"] == -10
    assert t["as_is"]["green_area_m2"] == 1000.0 and t["plan"]["green_area_m2"] == 1100.0
    with town.connect() as c:
        run = c.execute(sa.text("select analysis, summary from analysis_runs where id = :i"), {"i": cmp.run_id}).one()
        rules = c.execute(sa.text("select rule, object_id from qa_findings where run_id = :i order by rule"),
                          {"i": cmp.run_id}).all()
    assert run.analysis == "scenario_comparison" and run.summary["buildings"]["changed"] == 1
    assert [r.rule for r in rules] == ["changed", "demolished", "new"] and all(r.object_id for r in rules)


def runs(engine) -> int:
    with engine.connect() as c:
        return c.scalar(sa.text("select count(*) from analysis_runs where analysis = 'scenario_comparison'"))


def test_the_comparison_get_has_no_side_effect_and_post_records_a_run(town):
    client = TestClient(create_app())
    for _ in range(2):
        r = client.get("/api/scenarios/renewal/comparison", params={"healthcheck": "false"})
        assert r.status_code == 200 and r.json()["buildings"] == {"demolished": 1, "new": 1, "changed": 1}
        assert r.json()["run_id"] is None
    assert runs(town) == 0
    r = client.post("/api/scenarios/renewal/comparison", params={"healthcheck": "false"})
    assert r.status_code == 201 and r.json()["buildings"]["changed"] == 1
    with town.connect() as c:
        stored = c.execute(sa.text("select inputs, summary, requested_by from analysis_runs where id = :i"),
                           {"i": r.json()["run_id"]}).one()
    assert runs(town) == 1 and stored.inputs == {"scenario": "renewal", "healthcheck": False}
    assert stored.requested_by == auth.ANONYMOUS
    assert stored.summary["totals"]["change"]["households"] == -10
    for method in (client.get, client.post):
        r = method("/api/scenarios/nope/comparison")
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    assert runs(town) == 1


def test_floors_come_from_attributes_or_height():
    assert floors_of({"Pset_BuildingCommon": {"NumberOfStoreys": 6}}, None) == 6
    assert floors_of({"floors": "4"}, 30.0) == 4
    assert floors_of({}, 9.0) == 3 and floors_of({}, None) == 1


def test_cli_import_with_a_scenario_list_and_compare(cli_env, db, tmp_path):
    import json
    park = tmp_path / "park.geojson"
    ring = [list(p) for p in shapely.get_coordinates(box(0, 0, 30, 20))]
    park.write_text(json.dumps({"type": "FeatureCollection", "crs": {"type": "name", "properties": {
        "name": "urn:ogc:def:crs:EPSG::4547"}}, "features": [{"type": "Feature", "properties": {"name": "小游园"},
                                                               "geometry": {"type": "Polygon", "coordinates": [ring]}}]}))
    cim = [sys.executable, "-m", "services.cli"]
    r = subprocess.run(cim + ["import", "gis", str(park), "--as", "green", "--scenario", "plan-a"],
                       env=cli_env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(cim + ["scenarios", "list", "--json"], env=cli_env, capture_output=True, text=True)
    assert r.returncode == 0 and json.loads(r.stdout)[1]["datasets"] == ["park"]
    r = subprocess.run(cim + ["scenarios", "compare", "plan-a", "--no-healthcheck", "--json"], env=cli_env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["totals"]["change"]["green_area_m2"] == 600.0 and doc["run_id"] and runs(db) == 1
    r = subprocess.run(cim + ["scenarios", "compare", "plan-a"], env=cli_env, capture_output=True, text=True)
    assert r.returncode == 0 and "green_area_m2" in r.stdout and "+600.0" in r.stdout, r.stdout + r.stderr
    r = subprocess.run(cim + ["scenarios", "compare", "nope"], env=cli_env, capture_output=True, text=True)
    assert r.returncode != 0 and "no scenario 'nope'" in (r.stderr + r.stdout) and len((r.stderr + r.stdout).strip().splitlines()) <= 2


def test_the_sample_district_ships_its_renewal_plan(db, tmp_path):
    """`cim demo`'s district: the plan replaces the old block by its renewed model and demolishes one neighbour
    for a pocket park; the comparison finds what the generator planted (manifest `scenarios[0].expected`)."""
    from sample_models.district import generate
    from sample_models.district.manifest import define_scenarios, entries

    manifest = generate(tmp_path, scale=0.3, seed=7)
    plan = manifest["scenarios"][0]
    needed = {"sample-buildings", "sample-compounds", "sample-green", "sample-ifc-residential-old",
              "sample-ifc-residential-renewed", "sample-plan-pocket-park", "sample-plan-compounds"}
    import importlib
    for e in entries(tmp_path):
        if e.dataset in needed:
            importlib.import_module(f"importers.{e.importer}").import_file(tmp_path / e.path, engine=db, **e.options)
    define_scenarios(tmp_path, db)
    listed = {s["name"]: s for s in scenarios.list_scenarios(db)}
    assert listed["renewal"]["datasets"] == ["sample-ifc-residential-renewed", "sample-plan-compounds",
                                             "sample-plan-pocket-park"]
    cmp = compare("renewal", healthcheck=False, engine=db)
    exp = plan["expected"]
    assert [b.key for b in cmp.demolished] == exp["demolished"] and cmp.new == []
    (renewed, was), = cmp.changed
    assert renewed.dataset == "sample-ifc-residential-renewed" and was.key in exp["changed"] + ["sample-ifc-residential-old"]
    t = cmp.totals
    assert t["change"]["households"] == exp["households_change"] < 0
    assert t["change"]["green_area_m2"] == pytest.approx(exp["pocket_park_m2"], abs=0.2)
    assert t["change"]["buildings"] == -2  # the old block twice (footprint and IFC model) and its neighbour, plus the renewed one
    # removed: the old block once (largest of its two records) and the neighbour; added: the renewed block
    assert t["floor_area_m2"]["removed"] == pytest.approx(was.floor_area + cmp.demolished[0].floor_area)
    # the health check recomputed for the plan: fewer residents (households x 2.62 persons, the set's rule)
    # under the same parks (the pocket park is below the set's 2,000 m2 for a park)
    hc = {r["indicator"]: r for r in compare("renewal", engine=db).healthcheck}
    park = hc["park_area_per_capita"]
    households = t["as_is"]["households"], t["plan"]["households"]
    assert park["as_is"] and park["plan"] == pytest.approx(park["as_is"] * households[0] / households[1], rel=1e-6)


def test_3d_tiles_of_a_scenario_are_served_beside_the_as_is_ones(town, tmp_path, monkeypatch):
    monkeypatch.setenv("CIM_HOME", str(tmp_path / "home"))
    from cim_core.settings import get_settings
    from services.tiles import service
    get_settings.cache_clear()
    service.reset()
    try:
        client = TestClient(create_app())
        r = client.get("/tiles/tileset.json", params={"scenario": "renewal"}, follow_redirects=False)
        assert r.status_code == 307 and r.headers["location"].endswith("/tiles/scenarios/renewal/tileset.json")
        plan = client.get(r.headers["location"]).json()
        as_is = client.get("/tiles/tileset.json").json()
        # the plan's tiles stand on the as-is ground: one vertical offset
        assert plan["extras"]["vertical_offset"] == as_is["extras"]["vertical_offset"]
        layer = client.get("/tiles/scenarios/renewal/buildings/tileset.json")
        assert layer.status_code == 200
        import json
        home = tmp_path / "home" / "tiles"
        with town.connect() as c:
            sid = scenarios.resolve(c, "renewal")
        states = [json.loads(p.read_text()) for p in (home / "state.json", home / "scenarios" / str(sid) / "state.json")]
        # B1, its model, B2, B3 as-is; B1R, B3, N in the plan
        assert [s["layers"]["buildings"]["features"] for s in states] == [4, 3]
        for bad in ("/tiles/tileset.json?scenario=nope", "/tiles/scenarios/nope/tileset.json"):
            r = client.get(bad, follow_redirects=False)
            assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    finally:
        service.reset()
        get_settings.cache_clear()

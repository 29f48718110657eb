"""IFC import: placement by each georeferencing method, the spatial tree, properties, pipes, refusals."""
import collections
import math
import shutil
import subprocess
import sys
from pathlib import Path

import ifcopenshell
import ifcopenshell.geom
import ifcopenshell.util.element
import numpy as np
import pyogrio.raw
import pytest
import shapely
import sqlalchemy as sa
from conftest import DATA
from pyproj import Geod, Transformer

from cim_core.errors import GeoreferenceError, InputError
from importers.ifc import import_file, import_files

CIM = str(Path(sys.executable).with_name("cim"))


def rows(engine, sql, **params):
    with engine.connect() as c:
        return c.execute(sa.text(sql), params).mappings().all()


def vertices(engine, uid):
    r = rows(engine, "select mesh_vertices from city_objects where uid = :u", u=uid)[0]
    return np.frombuffer(r["mesh_vertices"], "<f8").reshape(-1, 3)


def world_vertices(path, guid):
    """The element's vertices as ifcopenshell itself places them (world coordinates, metres)."""
    model = ifcopenshell.open(str(path))
    s = ifcopenshell.geom.settings()
    s.set("use-world-coords", True)
    shape = ifcopenshell.geom.create_shape(s, model.by_guid(guid))
    return np.frombuffer(shape.geometry.verts_buffer, "<f8").reshape(-1, 3)


def test_duplex_tree_elements_and_property_sets(make_db):
    engine = make_db(26916)  # NAD83 / UTM 16N: Chicago, where the duplex's IfcSite reference lies
    res = import_file(DATA / "duplex.ifc", engine=engine)
    model = ifcopenshell.open(str(DATA / "duplex.ifc"))
    assert res.report["georef"]["method"] == "IfcSite reference"
    assert (res.counts["building"], res.counts["storey"], res.counts["space"]) == (1, 4, 21)

    expected = collections.Counter(e.is_a() for e in model.by_type("IfcElement")
                                   if not e.is_a("IfcFeatureElementSubtraction"))
    got = rows(engine, "select ifc_class, count(*) n from city_objects where class = 'element' group by 1")
    assert {r["ifc_class"]: r["n"] for r in got} == expected
    assert res.report["failed_count"] == 0

    # the tree: storeys under the building, spaces under storeys, walls under storeys
    tree = rows(engine, """select o.class, p.class parent_class, count(*) n from city_objects o
                           left join city_objects p on p.id = o.parent_id group by 1, 2""")
    tree = {(r["class"], r["parent_class"]): r["n"] for r in tree}
    assert tree[("storey", "building")] == 4 and tree[("space", "storey")] == 21
    assert tree[("building", "site")] == 1 and tree.get(("site", None)) == 1
    elevations = sorted(r["e"] for r in rows(engine, "select (attributes->>'elevation')::float e from city_objects "
                                                     "where class = 'storey'"))
    assert elevations == pytest.approx(sorted(s.Elevation for s in model.by_type("IfcBuildingStorey")))

    wall = model.by_type("IfcWallStandardCase")[0]
    stored = rows(engine, "select name, attributes from city_objects where uid = :u", u=wall.GlobalId)[0]
    psets = ifcopenshell.util.element.get_psets(wall)
    assert stored["name"] == wall.Name
    assert stored["attributes"]["psets"]["Pset_WallCommon"]["IsExternal"] is psets["Pset_WallCommon"]["IsExternal"]
    assert stored["attributes"]["psets"]["PSet_Revit_Dimensions"]["Length"] == \
        pytest.approx(psets["PSet_Revit_Dimensions"]["Length"])
    assert "Masonry - Brick" in stored["attributes"]["materials"]
    door = model.by_type("IfcDoor")[0]
    typ = rows(engine, "select attributes->'type' t from city_objects where uid = :u", u=door.GlobalId)[0]["t"]
    assert typ == {"name": "1250mm x 2010mm", "ifc_class": "IfcDoorStyle", "GlobalId": "28VDfyq51BtxN68z6Brpvs"}

    # the building joins 2D layers: an outline near the reference point, the height range of its elements
    b = rows(engine, """select st_x(st_centroid(footprint)) x, st_y(st_centroid(footprint)) y,
                               st_area(footprint) a, zmin, zmax, attributes from city_objects
                        where class = 'building'""")[0]
    lon, lat = Transformer.from_crs(26916, 4326, always_xy=True).transform(b["x"], b["y"])
    assert (lon, lat) == (pytest.approx(-87.6394, abs=0.001), pytest.approx(41.8744, abs=0.001))
    assert 100 < b["a"] < 1000 and b["zmax"] - b["zmin"] > 6
    assert b["attributes"]["NumberOfStoreys"] == 4

    # glass stays see-through for the tiles
    glass = rows(engine, """select count(*) n from city_objects, jsonb_array_elements(materials) m
                            where ifc_class = 'IfcWindow' and (m->'color'->>3)::float < 1""")[0]["n"]
    assert glass > 0


def test_fzk_haus_placed_by_its_site_reference(make_db):
    engine = make_db(25832)  # ETRS89 / UTM 32N: Karlsruhe
    path = DATA / "AC20-FZK-Haus.ifc"
    res = import_file(path, engine=engine)
    geo = res.report["georef"]
    assert geo["method"] == "IfcSite reference"
    assert (geo["latitude"], geo["longitude"]) == (pytest.approx(49.1004, abs=1e-3), pytest.approx(8.4365, abs=1e-3))

    # Independently: walk from the reference point along the geodesic by each vertex's local offset,
    # turned by the model's true north.
    model = ifcopenshell.open(str(path))
    tn = model.by_type("IfcGeometricRepresentationContext")[0].TrueNorth.DirectionRatios
    wall = model.by_type("IfcWallStandardCase")[0]
    local = world_vertices(path, wall.GlobalId)
    az = np.degrees(np.arctan2(local[:, 0], local[:, 1]) - math.atan2(tn[0], tn[1]))
    lon, lat, _ = Geod(ellps="WGS84").fwd(np.full(len(local), geo["longitude"]), np.full(len(local), geo["latitude"]),
                                          az, np.hypot(local[:, 0], local[:, 1]))
    e, n = Transformer.from_crs(4326, 25832, always_xy=True).transform(lon, lat)
    stored = vertices(engine, wall.GlobalId)
    assert len(stored) == len(local)
    assert np.hypot(stored[:, 0] - e, stored[:, 1] - n).max() < 1.0
    assert stored[:, 2] == pytest.approx(local[:, 2] + geo["elevation"], abs=0.01)


def test_map_conversion_with_an_inverted_scale(make_db):
    engine = make_db(25832)
    path = DATA / "geographic-referencing-utm.ifc"
    res = import_file(path, engine=engine)
    geo = res.report["georef"]
    assert geo["method"] == "IfcMapConversion" and geo["crs"] == "EPSG:25832"
    assert any("inverse" in n for n in geo["notes"])

    v = vertices(engine, "0rBru4syGxGOZb$M8kVJuS")
    tip = v[np.argmin(v[:, 2])]
    assert tip == pytest.approx([458657.30, 5438232.25, 113.7], abs=0.01)
    # every vertex where IFC's formula puts it, with the scale that matches the millimetre unit
    theta = math.atan2(0.962691746426, 0.270600445976)
    local = world_vertices(path, "0rBru4syGxGOZb$M8kVJuS")
    e = 458657.30 + local[:, 0] * math.cos(theta) - local[:, 1] * math.sin(theta)
    n = 5438232.25 + local[:, 0] * math.sin(theta) + local[:, 1] * math.cos(theta)
    assert np.abs(v - np.column_stack([e, n, 113.7 + local[:, 2]])).max() < 0.01
    assert v[:, 2].max() == pytest.approx(117.7, abs=0.01)  # the 1 m box from 2 m to 4 m above the tip


def test_12d_drainage_pipe_enters_the_network(make_db):
    engine = make_db(7855)  # GDA2020 / MGA zone 55: the 12d export's coordinates are already projected
    res = import_file(DATA / "pipe_12d_drainage.ifc", engine=engine, crs="EPSG:7855")
    assert res.counts["pipe_segment"] == 1
    seg = rows(engine, """select s.utility, s.diameter_mm, s.length_m, s.start_invert, st_astext(s.centerline) line,
                                 o.ifc_class, o.mesh_vertices is not null has_mesh
                          from pipe_segments s join city_objects o on o.id = s.object_id""")[0]
    assert seg["diameter_mm"] == 300 and seg["ifc_class"] == "IfcFlowSegment" and seg["has_mesh"]
    assert seg["utility"] == "combined"  # the project is a drainage design; no system says storm or foul
    assert seg["length_m"] == pytest.approx(math.hypot(289081.570466963 - 289080.818499209,
                                                       5822857.54453541 - 5822851.36621952), abs=0.01)
    assert seg["start_invert"] == pytest.approx(118.736, abs=0.005)  # the 12d 'invert us'
    assert "289080.81" in seg["line"] and "5822851.36" in seg["line"]


def test_broken_file_is_refused_and_nothing_written(db, cli_env):
    with pytest.raises(InputError, match=r"FormallyIllegalFile\.ifc: not a readable IFC file: Syntax error"):
        import_file(DATA / "FormallyIllegalFile.ifc", engine=db)
    proc = subprocess.run([CIM, "import", "ifc", str(DATA / "FormallyIllegalFile.ifc")], env=cli_env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "FormallyIllegalFile.ifc" in proc.stderr
    assert rows(db, "select count(*) n from datasets")[0]["n"] == 0
    assert rows(db, "select count(*) n from city_objects")[0]["n"] == 0


def test_no_georeference_refused_with_the_hint_then_placed_by_at(db, cli_env):
    path = DATA / "IfcOpenHouse_IFC4.ifc"
    with pytest.raises(GeoreferenceError, match="--at"):
        import_file(path, engine=db)
    proc = subprocess.run([CIM, "import", "ifc", str(path)], env=cli_env, capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and "--at E,N" in proc.stderr
    assert rows(db, "select count(*) n from datasets")[0]["n"] == 0

    proc = subprocess.run([CIM, "import", "ifc", str(path), "--at", "501800,3649500,75", "--rotation", "90",
                           "--dataset", "openhouse"], env=cli_env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "openhouse" in proc.stdout and "--at" in proc.stdout
    b = rows(db, "select st_xmin(footprint) x0, st_xmax(footprint) x1, st_ymin(footprint) y0, "
                 "st_ymax(footprint) y1, zmin from city_objects where class = 'building'")[0]
    # the house's model x axis now points north: it extends west of the origin (local +y turned to -E)
    local = np.vstack([world_vertices(path, w.GlobalId)
                       for w in ifcopenshell.open(str(path)).by_type("IfcWallStandardCase")])
    assert b["x0"] == pytest.approx(501800 - local[:, 1].max(), abs=0.05)
    assert b["y1"] == pytest.approx(3649500 + local[:, 0].max(), abs=0.05)
    assert b["zmin"] < 75 + 0.5


def test_reimport_replaces_and_unchanged_files_are_skipped(make_db):
    engine = make_db(25832)
    path = DATA / "geographic-referencing-utm.ifc"
    first = import_file(path, engine=engine, dataset="utm")
    again = import_file(path, engine=engine, dataset="utm")
    assert again.skipped and again.dataset == "utm"
    forced = import_file(path, engine=engine, dataset="utm", force=True)
    assert forced.replaced and forced.counts == first.counts
    assert rows(engine, "select count(*) n from city_objects")[0]["n"] == sum(first.counts.values())
    assert rows(engine, "select count(*) n from datasets")[0]["n"] == 1
    report = rows(engine, "select report from datasets")[0]["report"]
    assert report["failed_count"] == 0 and report["georef"]["method"] == "IfcMapConversion"


def test_sample_district_buildings_sit_on_their_footprints(db, tmp_path):
    from sample_models.district import generate

    manifest = generate(tmp_path, scale=0.01, seed=7)
    entries = {f["path"]: f for f in manifest["files"]}
    results = import_files([tmp_path / "ifc" / "school.ifc", tmp_path / "ifc" / "residential_renewed.ifc"],
                           workers=1)
    assert [r.error for r in results] == [None, None]
    for r in results:
        entry = entries[f"ifc/{r.dataset}.ifc"]
        assert r.report["georef"]["method"] == "IfcMapConversion"
        _, _, geoms, _ = pyogrio.raw.read(tmp_path / "district.gpkg", layer="buildings",
                                               where=f"id = '{entry['building_id']}'")
        gis = shapely.from_wkb(geoms[0])
        ours = rows(db, """select st_asbinary(o.footprint) fp, o.attributes from city_objects o
                           join datasets d on d.id = o.dataset_id where d.name = :n and o.class = 'building'""",
                    n=r.dataset)[0]
        fp = shapely.from_wkb(bytes(ours["fp"]))
        assert shapely.intersection(fp, gis).area / shapely.union(fp, gis).area > 0.9
        assert ours["attributes"]["YearOfConstruction"] in (str(entry["build_year"]), entry["build_year"])
        storeys = rows(db, "select count(*) n from city_objects o join datasets d on d.id = o.dataset_id "
                           "where d.name = :n and o.class = 'storey'", n=r.dataset)[0]["n"]
        assert storeys == entry["floors"]
    pipes = rows(db, "select utility, diameter_mm, st_npoints(centerline) n from pipe_segments order by utility")
    assert {p["utility"] for p in pipes} == {"water", "sewage", "rain"}
    assert all(p["diameter_mm"] in (100, 150, 200, 300) for p in pipes)


def test_epset_map_conversion_into_another_storage_crs(make_db, tmp_path):
    """The IFC2X3 convention (ePSet_MapConversion on the project), mapped to EPSG:4547 and transformed to
    the storage CRS EPSG:4508 (6-degree zone, CM 111E) by pyproj."""
    import ifcopenshell.api.pset

    model = ifcopenshell.open(str(DATA / "IfcOpenHouse_IFC4.ifc"))  # millimetres, no georeference of its own
    project = model.by_type("IfcProject")[0]
    theta = math.radians(30)
    conv = ifcopenshell.api.pset.add_pset(model, product=project, name="ePSet_MapConversion")
    ifcopenshell.api.pset.edit_pset(model, pset=conv, properties={
        "Eastings": 501800.0, "Northings": 3649500.0, "OrthogonalHeight": 75.0,
        "XAxisAbscissa": math.cos(theta), "XAxisOrdinate": math.sin(theta), "Scale": 0.001})
    crs = ifcopenshell.api.pset.add_pset(model, product=project, name="ePSet_ProjectedCRS")
    ifcopenshell.api.pset.edit_pset(model, pset=crs, properties={"Name": "EPSG:4547"})
    path = tmp_path / "openhouse_epset.ifc"
    model.write(str(path))

    engine = make_db(4508)
    res = import_file(path, engine=engine)
    assert res.report["georef"]["method"] == "ePSet_MapConversion" and res.report["georef"]["notes"] == []
    wall = model.by_type("IfcWallStandardCase")[0]
    local = world_vertices(path, wall.GlobalId)
    e = 501800.0 + local[:, 0] * math.cos(theta) - local[:, 1] * math.sin(theta)
    n = 3649500.0 + local[:, 0] * math.sin(theta) + local[:, 1] * math.cos(theta)
    x, y = Transformer.from_crs(4547, 4508, always_xy=True).transform(e, n)
    stored = vertices(engine, wall.GlobalId)
    assert np.abs(stored - np.column_stack([x, y, 75.0 + local[:, 2]])).max() < 0.01


def test_a_folder_imports_one_dataset_per_file_without_name_clashes(make_db, tmp_path):
    engine = make_db(25832)
    for d in ("north", "south"):
        (tmp_path / d).mkdir()
        shutil.copy(DATA / "geographic-referencing-utm.ifc", tmp_path / d / "marker.ifc")
    (tmp_path / "south" / "marker.ifc").write_text(
        (tmp_path / "south" / "marker.ifc").read_text().replace("'Geographic Position'", "'South Position'"))
    seen = []
    results = import_files([tmp_path], on_file=seen.append, workers=1)
    assert sorted(r.dataset for r in results) == ["north-marker", "south-marker"]
    assert len(seen) == 2 and not any(r.error for r in results)
    names = rows(engine, "select d.name, o.name o from datasets d join city_objects o on o.dataset_id = d.id "
                         "where o.class = 'element' order by 1")
    assert [(r["name"], r["o"]) for r in names] == [("north-marker", "Geographic Position"),
                                                    ("south-marker", "South Position")]

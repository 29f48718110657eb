"""GIS layers: real OSM buildings of Wuhan, and small GeoPackages/GeoJSON written here for the edge cases."""
import json
import subprocess

import numpy as np
import pyogrio.raw
import pytest
import shapely
import shapely.geometry
import sqlalchemy as sa
import trimesh
from conftest import DATA
from pyproj import Geod

from cim_core.errors import GeoreferenceError, InputError
from importers import gis
from services.tiles.source import prisms

WUHAN = DATA / "wuhan_osm_buildings.geojson"
X0, Y0 = 501800.0, 3649500.0  # near 114.02E 32.98N in EPSG:4547


def rows(engine, sql, **params):
    with engine.connect() as c:
        return c.execute(sa.text(sql), params).mappings().all()


def load_mesh(row):
    v = np.frombuffer(row["mesh_vertices"], "<f8").reshape(-1, 3)
    f = np.frombuffer(row["mesh_faces"], "<u4").reshape(-1, 3).astype(np.int64)
    return trimesh.Trimesh(v, f, process=False)


def solid(row):
    """A building's LOD1 solid: stored meshless, as the tile builder extrudes it from its footprint."""
    assert row["mesh_vertices"] is None and row["lod"] == 1
    v, f, _ = prisms([shapely.from_wkb(row["fp"])], row["zmin"], row["zmax"])[0]
    return trimesh.Trimesh(v, f, process=False)


def write_layer(path, layer, geoms, fields: dict, crs="EPSG:4547", geometry_type=None):
    names = list(fields)
    data = [np.array(v, dtype=object) if any(isinstance(x, str) for x in v)
            else np.array([np.nan if x is None else x for x in v], float) for v in fields.values()]
    if geometry_type == "MultiPolygon":
        geoms = [shapely.MultiPolygon([g]) if isinstance(g, shapely.Polygon) else g for g in geoms]
    wkb = np.array([None if g is None else shapely.to_wkb(g) for g in geoms], dtype=object)
    types = {shapely.get_type_id(g) for g in geoms if g is not None}
    gt = geometry_type or {0: "Point", 1: "LineString", 3: "Polygon", 6: "MultiPolygon"}[max(types)]
    pyogrio.raw.write(path, wkb, data, names, layer=layer, geometry_type=gt, crs=crs,
                      driver="GPKG" if str(path).endswith(".gpkg") else None, append=path.exists())
    return path


def test_wuhan_osm_buildings(db):
    res = gis.import_file(WUHAN, engine=db)
    assert res.counts == {"building": 241}
    h = res.report["height"]
    # 79 have a height, one of them 0 m (an OSM campus outline): that one gets the default too
    assert (h["field"], h["from_field"], h["default"]) == ("height", 78, 241 - 78)
    objs = rows(db, "select key, uid, name, attributes, lod, zmin, zmax, st_area(footprint) area, mesh_vertices, "
                    "st_asbinary(footprint) fp, st_srid(footprint) srid from city_objects order by key::int")
    assert len(objs) == 241 and {o["srid"] for o in objs} == {4547} and {o["lod"] for o in objs} == {1}
    # four OSM ids occur twice in this extract: keys fall back to the feature index, uids keep the id
    assert len({o["uid"] for o in objs}) == 237 and [o["key"] for o in objs[:2]] == ["0", "1"]
    # heights from the height field, with every source attribute kept
    mall, named = objs[0], objs[1]
    assert mall["uid"] == "112937194"
    assert (mall["zmin"], mall["zmax"]) == (0.0, 23.0)
    assert mall["attributes"]["kind_detail"] == "mall" and mall["attributes"]["volume"] == 508369
    assert named["name"] == "光谷資本大廈" and named["attributes"]["name:en"] == "Optics Valley Plaza"
    assert max(o["zmax"] for o in objs) == 105.0
    # buildings without a height get the default height, and the report counts them
    no_height = [o for o in objs if not o["attributes"].get("height")]
    assert len(no_height) == 163 and {o["zmax"] for o in no_height} == {9.0}
    # OSM building parts raised by min_height start above the ground
    raised = [o for o in objs if "min_height" in o["attributes"]]
    assert len(raised) == 3 and all(o["zmin"] == o["attributes"]["min_height"] for o in raised)
    # every solid is closed, faces outward, and has the footprint's volume (footprint area in metres)
    for o in objs:
        tm = solid(o)
        assert tm.is_watertight and tm.is_winding_consistent
        assert tm.volume == pytest.approx(o["area"] * (o["zmax"] - o["zmin"]), rel=1e-6)
    # transformed into metres: the footprint's area matches the geodesic area of the lon/lat polygon
    lonlat = shapely.geometry.shape(json.loads(WUHAN.read_text())["features"][0]["geometry"])
    geodesic = abs(Geod(ellps="GRS80").geometry_area_perimeter(lonlat)[0])
    assert mall["area"] == pytest.approx(geodesic, rel=1e-3)


def test_footprint_with_hole_keeps_its_courtyard(db):
    src = json.loads(WUHAN.read_text())
    holed = [f for f in src["features"] if len(f["geometry"]["coordinates"]) > 1]
    assert len(holed) == 1
    gis.import_file(WUHAN, engine=db)
    o = rows(db, "select st_area(footprint) area, st_numinteriorrings(st_geometryn(footprint, 1)) holes, zmin, zmax, "
                 "mesh_vertices, lod, st_asbinary(footprint) fp from city_objects where uid = :u",
             u=str(holed[0]["properties"]["id"]))[0]
    assert o["holes"] == 1
    tm = solid(o)
    assert tm.is_watertight and tm.is_winding_consistent
    assert tm.volume == pytest.approx(o["area"] * (o["zmax"] - o["zmin"]))
    # the roof covers the footprint, not the courtyard
    roof_area = tm.area_faces[tm.face_normals[:, 2] > 0.99].sum()
    assert roof_area == pytest.approx(o["area"])


def test_lonlat_declared_as_projected_is_refused_and_nothing_written(db, tmp_path):
    with pytest.raises(GeoreferenceError, match=r"wuhan_osm_buildings\.geojson.*longitude/latitude"):
        gis.import_file(WUHAN, crs="EPSG:4547", engine=db)
    # and the same when the file itself declares the wrong CRS
    src = json.loads(WUHAN.read_text())
    src["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4547"}}
    bad = tmp_path / "wuhan_declared_4547.geojson"
    bad.write_text(json.dumps(src))
    with pytest.raises(GeoreferenceError, match="outside"):
        gis.import_file(bad, engine=db)
    assert rows(db, "select count(*) n from datasets")[0]["n"] == 0
    assert rows(db, "select count(*) n from city_objects")[0]["n"] == 0


def test_buildings_from_floors_repairs_and_multipolygons(db, tmp_path, monkeypatch):
    monkeypatch.setenv("CIM_STOREY_HEIGHT", "3.2")
    from cim_core.settings import get_settings
    get_settings.cache_clear()
    bowtie = shapely.Polygon([(X0, Y0), (X0 + 10, Y0 + 10), (X0 + 10, Y0), (X0, Y0 + 10)])
    pair = shapely.MultiPolygon([shapely.box(X0 + 20, Y0, X0 + 30, Y0 + 10), shapely.box(X0 + 40, Y0, X0 + 45, Y0 + 5)])
    plain = shapely.box(X0 + 60, Y0, X0 + 70, Y0 + 8)
    path = write_layer(tmp_path / "blocks.gpkg", "my_buildings", [bowtie, pair, plain, None],
                       {"bid": ["a", "b", "c", "d"], "storeys": [4, 6, None, 2], "ground": [50.0, 51.0, 52.0, 53.0]},
                       geometry_type="MultiPolygon")
    res = gis.import_file(path, floors_field="storeys", engine=db)
    assert res.counts == {"building": 4}
    assert res.report["repaired"] == 1 and res.report["no_geometry"] == 1
    assert res.report["height"]["from_floors"] == 3 and res.report["height"]["default"] == 1
    objs = {o["key"]: o for o in rows(db, "select key, attributes, lod, zmin, zmax, st_area(footprint) area, "
                                          "mesh_vertices, st_asbinary(footprint) fp from city_objects")}
    # key = feature index (no id field), all attributes kept; the bow-tie became two triangles, not dropped
    assert objs["0"]["attributes"] == {"bid": "a", "storeys": 4, "ground": 50.0}
    assert objs["0"]["area"] == pytest.approx(50.0)
    assert (objs["0"]["zmin"], objs["0"]["zmax"]) == (50.0, 50.0 + 4 * 3.2)
    assert (objs["2"]["zmin"], objs["2"]["zmax"]) == (52.0, 52.0 + 9.0)  # no floors: default height
    for k in "012":
        tm = solid(objs[k])
        assert tm.is_watertight and tm.volume == pytest.approx(objs[k]["area"] * (objs[k]["zmax"] - objs[k]["zmin"]))
    assert objs["3"]["mesh_vertices"] is None and objs["3"]["fp"] is None
    assert objs["3"]["attributes"]["bid"] == "d"


def test_other_layers_roads_water_facilities(db, tmp_path):
    path = tmp_path / "town.gpkg"
    write_layer(path, "roads", [shapely.LineString([(X0, Y0), (X0 + 100, Y0), (X0 + 100, Y0 + 50)])],
                {"id": ["r1"], "name": ["建设路"], "width_m": [12.0]})
    write_layer(path, "lakes", [shapely.box(X0, Y0 + 100, X0 + 40, Y0 + 130)], {"name": ["东湖"]})
    write_layer(path, "misc_points", [shapely.Point(X0 + 5, Y0 + 5), shapely.Point(X0 + 15, Y0 + 5)],
                {"id": ["s1", "s2"], "kind": ["school", "clinic"]})
    road = gis.import_file(path, layer="roads", engine=db)
    water = gis.import_file(path, layer="lakes", engine=db)
    with pytest.raises(InputError, match="cannot tell what layer 'misc_points' holds"):
        gis.import_file(path, layer="misc_points", engine=db)
    fac = gis.import_file(path, layer="misc_points", kind="facilities", engine=db)
    assert (road.counts, water.counts, fac.counts) == ({"road": 1}, {"water": 1}, {"facility": 2})
    assert {road.dataset, water.dataset, fac.dataset} == {"town_roads", "town_lakes", "town_misc_points"}
    r = rows(db, "select uid, name, st_geometrytype(footprint) t, st_length(footprint) len, mesh_vertices, mesh_faces "
                 "from city_objects where class = 'road'")[0]
    assert (r["uid"], r["name"], r["t"], r["len"]) == ("r1", "建设路", "ST_LineString", 150.0)
    ribbon = load_mesh(r)
    assert ribbon.area == pytest.approx(150 * 12, rel=0.05) and np.allclose(ribbon.face_normals[:, 2], 1)
    w = rows(db, "select mesh_vertices, mesh_faces, materials from city_objects where class = 'water'")[0]
    assert load_mesh(w).area == pytest.approx(1200) and w["materials"][0]["name"] == "water"
    f = rows(db, "select key, st_astext(footprint) p, mesh_vertices from city_objects where class = 'facility' "
                 "order by key")
    assert [x["key"] for x in f] == ["s1", "s2"] and f[0]["mesh_vertices"] is None
    with pytest.raises(InputError, match="buildings need polygons"):
        gis.import_file(path, layer="misc_points", kind="buildings", engine=db)


def test_missing_crs_bad_file_and_rerun(db, tmp_path):
    shp = tmp_path / "nocrs.shp"
    pyogrio.raw.write(shp, np.array([shapely.to_wkb(shapely.box(X0, Y0, X0 + 5, Y0 + 5))], dtype=object),
                      [np.array([7.5])], ["height"], geometry_type="Polygon", crs=None)
    with pytest.raises(InputError, match=r"nocrs\.shp.*no coordinate reference system.*--crs"):
        gis.import_file(shp, kind="buildings", engine=db)
    res = gis.import_file(shp, kind="buildings", crs="EPSG:4547", engine=db)
    assert res.counts == {"building": 1} and res.report["height"]["from_field"] == 1
    again = gis.import_file(shp, kind="buildings", crs="EPSG:4547", engine=db)
    assert again.skipped and again.dataset == "nocrs"
    junk = tmp_path / "junk.geojson"
    junk.write_text("{ this is not json")
    with pytest.raises(InputError, match=r"junk\.geojson"):
        gis.import_file(junk, engine=db)
    assert [d["name"] for d in rows(db, "select name from datasets")] == ["nocrs"]


def test_cli_bulk_import_and_rerun(cli_env, tmp_path):
    folder = tmp_path / "layers"
    folder.mkdir()
    write_layer(folder / "buildings_a.gpkg", "buildings", [shapely.box(X0, Y0, X0 + 10, Y0 + 10)], {"height_m": [30.0]})
    write_layer(folder / "buildings_b.gpkg", "buildings", [shapely.box(X0 + 20, Y0, X0 + 30, Y0 + 10)],
                {"height_m": [12.0]})
    (folder / "broken.geojson").write_text("not a layer")
    cmd = [".venv/bin/cim", "import", "gis", str(folder), "--height-field", "height_m"]
    first = subprocess.run(cmd, env=cli_env, capture_output=True, text=True)
    assert first.returncode == 1  # one file failed; the others are in
    assert "buildings_a" in first.stdout and "building 1" in first.stdout
    assert "broken.geojson" in first.stdout
    second = subprocess.run(cmd[:-2] + ["--height-field", "height_m"], env=cli_env, capture_output=True, text=True)
    assert second.stdout.count("skipped") >= 2
    single = subprocess.run([".venv/bin/cim", "import", "gis", str(folder / "broken.geojson")], env=cli_env,
                            capture_output=True, text=True)
    assert single.returncode == 1
    lines = single.stderr.strip().splitlines()
    assert len(lines) == 1 and "broken.geojson" in lines[0] and lines[0].startswith("error:")

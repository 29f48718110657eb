"""Skipping sources already loaded: the skip key is the content and every option that changes the result, the
same for every importer; the records keep the source's file name, never a server path."""
import shutil

import numpy as np
import pyogrio.raw
import pytest
import sqlalchemy as sa
from conftest import DATA
from fastapi.testclient import TestClient

from cim_core.settings import get_settings
from importers import cityjson, epanet, gis, ifc
from services.app import create_app

HOUSE = DATA / "IfcOpenHouse_IFC4.ifc"
ROTTERDAM = DATA / "rotterdam_subset.city.json"


def rows(engine, sql, **params):
    with engine.connect() as c:
        return c.execute(sa.text(sql), params).mappings().all()


def building_x(engine, dataset):
    return rows(engine, "select st_xmin(o.footprint) x from city_objects o "
                        "join datasets d on d.id = o.dataset_id where d.name = :d and o.class = 'building'",
                d=dataset)[0]["x"]


def test_ifc_placed_elsewhere_is_imported_again(db):
    first = ifc.import_file(HOUSE, engine=db, at=(500000, 3650000))
    moved = ifc.import_file(HOUSE, engine=db, at=(501000, 3651000))
    assert not moved.skipped and moved.replaced and moved.counts == first.counts
    assert building_x(db, "IfcOpenHouse_IFC4") == pytest.approx(501000, abs=50)
    again = ifc.import_file(HOUSE, engine=db, at=(501000.0, 3651000.0))
    assert again.skipped and again.dataset == "IfcOpenHouse_IFC4"
    turned = ifc.import_file(HOUSE, engine=db, at=(501000, 3651000), rotation=90)
    assert not turned.skipped and turned.replaced
    # a forced import records the content too (hashed while the file is read)
    assert ifc.import_file(HOUSE, engine=db, at=(501000, 3651000), rotation=90, force=True).replaced
    assert ifc.import_file(HOUSE, engine=db, at=(501000, 3651000), rotation=90).skipped
    assert rows(db, "select count(*) n from datasets")[0]["n"] == 1


def test_same_content_under_another_name_is_its_own_dataset_in_another_folder_skipped(db, tmp_path):
    ifc.import_file(HOUSE, engine=db, at=(500000, 3650000))
    copy = tmp_path / "house-copy.ifc"
    shutil.copy(HOUSE, copy)
    other = ifc.import_file(copy, engine=db, at=(500000, 3650000))
    assert not other.skipped and other.dataset == "house-copy"
    (tmp_path / "b").mkdir()
    elsewhere = tmp_path / "b" / HOUSE.name
    shutil.copy(HOUSE, elsewhere)
    same = ifc.import_file(elsewhere, engine=db, at=(500000, 3650000))
    assert same.skipped and same.dataset == "IfcOpenHouse_IFC4"
    names = sorted(r["name"] for r in rows(db, "select name from datasets"))
    assert names == ["IfcOpenHouse_IFC4", "house-copy"]


def test_cityjson_options_and_names_are_in_the_key(make_db, tmp_path):
    db = make_db(28992)
    cityjson.import_file(ROTTERDAM, engine=db, crs="EPSG:7415")
    assert cityjson.import_file(ROTTERDAM, engine=db, crs="EPSG:7415").skipped
    # another CRS option changes the result (here RD New without NAP heights)
    assert cityjson.import_file(ROTTERDAM, engine=db, crs="EPSG:28992").replaced
    copy = tmp_path / "rotterdam_copy.city.json"
    shutil.copy(ROTTERDAM, copy)
    res = cityjson.import_file(copy, engine=db, crs="EPSG:28992")
    assert not res.skipped and res.dataset == "rotterdam_copy"
    assert rows(db, "select count(*) n from datasets")[0]["n"] == 2


def shapefile(src, dest, **extra):
    """A Shapefile of a GIS source, with extra constant attributes."""
    meta, _, geoms, data = pyogrio.raw.read(src)
    fields = [*meta["fields"], *extra]
    data = [*data, *(np.full(len(geoms), v, object) for v in extra.values())]
    pyogrio.raw.write(dest, geoms, data, fields, driver="ESRI Shapefile", geometry_type=meta["geometry_type"],
                      crs=meta["crs"], encoding="UTF-8")
    return dest


def test_a_changed_shapefile_part_or_setting_is_imported_again(db, tmp_path, monkeypatch):
    shp = shapefile(DATA / "wuhan_osm_buildings.geojson", tmp_path / "blocks.shp")
    opts = {"kind": "buildings", "engine": db}
    gis.import_file(shp, **opts)
    assert gis.import_file(shp, **opts).skipped
    shapefile(DATA / "wuhan_osm_buildings.geojson", tmp_path / "other.shp", note="changed")
    assert (tmp_path / "other.shp").read_bytes() == shp.read_bytes()
    shutil.copy(tmp_path / "other.dbf", shp.with_suffix(".dbf"))  # only the attributes changed
    changed = gis.import_file(shp, **opts)
    assert not changed.skipped and changed.replaced
    assert {r["n"] for r in rows(db, "select attributes->>'note' n from city_objects")} == {"changed"}
    monkeypatch.setenv("CIM_DEFAULT_BUILDING_HEIGHT", "12")
    get_settings.cache_clear()
    assert not gis.import_file(shp, **opts).skipped


def test_records_carry_the_file_name_only(db):
    epanet.import_file(DATA / "Net1.inp", engine=db, crs="EPSG:4547", offset=(501800.0, 3649500.0))
    house = ifc.import_file(HOUSE.absolute(), engine=db, at=(500000, 3650000))
    assert {r["source_path"] for r in rows(db, "select source_path from datasets")} == \
        {"Net1.inp", "IfcOpenHouse_IFC4.ifc"}
    oid = rows(db, "select o.id from city_objects o join datasets d on d.id = o.dataset_id "
                   "where d.name = :d and o.class = 'building'", d=house.dataset)[0]["id"]
    with TestClient(create_app()) as client:
        record = client.get(f"/api/objects/{oid}").json()
    assert record["dataset"]["source"] == "IfcOpenHouse_IFC4.ifc"
    assert str(DATA.absolute()) not in str(record)

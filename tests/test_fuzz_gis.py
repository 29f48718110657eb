"""Fuzzed GIS sources: mutated GeoJSON and Shapefiles (from the Wuhan OSM buildings) import or are refused
with one line, never leaving a partial dataset (tests/fuzzing.py)."""
import json

import pyogrio.raw
import pytest
from conftest import DATA
from fuzzing import FUZZ, bytes_mutation, check, engine_for, json_mutation
from hypothesis import given
from hypothesis import strategies as st

from importers import gis

WUHAN = DATA / "wuhan_osm_buildings.geojson"


@pytest.fixture(scope="module")
def engine(cluster):
    e = engine_for(cluster, 4547)
    yield e
    e.dispose()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The first four buildings, as GeoJSON and as a Shapefile's parts."""
    folder = tmp_path_factory.mktemp("fuzz_gis")
    doc = json.loads(WUHAN.read_text())
    doc["features"] = doc["features"][:4]
    src = folder / "small.geojson"
    src.write_text(json.dumps(doc))
    meta, _, geoms, data = pyogrio.raw.read(src)
    pyogrio.raw.write(folder / "small.shp", geoms, data, meta["fields"], driver="ESRI Shapefile",
                      geometry_type=meta["geometry_type"], crs=meta["crs"], encoding="UTF-8")
    parts = {x: (folder / f"small{x}").read_bytes() for x in (".shp", ".shx", ".dbf", ".prj")}
    return folder, doc, parts


@FUZZ
@given(data=st.data())
def test_mutated_geojson(engine, small, data):
    folder, doc, _ = small
    path = folder / "fuzz.geojson"
    path.write_text(data.draw(json_mutation(doc)))
    check(gis.import_file, path, engine, kind="buildings")


@FUZZ
@given(data=st.data())
def test_mutated_shapefile(engine, small, data):
    folder, _, parts = small
    target = data.draw(st.sampled_from(sorted(parts)))
    for suffix, content in parts.items():
        mutated = data.draw(bytes_mutation(content)) if suffix == target else content
        (folder / f"fuzz{suffix}").write_bytes(mutated)
    check(gis.import_file, folder / "fuzz.shp", engine, kind="buildings")

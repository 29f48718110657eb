"""Fuzzed CityJSON: mutations of the Den Haag buildings and parts import or are refused with one line, never
leaving a partial dataset (tests/fuzzing.py)."""
import json

import pytest
from conftest import DATA
from fuzzing import FUZZ, check, engine_for, json_mutation
from hypothesis import given
from hypothesis import strategies as st

from importers import cityjson

DEN_HAAG = DATA / "DH_01_subs.city.json"


@pytest.fixture(scope="module")
def engine(cluster):
    e = engine_for(cluster, 28992)
    yield e
    e.dispose()


@FUZZ
@given(data=st.data())
def test_mutated_cityjson(engine, tmp_path_factory, data):
    path = tmp_path_factory.getbasetemp() / "fuzz.city.json"
    path.write_text(data.draw(json_mutation(json.loads(DEN_HAAG.read_text()))))
    check(cityjson.import_file, path, engine, crs="EPSG:7415")


def test_a_lod_out_of_range_imports_as_lod_0(engine, tmp_path_factory):
    """Found by the fuzzing above: a LoD of 2**70 overflowed the LoD column."""
    doc = json.loads(DEN_HAAG.read_text())
    for o in doc["CityObjects"].values():
        for g in o.get("geometry", []):
            g["lod"] = 2 ** 70
    path = tmp_path_factory.getbasetemp() / "huge_lod.city.json"
    path.write_text(json.dumps(doc))
    assert check(cityjson.import_file, path, engine, crs="EPSG:7415") == "imported"

"""Fuzzed IFC: mutations of a small georeferenced STEP file import or are refused with one line, never
leaving a partial dataset (tests/fuzzing.py)."""
import pytest
from conftest import DATA
from fuzzing import FUZZ, check, engine_for, text_mutation
from hypothesis import given
from hypothesis import strategies as st

from importers import ifc


@pytest.fixture(scope="module")
def engine(cluster):
    e = engine_for(cluster, 25832)  # ETRS89 / UTM 32N, where the file's IfcMapConversion places it
    yield e
    e.dispose()


@FUZZ
@given(data=st.data())
def test_mutated_ifc(engine, tmp_path_factory, data):
    path = tmp_path_factory.getbasetemp() / "fuzz.ifc"
    path.write_text(data.draw(text_mutation((DATA / "geographic-referencing-utm.ifc").read_text())))
    check(ifc.import_file, path, engine)

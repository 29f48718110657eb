"""Fuzzed hydraulic models: mutated EPANET (Net1) and SWMM (Example1) .inp files import or are refused with
one line, never leaving a partial dataset (tests/fuzzing.py)."""
import pytest
from conftest import DATA
from fuzzing import FUZZ, check, engine_for, text_mutation
from hypothesis import given
from hypothesis import strategies as st

from importers import epanet, swmm

PLACE = {"crs": "EPSG:4547", "offset": (501800.0, 3649500.0)}


@pytest.fixture(scope="module")
def engine(cluster):
    e = engine_for(cluster, 4547)
    yield e
    e.dispose()


@FUZZ
@given(data=st.data())
def test_mutated_epanet(engine, tmp_path_factory, data):
    path = tmp_path_factory.getbasetemp() / "fuzz_net.inp"
    path.write_text(data.draw(text_mutation((DATA / "Net1.inp").read_text())))
    check(epanet.import_file, path, engine, **PLACE)


@FUZZ
@given(data=st.data())
def test_mutated_swmm(engine, tmp_path_factory, data):
    path = tmp_path_factory.getbasetemp() / "fuzz_swmm.inp"
    path.write_text(data.draw(text_mutation((DATA / "swmm_Example1.inp").read_text())))
    check(swmm.import_file, path, engine, **PLACE)

"""SWMM round trip: a model imported, exported from the database and run gives the node flooding volumes
and conduit peak flows of the original file run by pyswmm, within 1%."""
from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from analyses.drainage import swmm_export
from analyses.drainage.swmm_run import simulate
from cim_core.errors import InputError, NotFoundError
from importers import swmm

DATA = Path(__file__).parent / "data"


def assert_same_results(original: Path, exported: Path) -> None:
    a, b = simulate(original), simulate(exported)
    assert set(a.nodes) == set(b.nodes) and set(a.links) == set(b.links)
    for k, v in a.nodes.items():
        assert b.nodes[k]["flooding_volume"] == pytest.approx(v["flooding_volume"], rel=0.01, abs=1e-6), k
    for k, v in a.links.items():
        assert b.links[k]["peak_flow"] == pytest.approx(v["peak_flow"], rel=0.01, abs=1e-6), k


def test_example1_round_trip(db, tmp_path):
    original = tmp_path / "Example1.inp"
    original.write_bytes((DATA / "swmm_Example1_runnable.inp").read_bytes())
    swmm.import_file(original, crs="EPSG:4547", offset=(501000, 3649000), dataset="example1", engine=db)
    out = swmm_export.export("example1", tmp_path / "exported.inp", engine=db)
    assert_same_results(original, out)
    res = simulate(original)
    assert res.nodes["10"]["flooding_volume"] > 0  # the example floods at node 10: the check compares something


def test_state_plane_round_trip(db, tmp_path):
    ft = 0.3048
    x0, y0 = 2745633.581 * ft, 1116753.856 * ft
    swmm.import_file(DATA / "swmm_model_state_plane.inp", crs="EPSG:4547", scale=ft,
                     offset=(501800 - x0, 3649500 - y0), engine=db, utility="sewage", dataset="state-plane")
    out = swmm_export.export("state-plane", tmp_path / "exported.inp", engine=db)
    original = tmp_path / "original.inp"
    original.write_bytes((DATA / "swmm_model_state_plane.inp").read_bytes())
    assert_same_results(original, out)


def test_no_outfall_is_refused(db, tmp_path):
    swmm.import_file(DATA / "swmm_Example1_runnable.inp", crs="EPSG:4547", offset=(501000, 3649000),
                     dataset="example1", engine=db)
    with db.begin() as c:
        c.execute(sa.text("update pipe_nodes set node_type = 'manhole' where node_type = 'outlet'"))
    with pytest.raises(InputError, match="no outfall"):
        swmm_export.build("example1", engine=db)
    with pytest.raises(NotFoundError):
        swmm_export.build("nope", engine=db)

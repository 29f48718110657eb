"""SWMM round trip: a model imported, exported from the database and run gives the node flooding volumes
and conduit peak flows of the original file run by pyswmm, within 1%."""
from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from analyses.drainage import swmm_export
from analyses.drainage.swmm_run import STRIDE_S, simulate
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


@pytest.mark.parametrize("file", ["swmm_Example1_runnable.inp", "swmm_model_state_plane.inp"])
def test_engine_statistics_are_pyswmms(tmp_path, file):
    """`simulate` drives swmm-toolkit itself: its statistics are exactly those pyswmm reads on the same file."""
    from pyswmm import Links, Nodes, Simulation

    inp = tmp_path / file
    inp.write_bytes((DATA / file).read_bytes())
    ours = simulate(inp)
    with Simulation(str(inp)) as sim:
        sim.step_advance(STRIDE_S)
        for _ in sim:
            pass
        nodes = {n.nodeid: (n.statistics, n.is_outfall()) for n in Nodes(sim)}
        links = {lk.linkid: lk.conduit_statistics for lk in Links(sim) if lk.is_conduit()}
        units = sim.flow_units
    assert ours.flow_units == units and set(ours.nodes) == set(nodes) and set(ours.links) == set(links)
    for k, (st, outfall) in nodes.items():
        assert ours.nodes[k] == {"peak_depth": st["max_depth"], "surcharge_hours": st["surcharge_duration"],
                                 "flooding_volume": st["flooding_volume"], "flooding_hours": st["flooding_duration"],
                                 "peak_inflow": st["peak_total_inflow"], "outfall": outfall}, k
    for k, st in links.items():
        assert ours.links[k] == {"peak_flow": st["peak_flow"], "peak_depth": st["peak_depth"],
                                 "peak_velocity": st["peak_velocity"], "surcharge_hours": st["time_surcharged"]}, k
    assert any(v["peak_flow"] > 0 for v in ours.links.values())


def test_bad_model_is_a_one_line_error(tmp_path):
    good, bad = tmp_path / "good.inp", tmp_path / "bad.inp"
    good.write_text((DATA / "swmm_Example1_runnable.inp").read_text())
    bad.write_text(good.read_text().replace("[JUNCTIONS]", "[JUNCTIONS]\nJ? x"))
    with pytest.raises(InputError, match="SWMM could not run the model: .*ERROR"):
        simulate(bad)
    assert simulate(good).nodes  # the engine was closed: the next run works


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

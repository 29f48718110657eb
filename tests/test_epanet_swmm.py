"""Hydraulic models as pipe networks: EPANET (WNTR) and SWMM, counts, heights, placement, broken files."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from conftest import DATA
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from cim_core.errors import GeoreferenceError, InputError
from importers import epanet, swmm

PLACE = {"crs": "EPSG:4547", "offset": (501800.0, 3649500.0)}  # local model origin placed in Zhumadian
FT = 0.3048
ROOT = Path(__file__).parents[1]


def rows(engine, sql, **params):
    with engine.connect() as c:
        return c.execute(sa.text(sql), params).all()


def count(engine, sql, **params):
    return rows(engine, sql, **params)[0][0]


def n_components(engine, dataset) -> int:
    edges = rows(engine, """select s.from_node, s.to_node from pipe_segments s join city_objects o on o.id = s.object_id
                            join datasets d on d.id = o.dataset_id where d.name = :n""", n=dataset)
    nodes = [i for i, in rows(engine, """select o.id from pipe_nodes p join city_objects o on o.id = p.object_id
                                         join datasets d on d.id = o.dataset_id where d.name = :n""", n=dataset)]
    index = {n: i for i, n in enumerate(nodes)}
    a = np.array([[index[f], index[t]] for f, t in edges])
    return connected_components(coo_matrix((np.ones(len(a)), (a[:, 0], a[:, 1])), shape=(len(nodes),) * 2),
                                directed=False)[0]


def test_net3_counts_topology_and_depth(db):
    res = epanet.import_file(DATA / "Net3.inp", engine=db, **PLACE)
    r = res.report
    assert (r["pipes"], r["pumps"], r["junctions"], r["tanks"], r["reservoirs"]) == (117, 2, 92, 3, 2)
    assert res.counts == {"pipe_node": 97, "pipe_segment": 119}
    assert count(db, "select count(*) from city_objects where attributes->>'epanet_type' = 'pipe'") == 117
    assert count(db, "select count(*) from pipe_segments where utility = 'water' and from_node is not null "
                     "and to_node is not null") == 119
    assert n_components(db, "Net3") == 1
    # pipe 20 (99 in, 2.5146 m) lies at the default cover (1.2 m to its crown) below its nodes
    (frm, to, dia, axis), = rows(db, """
        select (select key from city_objects where id = s.from_node), (select key from city_objects where id = s.to_node),
               s.diameter_mm, st_asbinary(s.centerline)
        from pipe_segments s join city_objects o on o.id = s.object_id where o.key = 'pipe:20'""")
    assert (frm, to) == ("node:3", "node:20") and dia == pytest.approx(2514.6)
    z = shapely.get_coordinates(shapely.from_wkb(bytes(axis)), include_z=True)[:, 2]
    elev = dict(rows(db, "select key, ground_z from pipe_nodes join city_objects on id = object_id "
                         "where key in ('node:3', 'node:20')"))
    assert z[0] == pytest.approx(elev["node:3"] - 1.2 - 2.5146 / 2, abs=0.01)
    assert z[-1] == pytest.approx(elev["node:20"] - 1.2 - 2.5146 / 2, abs=0.01)
    # junction 10's elevation, 147 ft in the model, is its ground (converted to metres by WNTR)
    assert count(db, "select ground_z from pipe_nodes join city_objects on id = object_id "
                     "where key = 'node:10'") == pytest.approx(147 * FT, abs=0.01)
    # tanks are drawn as cylinders of their diameter from their bottom to their maximum level
    (zmin, zmax), = rows(db, "select zmin, zmax from city_objects where key = 'node:1'")
    assert (zmin, zmax) == pytest.approx((131.9 * FT, (131.9 + 32.1) * FT), abs=0.01)


def test_net1_counts_and_placement(db):
    res = epanet.import_file(DATA / "Net1.inp", engine=db, **PLACE)
    r = res.report
    assert (r["pipes"], r["pumps"], r["junctions"], r["tanks"], r["reservoirs"]) == (12, 1, 9, 1, 1)
    assert res.counts == {"pipe_node": 11, "pipe_segment": 13}
    # reservoir 9 is drawn at (10, 70) in the model: placed at the offset
    (x, y), = rows(db, "select st_x(geom), st_y(geom) from pipe_nodes join city_objects on id = object_id "
                       "where key = 'node:9'")
    assert (x, y) == pytest.approx((501810.0, 3649570.0))
    assert n_components(db, "Net1") == 1


def test_local_network_without_offset_is_refused(db):
    with pytest.raises(GeoreferenceError, match=r"Net3.inp.*--offset E,N"):
        epanet.import_file(DATA / "Net3.inp", crs="EPSG:4547", engine=db)
    assert count(db, "select count(*) from datasets") == 0


def test_bad_epanet_syntax_is_refused_in_one_line(cli_env, db):
    with pytest.raises(InputError, match=r"wntr_bad_syntax.inp: not a valid EPANET input: syntax error.* line 330"):
        epanet.import_file(DATA / "wntr_bad_syntax.inp", engine=db, **PLACE)
    out = subprocess.run([".venv/bin/cim", "import", "epanet", str(DATA / "wntr_bad_syntax.inp"), "--crs",
                          "EPSG:4547", "--offset", "501800,3649500"], env=cli_env, cwd=ROOT,
                         capture_output=True, text=True, check=False)
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0 and "wntr_bad_syntax.inp" in out.stderr and "[FOO]" in out.stderr
    assert count(db, "select count(*) from datasets") == 0
    assert count(db, "select count(*) from city_objects") == 0


def test_swmm_example1_conduits_inverts_and_manholes(db):
    res = swmm.import_file(DATA / "swmm_Example1.inp", engine=db, utility="rain", **PLACE)
    assert res.counts == {"pipe_node": 14, "pipe_segment": 13}
    assert (res.report["junctions"], res.report["outfalls"], res.report["conduits"]) == (13, 1, 13)
    assert count(db, "select count(*) from pipe_segments where utility = 'rain'") == 13
    assert n_components(db, "swmm_Example1") == 1
    # conduit 6 runs from junction 10 (invert 995 ft) to 21 (990 ft) with an outlet offset of 1 ft; 1 ft diameter
    (s_inv, e_inv, dia, frm, to), = rows(db, """
        select s.start_invert, s.end_invert, s.diameter_mm, (select key from city_objects where id = s.from_node),
               (select key from city_objects where id = s.to_node)
        from pipe_segments s join city_objects o on o.id = s.object_id where o.key = 'conduit:6'""")
    assert (frm, to) == ("node:10", "node:21")
    assert (s_inv, e_inv) == pytest.approx((995 * FT, 991 * FT), abs=0.001)
    assert dia == pytest.approx(304.8)
    # junction 10 is a manhole 3 ft deep: a shaft from its invert to its rim
    (kind, ground, depth, zmin, zmax), = rows(db, """select node_type, ground_z, depth, zmin, zmax from pipe_nodes
                                                  join city_objects on id = object_id where key = 'node:10'""")
    assert kind == "manhole" and (ground, depth) == pytest.approx((998 * FT, 3 * FT), abs=0.001)
    assert (zmin, zmax) == pytest.approx((995 * FT, 998 * FT), abs=0.001)
    # conduit 10 has a vertex in [VERTICES]
    assert count(db, """select st_npoints(s.centerline) from pipe_segments s join city_objects o on o.id = s.object_id
                        where o.key = 'conduit:10'""") == 3


def test_swmm_state_plane_model(make_db):
    # The title says EPSG:2817, but its coordinates fall far outside that CRS's area of use (Missouri West):
    # refused, even by a database in that CRS.
    db2817 = make_db(2817)
    with pytest.raises(GeoreferenceError, match="swmm_model_state_plane.inp.*outside the area of use"):
        swmm.import_file(DATA / "swmm_model_state_plane.inp", crs="EPSG:2817", engine=db2817)
    assert count(db2817, "select count(*) from datasets") == 0
    # Placed by hand: feet scaled to metres, the lower-left corner of its map moved into the district
    db = make_db(4547)
    x0, y0 = 2745633.581 * FT, 1116753.856 * FT
    res = swmm.import_file(DATA / "swmm_model_state_plane.inp", crs="EPSG:4547", scale=FT,
                           offset=(501800 - x0, 3649500 - y0), engine=db, utility="sewage")
    assert res.counts == {"pipe_node": 45, "pipe_segment": 44}
    assert res.report["flow_units"] == "MGD" and res.report["length_unit"] == "ft"
    # J4-001.1 bends through three vertices
    assert count(db, """select st_npoints(s.centerline) from pipe_segments s join city_objects o on o.id = s.object_id
                        where o.key = 'conduit:J4-001.1'""") == 5
    assert count(db, "select count(*) from pipe_segments where from_node is null or to_node is null") == 0


def test_invalid_swmm_model_is_refused_in_one_line(cli_env, db):
    with pytest.raises(InputError, match=r"swmm_invalid_model.inp: invalid model: .*InvalidLink2.*NonExistantNode2"):
        swmm.import_file(DATA / "swmm_invalid_model.inp", engine=db, **PLACE)
    out = subprocess.run([".venv/bin/cim", "import", "swmm", str(DATA / "swmm_invalid_model.inp"), "--crs",
                          "EPSG:4547", "--offset", "501800,3649500"], env=cli_env, cwd=ROOT,
                         capture_output=True, text=True, check=False)
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0 and "InvalidLink" in out.stderr
    assert count(db, "select count(*) from datasets") == 0


def test_bulk_cli_import_then_rerun_skips(cli_env, db):
    args = [".venv/bin/cim", "import", "epanet", str(DATA / "Net1.inp"), str(DATA / "Net3.inp"),
            "--crs", "EPSG:4547", "--offset", "501800,3649500", "--workers", "2"]
    out = subprocess.run(args, env=cli_env, cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "Net1" in out.stdout and "Net3" in out.stdout and out.stdout.count("imported") == 2
    again = subprocess.run(args, env=cli_env, cwd=ROOT, capture_output=True, text=True, check=False)
    assert again.returncode == 0 and again.stdout.count("skipped") == 2
    assert count(db, "select count(*) from datasets") == 2
    # a different placement is a different import
    moved = subprocess.run(args[:-4] + ["--offset", "501900,3649600", "--force"], env=cli_env, cwd=ROOT,
                           capture_output=True, text=True, check=False)
    assert moved.returncode == 0 and moved.stdout.count("replaced") == 2
    assert count(db, "select count(*) from city_objects") == 97 + 119 + 11 + 13

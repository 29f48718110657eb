"""The hydraulic round trip: an EPANET model imported, stored as a network and exported again simulates as
the original does (WNTR's EPANET solver on both files)."""
from __future__ import annotations

import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from conftest import DATA

from analyses.water.model import build_model, export_epanet
from cim_core.errors import InputError, NotFoundError
from importers import epanet

PLACE = {"crs": "EPSG:4547", "offset": (501800.0, 3649500.0)}
ROOT = Path(__file__).parents[1]


def simulate(path: Path, prefix: Path):
    import wntr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wn = wntr.network.WaterNetworkModel(str(path))
        return wn, wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=str(prefix))


@pytest.mark.parametrize("name", ["Net1", "Net3"])
def test_round_trip_simulates_as_the_original(db, tmp_path, name):
    epanet.import_file(DATA / f"{name}.inp", engine=db, **PLACE)
    out = export_epanet(tmp_path / f"{name}_out.inp", dataset=name, engine=db)
    assert out["controls_left_out"] == 0 and out["models_from"] == [name]
    wn0, r0 = simulate(DATA / f"{name}.inp", tmp_path / "orig")
    wn1, r1 = simulate(tmp_path / f"{name}_out.inp", tmp_path / "back")
    # the same model: every option, pattern, curve and control came back
    assert wn1.options.time.duration == wn0.options.time.duration and wn1.options.time.duration >= 24 * 3600
    assert sorted(wn1.pattern_name_list) == sorted(wn0.pattern_name_list)
    assert sorted(wn1.curve_name_list) == sorted(wn0.curve_name_list)
    assert len(wn1.control_name_list) == len(wn0.control_name_list)
    junctions = wn0.junction_name_list
    p0, p1 = r0.node["pressure"], r1.node["pressure"]
    assert list(p1.index) == list(p0.index) and len(p0.index) > 24  # every reporting step (hourly)
    assert np.abs(p1[junctions].to_numpy() - p0[junctions].to_numpy()).max() < 0.01  # m
    f0 = r0.link["flowrate"]
    f1 = r1.link["flowrate"][f0.columns]
    scale = np.maximum(np.abs(f0.to_numpy()), 1e-6)  # m3/s; a flow near zero compares absolutely
    assert (np.abs(f1.to_numpy() - f0.to_numpy()) / scale).max() < 0.001
    # tanks fill and drain as in the original
    tanks = wn0.tank_name_list
    assert np.abs(r1.node["head"][tanks].to_numpy() - r0.node["head"][tanks].to_numpy()).max() < 0.01


def test_export_follows_a_stored_change(db, tmp_path):
    """The export is of the stored network: a diameter changed in the model is the diameter exported."""
    epanet.import_file(DATA / "Net1.inp", engine=db, **PLACE)
    with db.begin() as c:
        c.execute(sa.text("update pipe_segments set diameter_mm = 300 where object_id = "
                          "(select id from city_objects where key = 'pipe:10')"))
    wn = build_model(db, dataset="Net1").wn
    assert wn.get_link("10").diameter == pytest.approx(0.3)
    assert wn.get_link("11").diameter == pytest.approx(14 * 0.0254)


def test_pipe_without_an_epanet_record_gets_the_c_of_its_material(db):
    """In an imported EPANET network, a pipe whose stored record is gone (edited in GIS) takes the C of its
    material; the others keep theirs, names included."""
    epanet.import_file(DATA / "Net1.inp", engine=db, **PLACE)
    with db.begin() as c:
        c.execute(sa.text("update city_objects set attributes = attributes - 'hydraulic' where key = 'pipe:10'"))
        c.execute(sa.text("update pipe_segments set material = 'ductile iron', install_year = null "
                          "where object_id = (select id from city_objects where key = 'pipe:10')"))
    model = build_model(db, dataset="Net1")
    assert model.report["roughness"] == {"ductile iron": 130.0}
    assert model.wn.get_link("10").roughness == 130.0 and model.wn.get_link("11").roughness == 100.0
    assert "10" in model.link_names and "9" in model.node_names


def test_export_of_pieces_without_source_is_refused(db, tmp_path):
    epanet.import_file(DATA / "Net1.inp", engine=db, **PLACE)
    # a box around junctions 22/23 only: cut off from reservoir 9 and tank 2
    with db.connect() as c:
        x, y = c.execute(sa.text("select st_x(geom), st_y(geom) from pipe_nodes join city_objects on id = object_id "
                                 "where key = 'node:23'")).one()
    with pytest.raises(InputError, match=r"piece\(s\) without a reservoir or tank.*first node"):
        export_epanet(tmp_path / "x.inp", bbox=(x - 1, y - 1, x + 1, y + 1), engine=db)
    with pytest.raises(NotFoundError, match="no water pipes"):
        export_epanet(tmp_path / "x.inp", bbox=(0, 0, 1, 1), engine=db)
    assert not (tmp_path / "x.inp").exists()


def test_cli_export(cli_env, db, tmp_path):
    epanet.import_file(DATA / "Net3.inp", engine=db, **PLACE)
    out = subprocess.run([".venv/bin/cim", "export", "epanet", "--utility", "water", "--out",
                          str(tmp_path / "n3.inp")], env=cli_env, cwd=ROOT, capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert "97 nodes" in out.stdout and "119 links" in out.stdout
    wn, res = simulate(tmp_path / "n3.inp", tmp_path / "cli")
    assert len(wn.junction_name_list) == 92 and res.node["pressure"].shape[0] == 169
    bad = subprocess.run([".venv/bin/cim", "export", "epanet", "--bbox", "0,0,1,1", "--out", str(tmp_path / "x.inp")],
                         env=cli_env, cwd=ROOT, capture_output=True, text=True, check=False)
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0 and "no water pipes" in bad.stderr


def test_simulation_run_stores_results_and_low_pressure(db, tmp_path):
    import wntr

    from analyses.water.hydraulics import results_of, simulate

    epanet.import_file(DATA / "Net1.inp", engine=db, **PLACE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wn = wntr.network.WaterNetworkModel(str(DATA / "Net1.inp"))
        wn.options.time.duration = 24 * 3600
        ref = wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=str(tmp_path / "ref"))
    p = ref.node["pressure"][wn.junction_name_list]
    low = sorted(p.columns[p.min() < 79.0])
    r = simulate(dataset="Net1", min_pressure=79.0, engine=db)
    assert r["times_s"] == [int(t) for t in p.index] and len(r["times_s"]) == 25
    assert r["series_stored"] == 11 * 3 + 13 * 2
    with db.connect() as c:
        found = c.execute(sa.text("select o.key, f.details from qa_findings f join city_objects o on o.id = f.object_id "
                                  "where f.run_id = :r and f.rule = 'low_pressure' order by o.key"),
                          {"r": r["run_id"]}).all()
        j22 = c.scalar(sa.text("select id from city_objects where key = 'node:22'"))
    assert sorted(k.split(":")[1] for k, _ in found) == low and low
    assert all(d["required_m"] == 79.0 and d["measured_m"] < 79.0 for _, d in found)
    series = results_of(r["run_id"], j22, db)
    assert np.abs(np.array(series["pressure"]) - p["22"].to_numpy()).max() < 0.01
    assert set(series) == {"pressure", "head", "demand"}
    # the default minimum service pressure (28 m, GB 50282) leaves Net1 without findings
    assert simulate(dataset="Net1", engine=db)["low_pressure_nodes"] == 0


def test_simulation_through_the_api(db, cli_env):
    from fastapi.testclient import TestClient

    from services import auth
    from services.app import create_app

    epanet.import_file(DATA / "Net1.inp", engine=db, **PLACE)
    with db.connect() as c:
        j22 = c.scalar(sa.text("select id from city_objects where key = 'node:22'"))
    _, key = auth.create_key("water", engine=db)
    h = {"X-API-Key": key}
    with TestClient(create_app()) as c:
        url = "/api/processes/hydraulics/execution"
        assert c.post(url, json={"inputs": {}}).status_code == 401
        r = c.post(url, json={"inputs": {"duration_h": 6}}, headers=h)
        assert r.status_code == 200, r.text
        run = r.json()["run"]
        assert run["times_s"] == [h_ * 3600 for h_ in range(7)]
        one = c.get(f"/api/water/runs/{run['run_id']}/results/{j22}", headers=h).json()
        assert len(one["series"]["pressure"]) == 7 and one["series"]["pressure"][0] > 28
        layer = c.get(f"/api/water/runs/{run['run_id']}/layer?quantity=pressure&time_s=3600", headers=h).json()
        assert layer["values"][str(j22)] == pytest.approx(one["series"]["pressure"][1])
        bad = c.get(f"/api/water/runs/{run['run_id']}/layer?time_s=100", headers=h)
        assert bad.status_code == 400 and "not a reporting time" in bad.json()["detail"]
        assert c.get(f"/api/water/runs/{run['run_id']}/results/99999999", headers=h).status_code == 404
    out = subprocess.run([".venv/bin/cim", "analyse", "hydraulics", "--hours", "2"], env=cli_env, cwd=ROOT,
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0 and "3 time steps" in out.stdout, out.stderr

"""`cim demo` runs the 3-year design storm over the sample district once (again after the district changed), so
the waterlogging layer and the health check's 严重易涝积水点数量 have data from the first start; above
STORM_MAX_SCALE it runs in a process beside the server, and the health check after it; the live simulation's
sensors are placed before the health check, whose monitored pipes count them."""
from __future__ import annotations

import signal
import time

import sqlalchemy as sa

from analyses.healthcheck import yearly
from cim_core.settings import get_settings
from importers import gis
from sample_models.district import dataset_of, drainage, generate
from services.cli import serve
from services.cli.demo_live import background_storm


def _district(db, folder) -> None:
    generate(folder, scale=0.05, seed=7)
    gis.import_file(folder / "district.gpkg", layer="pipes", kind="pipes", dataset=dataset_of("pipes"), engine=db)
    gis.import_file(folder / "district.gpkg", layer="landuse", kind="landuse", dataset="sample-landuse", engine=db)
    drainage.load(folder, engine=db)


def _runs(db):
    with db.connect() as c:
        return c.execute(sa.text("""select r.id, r.inputs, r.requested_by, count(f.id) from analysis_runs r
            left join qa_findings f on f.run_id = r.id and f.rule = 'flooding'
            where r.analysis = 'drainage-storm' group by r.id order by r.id""")).all()


def test_demo_runs_the_design_storm_once(db, tmp_path):
    _district(db, tmp_path)
    assert serve._design_storm(db, again=False)
    (rid, inputs, who, flooding), = _runs(db)
    assert inputs == {"dataset": "sample-pipes", "return_period": 3, "duration_min": 120} and who == "cim demo"
    assert flooding > 0  # the low-lying area floods: the layer has points
    assert not serve._design_storm(db, again=False) and len(_runs(db)) == 1  # a second start reuses it
    assert serve._design_storm(db, again=True) and len(_runs(db)) == 2  # the district changed: run again


def test_the_storm_beside_the_server_stops_with_the_demo(db, tmp_path, monkeypatch):
    _district(db, tmp_path / "district")
    monkeypatch.setenv("CIM_HOME", str(tmp_path))  # the child gets the test database's CIM_DATABASE_URL
    get_settings.cache_clear()
    with background_storm(True, dataset_of("pipes"), 2025) as procs:
        assert procs[0].wait(120) == 0
        for _ in range(100):  # then the health check, started by a thread once the storm ended
            if len(procs) == 2:
                break
            time.sleep(0.1)
        assert procs[1].wait(120) == 0
    (rid, inputs, who, flooding), = _runs(db)
    assert inputs == {"dataset": "sample-pipes", "return_period": 3, "duration_min": 120} and flooding > 0
    assert f"run {rid}: {flooding} flooding manholes" in (tmp_path / "demo-storm.log").read_text()
    assert yearly.latest_run(2025, db) > rid  # the health check after the storm

    with background_storm(True, dataset_of("pipes"), 2025) as procs:
        pass  # the demo stops before the storm ends
    assert procs[0].returncode == -signal.SIGTERM and len(procs) == 1 and len(_runs(db)) == 1
    with background_storm(False, dataset_of("pipes"), 2025) as procs:
        assert procs == []


def test_the_demos_health_check_follows_a_newer_storm(db, tmp_path, monkeypatch):
    _district(db, tmp_path)
    year = serve.health_check_year()
    serve._health_check(db, again=False)
    first = yearly.latest_run(year, db)
    serve._health_check(db, again=False)
    assert yearly.latest_run(year, db) == first  # nothing new: kept
    assert serve._design_storm(db, again=False)
    serve._health_check(db, again=False)
    assert yearly.latest_run(year, db) > first  # a storm ran since: its waterlogging points are counted


def test_the_demos_sensors_count_in_the_health_check(db, tmp_path):
    _district(db, tmp_path)
    year = serve.health_check_year()
    assert serve._demo_sensors(db) and not serve._demo_sensors(db)  # placed once, as the simulation would
    with db.connect() as c:
        on_nodes = c.scalar(sa.text("select count(*) from sensors s join pipe_nodes n on n.object_id = s.asset_id"))
    assert on_nodes > 0
    serve._health_check(db, again=True)
    rate = [r for r in yearly.results(year, db) if r["indicator"] == "pipe_monitoring_rate" and r["level"] == "district"]
    assert rate and rate[0]["value"] > 0  # pipes with a sensor at an end are monitored (analyses.alarms.coverage)

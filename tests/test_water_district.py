"""Water operations on the sample district's water network: valve statuses, its source, isolation,
criticality, the EPANET export of a GIS network and the renewal backlog."""
from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from analyses.water import criticality, isolation, renewal
from analyses.water.hydraulics import simulate
from analyses.water.model import build_model
from importers import gis, incidents
from sample_models.district import generate


@pytest.fixture
def district(db, tmp_path):
    manifest = generate(tmp_path, scale=0.3, seed=7)
    gis.import_file(tmp_path / "district.gpkg", layer="pipes", kind="pipes", dataset="sample-pipes", engine=db)
    return db, manifest


def test_district_water_operations(district, tmp_path):
    db, manifest = district
    water = manifest["water"]
    with db.connect() as c:
        statuses = dict(c.execute(sa.text(
            "select o.attributes->>'status', count(*) from pipe_nodes n join city_objects o on o.id = n.object_id "
            "where n.utility = 'water' and n.node_type = 'valve' group by 1")).all())
        sources = c.scalar(sa.text("select count(*) from pipe_nodes where utility = 'water' and "
                                   "node_type = 'reservoir'"))
    assert sources == 1 and statuses["open"] > 10 * (statuses.get("seized", 0) + statuses.get("missing", 0)) > 0
    assert water["valves"] == {s: statuses.get(s, 0) for s in ("open", "seized", "missing")}
    # the repair history: clustered on old cast iron; the two planted bad rows refused, nothing else lost
    inc = incidents.import_file(tmp_path / water["incidents"]["path"], dataset="sample-water-incidents", engine=db)
    assert [r["row"] for r in inc.report["refused"]] == water["incidents"]["refused_rows"]
    assert inc.report["stored"] == water["incidents"]["rows"] - 2
    with db.connect() as c:
        on_old = c.scalar(sa.text("""
            select count(*) from city_objects i join pipe_segments s on s.object_id = (i.attributes->>'pipe_id')::bigint
            where i.class = 'incident' and s.material = 'cast iron' and s.install_year < 2000"""))
    assert on_old >= 0.9 * inc.report["stored"]
    iso = isolation.load(db)
    assert iso.segments.count > 50 and (~iso.operable).sum() == statuses.get("seized", 0) + statuses.get("missing", 0)
    # a burst on every tenth main: the valves to close bound exactly the isolated area
    for pipe in range(0, iso.net.n_segments, max(1, iso.net.n_segments // 10)):
        r = iso.burst(pipe)
        assert r["valves_to_close"] and iso.net.segment_id[pipe] in r["isolated"]["pipes"]
        assert not r["source_assumed"]
    crit = criticality.criticality(engine=db)
    assert crit["pipes"] == iso.net.n_segments and crit["max_out_of_service_m"] > 0
    # the GIS network exports and simulates: no buildings imported, so no demand
    model = build_model(db)
    assert len(model.wn.reservoir_name_list) == 1 and len(model.wn.pipe_name_list) == iso.net.n_segments
    assert {model.wn.get_link(n).roughness for n in model.wn.pipe_name_list} <= {74.0, 83.0, 95.0, 110.0, 130.0,
                                                                                 140.0}
    run = simulate(duration_h=1, engine=db)
    assert run["nodes"] == iso.net.n_nodes and np.isfinite(run["min_pressure_m"])
    # the cast-iron mains of 1982-1999 make the backlog
    prog = renewal.programme(target_km=1.0, target_date="2027-12-31", start_year=2025, engine=db)
    assert prog["backlog_km"] > 1.0 and prog["reachable"]
    assert prog["pipes"][0]["f_repairs"] > 0  # the mains that keep failing come first
    assert {p["material"] for p in prog["pipes"]} <= {"cast iron", "ductile iron", "PE"}

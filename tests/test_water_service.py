"""The buildings the sample district's water network serves: their demands in the EPANET export (a
per-use table), the unconnected urban village, the buildings a burst cuts off, roughness by material and
age, and the exported model running in WNTR with sensible pressures."""
from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import numpy as np
import pyogrio.raw
import pytest
import shapely
import sqlalchemy as sa

from analyses.water import isolation
from analyses.water.model import DATA, build_model, hazen_williams_c
from analyses.water.service import unserved
from importers import gis
from sample_models.district import generate

ROOT = Path(__file__).parents[1]


@pytest.fixture
def district(db, tmp_path):
    manifest = generate(tmp_path, scale=0.3, seed=7)
    gis.import_file(tmp_path / "district.gpkg", layer="pipes", kind="pipes", dataset="sample-pipes", engine=db)
    gis.import_file(tmp_path / "district.gpkg", layer="buildings", kind="buildings", dataset="sample-buildings",
                    engine=db)
    return db, manifest, tmp_path


def _expected_demand(gpkg, village: set[str]) -> float:
    """m3/s of every building off the village, from the layer itself: footprint x floors x litres/m2/day."""
    rates = {r["use"]: float(r["litres_per_m2_day"]) for r in csv.DictReader(open(DATA / "demand.csv"))}
    meta, _, geoms, data = pyogrio.raw.read(gpkg, layer="buildings", columns=["id", "floors", "use"])
    cols = dict(zip(meta["fields"], data))
    area = shapely.area(shapely.from_wkb(geoms))
    litres = sum(a * max(f or 1, 1) * rates.get(u, rates["default"])
                 for i, a, f, u in zip(cols["id"], area, cols["floors"], cols["use"]) if i not in village)
    return litres / 1000 / 86400


def test_demands_village_and_simulation(district, cli_env):
    db, manifest, folder = district
    village = manifest["water"]["unconnected_village"]
    assert village["name"].endswith("村") and len(village["buildings"]) > 10
    with db.connect() as c:
        flagged = set(c.scalars(sa.text("select key from city_objects where class = 'building' "
                                        "and attributes->>'water_service' = 'none'")))
    assert flagged == set(village["buildings"])
    off = unserved(db)
    assert off["flagged"] == len(village["buildings"]) and off["count"] >= off["flagged"]
    with db.connect() as c:
        keys = set(c.scalars(sa.text("select key from city_objects where id = any(:i)"), {"i": off["buildings"]}))
    assert set(village["buildings"]) <= keys
    out = subprocess.run([str(ROOT / ".venv/bin/cim"), "water", "unserved", "--json"], env=cli_env, cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0 and json.loads(out.stdout)["count"] == off["count"], out.stdout + out.stderr
    model = build_model(db)
    wn = model.wn
    total = sum(wn.get_node(n).demand_timeseries_list[0].base_value for n in wn.junction_name_list)
    if off["count"] == off["flagged"]:  # every other building within reach of a junction
        assert total == pytest.approx(_expected_demand(folder / "district.gpkg", set(village["buildings"])),
                                      rel=1e-6)
    assert total > 0.01  # m3/s: a district of some thousand people
    # roughness from material and age: old cast iron rougher than new
    assert hazen_williams_c("cast iron", 1985, 2026)[1] == 74 and hazen_williams_c("cast iron", 2024, 2026)[1] == 130
    assert hazen_williams_c("PE", 1990, 2026)[1] == 140
    cs = {wn.get_link(n).roughness for n in wn.pipe_name_list}
    assert 74.0 in cs and max(cs) >= 130
    # the exported model runs in WNTR with sensible pressures
    import wntr
    wn.options.time.duration = 6 * 3600
    res = wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=str(folder / "sim"))
    p = res.node["pressure"][wn.junction_name_list]
    assert p.values.min() > 10 and p.values.max() < 60, (p.values.min(), p.values.max())
    assert (res.node["demand"][wn.junction_name_list].values.sum(axis=1) > 0.01).all()


def test_a_burst_names_the_buildings_cut_off(district):
    db, manifest, _ = district
    village = set(manifest["water"]["unconnected_village"]["buildings"])
    iso = isolation.load(db)
    assert iso.service is not None
    with db.connect() as c:
        key_of = dict(c.execute(sa.text("select id, key from city_objects where class = 'building'")).all())
    seen = 0
    for pipe in range(0, iso.net.n_segments, max(1, iso.net.n_segments // 25)):
        r = iso.burst(pipe)
        dry = r["isolated"]["buildings"] + r["cut_off"]["buildings"]
        assert not village & {key_of[b] for b in dry}
        nodes = np.isin(iso.net.node_id, r["isolated"]["nodes"])
        served = iso.service.node >= 0
        expect = iso.service.building[served & nodes[np.maximum(iso.service.node, 0)]]
        assert sorted(r["isolated"]["buildings"]) == sorted(expect.tolist())
        seen += len(dry)
    assert seen > 0

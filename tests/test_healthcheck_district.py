"""The health check on the generated sample district (scale 1): the straight-line park coverage equals an
independent computation from the GeoPackage with shapely (buffers and overlays) within 0.1 percentage point,
walking coverage is never above the straight line, and the planted gaps (a street without a secondary school
within 1 km, a compound 900 m from any park) show in the values and the problem list."""
from __future__ import annotations

import pyogrio
import pytest
import shapely

from analyses.healthcheck import yearly
from importers import gis
from sample_models.district import entries, generate

LAYERS = ("roads", "landuse", "compounds", "green", "hc_units", "hc_facilities")


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("district")
    return out, generate(out, scale=1, seed=7)


def read(out, layer):
    meta, _, geom, data = pyogrio.raw.read(out / "district.gpkg", layer=layer)
    return dict(zip(meta["fields"], data)), shapely.from_wkb(geom)


def park_coverage_with_shapely(out) -> float:
    """As an analyst would: residential land, parks by size band buffered by their radius, overlay."""
    land, land_geoms = read(out, "landuse")
    _, green = read(out, "green")
    area = shapely.area(green)
    small = green[(area >= 2000) & (area < 5000)]
    large = green[area >= 5000]
    cover = shapely.union_all([*shapely.buffer(small, 300), *shapely.buffer(large, 500)])
    residential = shapely.union_all(land_geoms[land["landuse"] == "residential"])
    return 100 * shapely.intersection(residential, cover).area / residential.area


def test_sample_district_values(sample, db):
    out, manifest = sample
    for e in entries(out):
        if e.importer == "gis" and e.options["layer"] in LAYERS:
            gis.import_file(out / e.path, engine=db, **e.options)
    hc = yearly.run(2025, engine=db, only=["park_coverage", "middle_school_coverage", "shelter_area_per_capita",
                                           "road_density", "greenway_coverage", "bus_stop_500", "fire_station_coverage",
                                           "life_circle", "pre2000_households"])
    park = hc.value("park_coverage")
    assert park.straight == pytest.approx(park_coverage_with_shapely(out), abs=0.1)
    for ind, v in hc.values:
        if ind.kind == "coverage" and v.value is not None:
            assert v.value <= v.straight + 1e-9, (ind.id, v.unit.name)
    streets = [v for ind, v in hc.values if ind.id == "middle_school_coverage" and v.unit.level == "street"]
    gap = manifest["healthcheck"]["street_without_secondary_school"]
    assert len(streets) == manifest["healthcheck"]["streets"]
    assert [v.value for v in streets if v.unit.name == gap] == [0.0]
    assert all(v.value > 0 for v in streets if v.unit.name != gap)
    problems = yearly.problems(2025, db)
    assert any(p["indicator"] == "middle_school_coverage" and p["message"].startswith(gap) for p in problems)
    assert 0 < hc.value("shelter_area_per_capita").value < 2  # one 20,000 m2 shelter per street falls short
    assert hc.value("road_density").value > 8
    estate = manifest["healthcheck"]["compound_far_from_park"]
    park_gap = [p for p in problems if p["indicator"] == "park_coverage" and p["details"].get("behind")]
    assert estate["name"] in {p["message"].split(":")[0] for p in park_gap}
    assert estate["park_distance_m"] >= 900
    _, green = read(out, "green")  # independently: the estate is 900 m from every park of 2,000 m2 and more
    comp, comp_geoms = read(out, "compounds")
    mine = comp_geoms[list(comp["name"]).index(estate["name"])]
    assert shapely.distance(mine, green[shapely.area(green) >= 2000]).min() >= 900
    for ind in ("greenway_coverage", "bus_stop_500", "fire_station_coverage", "life_circle", "pre2000_households"):
        assert hc.value(ind).value is not None, ind
    assert hc.value("fire_station_coverage").value < 100  # one station for four streets
    circle = [v for ind, v in hc.values if ind.id == "life_circle" and v.unit.level == "compound"]
    assert len(circle) == len(comp_geoms)  # one value per compound

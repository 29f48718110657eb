"""The indicators of the city's stock, safety and life circles on a hand-made district, each value worked out here.

Metres from E0, N0 (storage CRS EPSG:4547):

    y=400 ║ greenway x 1205, y 0..400 (a road of class greenway, joined to the street at its end)
    y=140 C3 x 850..950, y 140..180 (no build year, 50 households; B3 inside, floors 2, no 3D model)
    y=20  residential strip x 0..1000, y 20..60; C1 x 50..150 (1995, 100 households; B1 3 floors, LoD 1),
          C2 x 650..750 (2005, 300 households; B2 5 floors, LoD 1); buildings are 20 x 20 m
    y=0   ═══ the only street, x -95..1205: its graph nodes lie every 20 m at x = 20k + 5
    y=-10 facilities: kindergarten 305 and 705, primary school 505, market 705, secondary school 905,
          health centre 1105; bus stop (100, -5); fire station (1000, -20)
    y=10  hydrants at x 100, 200, 400, 450 (one more at (900, 200), away from the street)
    y=-30 water mains: 0..300 grey cast iron 1990; 300..800 PE, no install year (a sensor on it);
          800..1000 PE 2024, renewed 2024. y=-35 gas: 0..400 planned 2025, renewed 2025; 400..600 planned
          2025; 600..1000 planned 2026
    Streets (街道): W x -100..500, E x 500..1300 (y -100..300); the district is their extent, 0.56 km2.

A compound is its representative point: C1 (100, 40), C2 (700, 40), C3 (900, 160). It joins the street at
the nearest node by a straight leg: 40.31 m for C1 and C2 (sqrt(5² + 40²)), 160.08 m for C3; a facility at
y=-10 joins by 10 m. So C1 walks 40.31 + 200 + 10 = 250.31 m to the kindergarten at 305 (<= 300), 450.31 m to
the primary school (<= 500), 650.31 m to the market (> 500), 850.31 m to the secondary school (<= 1000) and
1040.31 m to the health centre (> 1000): 3 of 5 classes, 60 %. C2 reaches all five (kindergarten and market
at 705: 50.31 m, school 250.31 m, secondary school 250.31 m, health centre 450.31 m): 100 %. C3: kindergarten
770.08 m (> 300), primary school 570.08 m (> 500), market 370.08, secondary school 170.08, health centre
370.08 m: 60 %. Complete: C2 only, 1 of 3 in the district, 0 of 1 in W, 1 of 2 in E.

Greenway (1 km): a cell of the residential strip at (x, y) walks sqrt(5² + y²) + 1205 - (x - 5) m to the
greenway's foot. Row y=30 (leg 30.41): within 1000 m for cell centres x >= 250 (38 cells of 50); row y=50
(leg 50.25): x >= 270 (37 cells): 75 %. Straight line: x >= 205 of the strip, 79.5 %.
"""
from __future__ import annotations

import numpy as np
import pytest
import shapely

from analyses.healthcheck import yearly
from cim_core.model import CityObject, DatasetInfo, PipeNode, PipeSegment
from cim_core.sensors import SensorRecord, register_sensors
from cim_core.store import write_dataset
from test_healthcheck import assert_refused

E0, N0 = 500000.0, 3650000.0


def box(x0, y0, x1, y1):
    return shapely.box(E0 + x0, N0 + y0, E0 + x1, N0 + y1)


def pt(x, y):
    return shapely.Point(E0 + x, N0 + y)


def main(key, utility, x0, x1, y, **attrs):
    line = np.array([[E0 + x0, N0 + y, 70.0], [E0 + x1, N0 + y, 70.0]])
    seg = PipeSegment(utility, line, diameter_mm=200, material=attrs.pop("material", None),
                      install_year=attrs.pop("install_year", None))
    return CityObject(key, "pipe_segment", attributes=attrs, pipe=seg)


def hydrant(key, x, y):
    return CityObject(key, "pipe_node", footprint=pt(x, y),
                      node=PipeNode("water", "hydrant", (E0 + x, N0 + y, 71.0), depth=1.0))


def facility(key, kind, x, y=-10):
    return CityObject(key, "facility", name=key, attributes={"kind": kind}, footprint=pt(x, y))


def building(key, x, y, floors, lod=None):
    return CityObject(key, "building", name=key, attributes={"floors": floors}, lod=lod,
                      footprint=box(x - 10, y - 10, x + 10, y + 10), zmin=70.0, zmax=70.0 + 3 * floors)


def compound(key, x0, y0, households, year=None):
    attrs = {"id": key, "households": households} | ({"build_year": year} if year else {})
    return CityObject(key, "landuse", name=key, attributes=attrs, footprint=box(x0, y0, x0 + 100, y0 + 40))


def objects() -> list[CityObject]:
    return [
        CityObject("W", "landuse", name="西街道", attributes={"unit": "street", "id": "W"}, footprint=box(-100, -100, 500, 300)),
        CityObject("E", "landuse", name="东街道", attributes={"unit": "street", "id": "E"}, footprint=box(500, -100, 1300, 300)),
        CityObject("R", "landuse", attributes={"landuse": "residential"}, footprint=box(0, 20, 1000, 60)),
        compound("C1", 50, 20, 100, 1995), compound("C2", 650, 20, 300, 2005), compound("C3", 850, 140, 50),
        building("B1", 100, 30, 3, lod=1), building("B2", 700, 30, 5, lod=1), building("B3", 900, 160, 2),
        CityObject("S", "road", name="一路", footprint=shapely.LineString([(E0 - 95, N0), (E0 + 1205, N0)])),
        CityObject("G", "road", name="绿道", attributes={"road_class": "greenway"},
                   footprint=shapely.LineString([(E0 + 1205, N0), (E0 + 1205, N0 + 400)])),
        *[hydrant(f"H{k}", x, 10) for k, x in enumerate((100, 200, 400, 450))], hydrant("H9", 900, 200),
        facility("K1", "kindergarten", 305), facility("K2", "kindergarten", 705), facility("P", "primary_school", 505),
        facility("M", "market", 705), facility("Z", "middle_school", 905), facility("HC", "health_centre", 1105),
        facility("BS", "bus_stop", 100, -5), facility("F", "fire_station", 1000, -20),
        main("w1", "water", 0, 300, -30, material="grey cast iron", install_year=1990),
        main("w2", "water", 300, 800, -30, material="pe"),
        main("w3", "water", 800, 1000, -30, material="pe", install_year=2024, renewed_year=2024),
        main("g1", "gas", 0, 400, -35, renewal_plan_year=2025, renewed_year=2025),
        main("g2", "gas", 400, 600, -35, renewal_plan_year=2025),
        main("g3", "gas", 600, 1000, -35, renewal_plan_year=2026),
    ]


@pytest.fixture
def hc(db):
    write_dataset(DatasetInfo("hc-stock", "test", "fixture", "x"), objects(), engine=db)
    register_sensors([SensorRecord("P-w2", "pressure", asset="w2")], engine=db)
    return yearly.run(2025, engine=db), db


def test_life_circle_per_compound_and_share_complete(hc):
    run, _ = hc
    c1 = run.value("life_circle", "compound", "C1")
    assert c1.value == pytest.approx(60.0) and sorted(c1.details["missing"]) == ["health_centre", "market"]
    legs = np.hypot(5, 40)
    assert c1.details["classes"]["kindergarten"]["walking_m"] == pytest.approx(legs + 200 + 10, abs=0.1)
    assert c1.details["classes"]["middle_school"]["walking_m"] == pytest.approx(legs + 800 + 10, abs=0.1)
    assert c1.details["classes"]["kindergarten"]["straight_m"] == pytest.approx(np.hypot(205, 50), abs=0.1)
    assert run.value("life_circle", "compound", "C2").value == pytest.approx(100.0)
    c3 = run.value("life_circle", "compound", "C3")
    assert c3.value == pytest.approx(60.0) and sorted(c3.details["missing"]) == ["kindergarten", "primary_school"]
    assert run.value("life_circle").value == pytest.approx(100 / 3)
    assert sorted(n for _, n in run.value("life_circle").objects) == ["C1", "C3"]
    assert run.value("life_circle", "street", "W").value == 0.0
    assert run.value("life_circle", "street", "E").value == pytest.approx(50.0)


def test_stock_age_mains_renewal_monitoring_and_3d(hc):
    run, _ = hc
    assert run.value("pre2000_compounds").value == pytest.approx(50.0)  # C1 of C1, C2 (C3 has no year)
    assert run.value("pre2000_compounds").details["unknown"] == 1
    assert run.value("pre2000_households").value == pytest.approx(100 / 400 * 100)
    assert run.value("pre2000_floor_area").value == pytest.approx(1200 / (1200 + 2000) * 100)  # 400 m2 x floors
    assert run.value("pre2000_compounds", "street", "W").value == pytest.approx(100.0)
    old = run.value("old_water_mains")  # cast iron 35 years >= 30; PE of 2024 well within 50; one unknown
    assert old.value == pytest.approx(30.0) and old.details["unknown_age_m"] == pytest.approx(500.0)
    assert [n for _, n in old.objects] == ["w1"]
    assert run.value("water_main_renewal").value == pytest.approx(200 / 144340 * 100)
    gas = run.value("gas_renewal_rate")  # 400 m of the 600 m planned for 2025
    assert gas.value == pytest.approx(400 / 600 * 100) and [n for _, n in gas.objects] == ["g2"]
    assert run.value("pipe_monitoring_rate").value == pytest.approx(500 / 2000 * 100)  # the sensor on w2
    assert run.value("cim_3d_coverage").value == pytest.approx(800 / (1400 * 400) * 100)  # B1, B2 of 0.56 km2


def test_fire_safety_greenway_and_bus_stops(hc):
    run, db = hc
    outside = run.value("hydrant_protection")  # B2 (700, 30): 250.8 m from (450, 10), 262 m from (900, 200)
    assert outside.value == 1 and [n for _, n in outside.objects] == ["B2"]
    assert run.value("hydrant_protection", "street", "W").value == 0
    gaps = run.value("hydrant_spacing")  # along the street: 100, 200, 50 m; H9 is 200 m off it
    assert gaps.value == 1 and gaps.details["gaps"][0]["gap_m"] == pytest.approx(200.0)
    assert run.value("hydrant_spacing", "street", "W").value == 1  # its middle, x 300, lies in W
    assert run.value("hydrant_spacing", "street", "E").value == 0
    assert run.value("fire_station_coverage").value == pytest.approx(100.0)
    green = run.value("greenway_coverage")
    assert (green.value, green.straight) == (pytest.approx(75.0), pytest.approx(79.5))
    # Bus stop (100, -5), joined at node 105 by 5 m: construction land is the strip and C3 (44,000 m2); a strip
    # cell k walks 5 + |20k - 100| + leg. 300 m: row y=30 k <= 18, row y=50 k <= 17 (37 cells of 400 m2);
    # 500 m: k <= 28 and k <= 27 (57 cells). Straight line: the strip inside the circle (an independent overlay).
    land = shapely.union_all([box(0, 20, 1000, 60), box(850, 140, 950, 180)])
    for ind, radius, cells in (("bus_stop_300", 300, 37), ("bus_stop_500", 500, 57)):
        v = run.value(ind)
        assert v.value == pytest.approx(cells * 400 / 44000 * 100)
        circle = pt(100, -5).buffer(radius, quad_segs=256)
        assert v.straight == pytest.approx(land.intersection(circle).area / land.area * 100, abs=0.1)
    probs = yearly.problems(2025, db)
    assert any(p["indicator"] == "hydrant_protection" and p["object_key"] == "B2" for p in probs)
    assert any(p["indicator"] == "life_circle" and p["object_key"] == "C1" and "生活圈" in p["message"] for p in probs)


def test_absent_inputs_are_no_data(db):
    keep = {"W", "E", "S", "C1", "C2", "C3"}
    objs = [o for o in objects() if o.key in keep]
    for o in objs:
        o.attributes.pop("build_year", None)
    write_dataset(DatasetInfo("hc-bare", "test", "fixture", "x"), objs, engine=db)
    run = yearly.run(2025, engine=db)
    for ind in ("life_circle", "pre2000_compounds", "pre2000_floor_area", "old_water_mains", "water_main_renewal",
                "gas_renewal_rate", "cim_3d_coverage", "hydrant_protection", "hydrant_spacing",
                "fire_station_coverage", "greenway_coverage", "bus_stop_300"):
        v = run.value(ind)
        assert v.value is None and v.details["no_data"], ind


BANDS = """
[classes.homes]
class = "landuse"
[classes.school]
class = "facility"
[[indicators]]
id = "circle"
name_zh = "生活圈"
name_en = "Life circle"
level = "小区"
kind = "life_circle"
params = { of = "homes", bands = [{ radius = 300, classes = ["school"] }] }
unit = "%"
source = "test"
"""


@pytest.mark.parametrize("edit, field", [
    (("radius = 300", "radius = -1"), "field bands[0].radius: must be a positive distance"),
    (('classes = ["school"]', 'classes = ["clinic"]'), "field bands[0].classes: unknown facility class 'clinic'"),
    (('of = "homes", ', ""), "field of: missing"),
    (('kind = "life_circle"\nparams = { of = "homes", bands = [{ radius = 300, classes = ["school"] }] }',
      'kind = "renewal_progress"\nparams = { of = "homes", done_attribute = "renewed_year" }'),
     "field planned_km: give either planned_km"),
    (('kind = "life_circle"\nparams = { of = "homes", bands = [{ radius = 300, classes = ["school"] }] }',
      'kind = "spacing"\nparams = { of = "school", along = "homes", max_gap = -120, snap = 30 }'),
     "field max_gap: must be positive"),
])
def test_bad_new_kinds_are_refused_in_one_line(tmp_path, edit, field):
    assert_refused(tmp_path, BANDS.replace(*edit), "circle", field)

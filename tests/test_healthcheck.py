"""City health check: the computation kinds on a hand-made district whose values are worked out here,
"no data" for absent inputs, the checks of indicator files, yearly runs, compare, problems and export.

The fixture (metres from E0, N0; storage CRS EPSG:4547):

    y=100 ┌──────┐ pocket park 30x30 (900 m2, below every band) at x 400..430, y 100..130
    y=30  ┌─┐
    y=20  │P│ residential strip x 0..1000, y 0..20 (one row of 20 m cells)   ┌──┐ large park x 1000..1100,
    y=0   └─┘ C1 x100..140   C2 x400..440   C3 x520..560                   └──┘ y 0..100 (10,000 m2)
          small park x -100..0, y 0..30 (3,000 m2)
    y=-50 ═══ the only street, x -95..1205 (nodes every 20 m at x = 20k + 5)

Straight line: the small park (300 m band) covers x 0..300, the large one (500 m band) x 500..1000: 80 %.
Walking: a cell k (centre x = 20k + 10, y = 10) joins the street at node 20k + 5 by a leg of
sqrt(5² + 60²) = 60.21 m. The small park reaches the street at (5, -50) from its corner (0, 0) by
sqrt(5² + 50²) = 50.25 m, so cell k is 60.21 + 50.25 + 20k from it: within 300 m for k <= 9 (x 0..200).
A place joins at its nearest node only: the large park's corner (1000, 0) joins node 1005 by 50.25 m,
so cell k is 60.21 + 50.25 + 1005 - (20k + 5) from it: within 500 m for k >= 31 (x 620..1000).
Walking: 200 + 380 m of 1000 m = 58 %.
"""
from __future__ import annotations

import csv

import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from openpyxl import load_workbook

from analyses.healthcheck import definitions, export, yearly
from cim_core.errors import InputError
from cim_core.model import CityObject, DatasetInfo, PipeSegment
from cim_core.store import write_dataset

E0, N0 = 500000.0, 3650000.0


def box(x0, y0, x1, y1):
    return shapely.box(E0 + x0, N0 + y0, E0 + x1, N0 + y1)


def pipe(key, x0, x1, utility="water", **attrs):
    line = np.array([[E0 + x0, N0 - 30, 70.0], [E0 + x1, N0 - 30, 70.0]])
    return CityObject(key, "pipe_segment", attributes=attrs, pipe=PipeSegment(utility, line, diameter_mm=200))


def fixture_objects(monitored: bool = True) -> list[CityObject]:
    compounds = [("C1", 100, 1000), ("C2", 400, 500), ("C3", 520, 500)]
    return [
        CityObject("land", "landuse", attributes={"landuse": "residential"}, footprint=box(0, 0, 1000, 20)),
        *[CityObject(k, "landuse", name=k, attributes={"households": p // 2, "population": p},
                     footprint=box(x, 0, x + 40, 20)) for k, x, p in compounds],
        CityObject("W", "landuse", name="西街道", attributes={"unit": "street", "id": "W"},
                   footprint=box(-200, -100, 500, 200)),
        CityObject("E", "landuse", name="东街道", attributes={"unit": "street", "id": "E"},
                   footprint=box(500, -100, 1300, 200)),
        CityObject("P1", "green", footprint=box(-100, 0, 0, 30)),
        CityObject("P2", "green", footprint=box(1000, 0, 1100, 100)),
        CityObject("P3", "green", footprint=box(400, 100, 430, 130)),
        CityObject("S", "road", footprint=shapely.LineString([(E0 - 95, N0 - 50), (E0 + 1205, N0 - 50)])),
        CityObject("H", "facility", attributes={"kind": "shelter", "effective_area_m2": 3000},
                   footprint=shapely.Point(E0 + 700, N0 + 60)),
        pipe("w1", 0, 300, **({"monitored": True} if monitored else {})),
        pipe("w2", 300, 1000, **({"monitored": False} if monitored else {})),
    ]


@pytest.fixture
def district(db):
    write_dataset(DatasetInfo("hc-fixture", "test", "fixture", "x"), fixture_objects(), engine=db)
    return db


def test_every_kind_on_the_hand_made_district(district):
    hc = yearly.run(2025, engine=district)
    park = hc.value("park_coverage")
    assert park.straight == pytest.approx(80.0, abs=1e-6)
    assert park.value == pytest.approx(58.0, abs=1e-6)
    west, east = hc.value("park_coverage", "street", "W"), hc.value("park_coverage", "street", "E")
    assert (west.straight, west.value) == (pytest.approx(60.0), pytest.approx(40.0))  # 300 and 200 m of 500
    assert (east.straight, east.value) == (pytest.approx(100.0), pytest.approx(76.0))  # 500 and 380 m of 500
    # compounds not served on foot: C2 in the gap, C3 (x 540) 552 m from the large park on foot
    assert sorted(n for _, n in park.objects) == ["C2", "C3"]
    # the district is the extent of the land parcels: x -200..1300, y -100..200 (0.45 km2), 1.3 km of street
    assert hc.value("road_density").value == pytest.approx(1.3 / 0.45)
    assert hc.value("pipe_monitoring_rate").value == pytest.approx(30.0)  # 300 m of 1000 m
    assert hc.value("park_area_per_capita").value == pytest.approx(13000 / 2000)  # P1 + P2; P3 < 2,000 m2
    assert hc.value("shelter_area_per_capita").value == pytest.approx(1.5)  # 3,000 m2 for 2,000 people


def test_absent_inputs_are_no_data_never_zero(db):
    objs = [o for o in fixture_objects(monitored=False) if o.cls != "facility"]
    write_dataset(DatasetInfo("hc-fixture", "test", "fixture", "x"), objs, engine=db)
    hc = yearly.run(2025, engine=db)
    for ind in ("waterlogging_points", "middle_school_coverage", "pipe_monitoring_rate", "shelter_area_per_capita"):
        v = hc.value(ind)
        assert v.value is None and v.details["no_data"], ind
    rows = {r["indicator"]: r for r in yearly.results(2025, db) if r["level"] == "district"}
    assert rows["waterlogging_points"]["value"] is None and rows["waterlogging_points"]["passes"] is None
    assert rows["park_coverage"]["value"] == pytest.approx(58.0)


def test_runs_compare_problems_and_export(district, tmp_path):
    first = yearly.run(2024, engine=district)
    with district.begin() as c:  # a new small park at x 320..380 by 2025: the gap closes for C2 in a straight line
        c.execute(sa.text("update city_objects set footprint = :g where key = 'P3'"),
                  {"g": f"SRID=4547;{box(320, 30, 380, 80).wkt}"})
    second = yearly.run(2025, engine=district)
    assert second.run_id > first.run_id
    rows = {(r["indicator"], r["level"], r["unit_key"]): r for r in yearly.compare(2024, 2025, district)}
    park = rows[("park_coverage", "district", "district")]
    assert park["2024"] == pytest.approx(58.0) and park["change"] > 0
    with district.connect() as c:
        prov = c.execute(sa.text("select inputs, rules, datasets from analysis_runs where id = :i"),
                         {"i": second.run_id}).one()
    assert prov.inputs["year"] == 2025 and prov.datasets[0]["name"] == "hc-fixture"
    assert any(i["id"] == "park_coverage" and "yichang" in i["source"] for i in prov.rules["indicators"])
    probs = yearly.problems(2024, district)
    units = [p for p in probs if p["severity"] == "warning"]
    assert any(p["indicator"] == "park_coverage" and "西街道" in p["message"] for p in units)
    assert any(p["indicator"] == "shelter_area_per_capita" and "1.5" in p["message"] for p in units)
    behind = {p["object_key"] for p in probs if p["indicator"] == "park_coverage" and p["details"].get("behind")}
    assert {"C2", "C3"} <= behind
    xlsx = export.write(2024, tmp_path / "hc.xlsx", district)[0]
    wb = load_workbook(xlsx)
    assert wb.sheetnames == ["指标", "问题清单"] and wb["指标"].max_row == len(yearly.results(2024, district)) + 1
    files = export.write(2024, tmp_path / "hc.csv", district)
    with files[1].open(encoding="utf-8-sig") as f:
        assert len(list(csv.reader(f))) == len(probs) + 1


GOOD = """
[classes.land]
class = "landuse"
[classes.school]
class = "facility"
[[indicators]]
id = "school"
name_zh = "学校"
name_en = "School"
level = "街区"
kind = "coverage"
params = { land = "land", services = [{ facility = "school", radius = 500 }] }
unit = "%"
source = "test"
"""


@pytest.mark.parametrize("edit, field", [
    (('kind = "coverage"', 'kind = "buffer"'), "field kind: unknown computation kind 'buffer'"),
    (("radius = 500", "radius = -5"), "field services[0].radius: must be a positive distance"),
    (('facility = "school"', 'facility = "hospital"'), "field services[0].facility: unknown facility class"),
    (('land = "land", ', ""), "field land: missing"),
])
def test_bad_indicator_files_are_refused_in_one_line(tmp_path, edit, field):
    assert_refused(tmp_path, GOOD.replace(*edit), "school", field)


def assert_refused(tmp_path, text: str, indicator: str, field: str) -> None:
    """The set file is refused in one line naming the file, the indicator and the field."""
    path = tmp_path / "set.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as e:
        definitions.load(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{path}: indicator {indicator}: ") and field in msg


def test_the_shipped_set_loads_and_cites_a_source_for_each_indicator():
    iset = definitions.load()
    assert len(iset.indicators) >= 10
    assert all(i.source for i in iset.indicators)
    assert {s.radius for s in iset.indicator("park_coverage").services} == {300.0, 500.0}

"""Clearance, cover and clash checks on the hand-made street of underground_fixture.py (the drawing and
the expected answers are there), the rules as data, and the pair counts against a plain ST_DWithin query."""
from __future__ import annotations

import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from underground_fixture import GROUND, at, street

from analyses.underground import clearances, rules
from cim_core.errors import InputError, NotFoundError
from cim_core.model import CityObject, DatasetInfo, PipeSegment
from cim_core.runs import get_run
from cim_core.store import write_dataset

HEADER = "table,utility_a,class_a,utility_b,class_b,min_m,confidence,source\n"


def findings(engine, run_id: int) -> set[tuple]:
    with engine.connect() as c:
        rows = c.execute(sa.text("""
            select f.rule, a.key, b.key, f.details from qa_findings f
            left join city_objects a on a.id = f.object_id left join city_objects b on b.id = f.related_id
            where f.run_id = :r and f.rule <> 'no_rule'"""), {"r": run_id}).all()
    return {(r[0], r[1], r[2], r[3]["measured_m"], r[3]["required_m"], r[3]["confidence"]) for r in rows}


def test_the_drawn_violations_are_found_and_nothing_else(db):
    street(db)
    result = clearances.check(engine=db)
    assert findings(db, result["run_id"]) == {
        ("horizontal_clearance", "S1", "W1", 1.15, 1.5, "verified"),
        ("building_clearance", "S2", "B1", 1.35, 2.5, "verified"),
        ("vertical_clearance", "W1", "G1", 0.05, 0.15, "second-hand"),
        ("clash_3d", "S1", "T1", -0.15, 0.0, "measured"),
        ("cover", "R2", None, 0.35, 0.7, "second-hand"),
    }
    # pairs the known rules do not cover are reported as such, never guessed
    no_rule = result["summary"]["no_rule"]
    assert no_rule["horizontal"] == {"rain/rain": 1, "rain/sewage": 1}
    assert no_rule["vertical"] == {"sewage/telecom": 1, "telecom/water": 1}
    assert no_rule["cover"] == {"gas/footway or green": 2, "telecom/carriageway": 2}  # water has a rule (4.1.1)
    assert result["findings"]["no_rule"] == 7
    with pytest.raises(NotFoundError):
        clearances.check(dataset="nope", engine=db)


def test_the_tiles_change_nothing(db):
    """Cut into 3 m tiles (every pipe, pair and building spans several), the network gives the same pairs,
    findings and counts as in one tile: each pair is checked once, by the tile that owns it."""
    street(db)
    one = clearances.check(engine=db, chunk_m=10_000)
    small = clearances.check(engine=db, chunk_m=3)
    assert small["summary"] == one["summary"] and one["summary"]["segments"] > 0
    assert findings(db, small["run_id"]) == findings(db, one["run_id"])


def test_a_run_keeps_its_provenance(db):
    street(db)
    result = clearances.check(engine=db, requested_by="test")
    run = get_run(result["run_id"], db)
    assert run["analysis"] == "underground-clearances"
    assert run["rules"]["ruleset"] == "gb50289_clearances.csv"
    assert {r["source"] for r in run["rules"]["rules"]} >= {"GB 50289-2016 Table 4.1.9"}
    assert {d["name"] for d in run["datasets"]} == {"street-pipes", "street-city"}
    assert run["requested_by"] == "test" and run["finished_at"] >= run["started_at"]
    assert run["findings"]["clash_3d"] == 1
    with db.connect() as c:
        loc = c.execute(sa.text("select st_x(geom), st_y(geom) from qa_findings where run_id = :r and "
                                "rule = 'clash_3d'"), {"r": result["run_id"]}).one()
    assert loc == pytest.approx((501820.0, 3649500.0))  # where T1 crosses S1


def test_horizontal_pair_counts_agree_with_st_dwithin(db):
    """The pairs within each horizontal rule's distance (clear distance, so the rule plus both radii
    between axes) that do not cross, counted by a plain PostGIS self-join."""
    street(db)
    pairs = clearances.check(engine=db)["summary"]["pairs"]
    with db.connect() as c:
        def count(ua: tuple, ub: str, distance: str) -> int:
            return c.scalar(sa.text(f"""
                select count(*) from pipe_segments a join pipe_segments b on a.object_id <> b.object_id
                where a.utility = any(:ua) and b.utility = :ub and not st_intersects(a.centerline, b.centerline)
                  and st_dwithin(a.centerline, b.centerline, {distance} + (a.diameter_mm + b.diameter_mm) / 2000)"""),
                {"ua": list(ua), "ub": ub})
        water = count(("sewage",), "water", "case when b.diameter_mm <= 200 then 1.0 else 1.5 end")
        telecom_rain = count(("rain",), "telecom", "1.0")
        telecom_sewage = count(("sewage",), "telecom", "1.0")
        building = c.scalar(sa.text("""
            select count(*) from pipe_segments a join city_objects b on b.class = 'building'
            where a.utility in ('sewage', 'rain') and st_dwithin(a.centerline, b.footprint, 2.5 + a.diameter_mm / 2000)"""))
    assert pairs["horizontal"]["sewage/water"]["within"] == water == 1
    assert pairs["horizontal"]["rain/telecom"]["within"] == telecom_rain == 1  # T1's end near R1, not alongside
    assert pairs["horizontal"]["sewage/telecom"]["within"] == telecom_sewage == 0
    assert pairs["building"]["building/sewage"]["within"] == building == 1
    assert pairs["horizontal"]["rain/telecom"]["violations"] == 0


@pytest.mark.parametrize("row, message", [
    ("4.1.9 horizontal,sewage,,steam,,1.0,verified,x", "unknown utility_b 'steam'"),
    ("4.1.9 horizontal,sewage,,water,,-1.0,verified,x", "min_m -1 must lie between 0 and 100 m"),
    ("4.1.9 horizontal,sewage,,water,,one,verified,x", "min_m 'one' is not a number"),
    ("4.1.9 horizontal,sewage,,water,,1.0,,x", "confidence is empty"),
    ("footpath,sewage,,water,,1.0,verified,x", "table 'footpath' names no check"),
    ("cover,sewage,,building,,1.0,verified,x", "unknown utility_b 'building'"),
])
def test_bad_rules_files_are_refused_and_nothing_is_stored(db, tmp_path, row, message):
    good = "4.1.9 horizontal,rain,,sewage,,1.0,local,city table\n"
    path = tmp_path / "city.csv"
    path.write_text(HEADER + good + row + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="city.csv line 3: " + message.replace("(", r"\(")):
        rules.load_rules(path, db)
    with db.connect() as c:
        assert c.scalar(sa.text("select count(*) from clearance_rules")) == 0


def test_a_city_table_replaces_the_packaged_one(db, tmp_path):
    street(db)
    path = tmp_path / "city.csv"
    path.write_text(HEADER + "4.1.9 horizontal,rain,,sewage,,1.6,local,city table 2026\n"
                    "4.1.14 vertical,gas,,water,,0.2,local,city table 2026\n", encoding="utf-8")
    loaded = rules.load_rules(path, db)
    assert len(loaded.rules) == 2 and rules.current_rules(db).name == "city.csv"
    result = clearances.check(engine=db)
    # R1 and S1: 2.0 m between axes less 0.3 and 0.2 m of radius = 1.5 m clear, now against 1.6 m
    assert ("horizontal_clearance", "S1", "R1", 1.5, 1.6, "local") in findings(db, result["run_id"])
    assert ("vertical_clearance", "W1", "G1", 0.05, 0.2, "local") in findings(db, result["run_id"])
    assert "rain/sewage" not in result["summary"]["no_rule"]["horizontal"]
    assert get_run(result["run_id"], db)["rules"]["ruleset"] == "city.csv"


def test_pressure_classes_and_diameters_select_the_rule():
    table = rules.parse_rules((rules.DEFAULT_FILE).read_text(encoding="utf-8"),
                              {"water", "sewage", "rain", "gas", "heat", "power", "telecom"}, "gb")
    h = [r for r in table.of("horizontal") if r.utility_b != "building"]
    side = {"utility": np.array(["sewage"] * 4), "diameter": np.full(4, 500.0), "pressure": np.full(4, "")}
    other = {"utility": np.array(["gas", "gas", "water", "water"]), "diameter": np.array([100, 100, 200, 250.0]),
             "pressure": np.array([rules.pressure_class("中压A"), rules.pressure_class("low"), "", ""])}
    required, _ = rules.match(h, side, other)
    assert required.tolist() == [1.2, 1.0, 1.0, 1.5]
    # the same pair either way round
    assert rules.match(h, other, side)[0].tolist() == [1.2, 1.0, 1.0, 1.5]


def test_a_service_pipe_is_exempt_from_its_own_building_and_joins_its_main(db):
    """A sewage lateral L (d200, no node ids, as imported from IFC) from a riser inside building B1 out to
    the main M, whose axis it ends on; it passes building B2 0.9 m clear:

        B1 (0..10 x 10..20), L at x = 9 from y = 15 to y = -5, B2 (10..20 x 0..8), M along y = -5 (d400).

    Its own building gives no finding (nor does its joint with M: one pipe); B2 does (2.5 m required)."""
    def pipe(key, a, b, d, z):
        inv = z - d / 2000
        return CityObject(key=key, cls="pipe_segment", pipe=PipeSegment(
            "sewage", np.array([[*at(*a), z], [*at(*b), z]]), diameter_mm=d, start_invert=inv, end_invert=inv,
            start_depth=GROUND - inv, end_depth=GROUND - inv))

    write_dataset(DatasetInfo("service", "pipes", "s.gpkg", "s"),
                  [pipe("M", (-10, -5), (30, -5), 400, 57.2), pipe("L", (9, 15), (9, -5), 200, 57.1)], engine=db)
    write_dataset(DatasetInfo("service-city", "gis", "s.gpkg", "city"), [
        CityObject(key=k, cls="building", footprint=shapely.box(*at(x0, y0), *at(x1, y1)))
        for k, (x0, y0, x1, y1) in {"B1": (0, 10, 10, 20), "B2": (10, 0, 20, 8)}.items()], engine=db)
    result = clearances.check(engine=db)
    assert findings(db, result["run_id"]) == {("building_clearance", "L", "B2", 0.9, 2.5, "verified")}
    # L-B1 is not examined; M is beyond the reach of any rule from B2
    assert result["summary"]["pairs"]["building"]["building/sewage"] == {"examined": 1, "within": 1, "violations": 1}

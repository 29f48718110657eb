"""Excavation on the hand-made street of underground_fixture.py: a 10 m x 10 m pit 2 m deep around x = 50,
y = 0 (45..55 x -5..5), the answers worked out from the drawing there."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from underground_fixture import at, street

from analyses.underground.excavation import excavate
from cim_core.crs import transform
from cim_core.errors import GeoreferenceError, InputError

PIT = [at(45, -5), at(55, -5), at(55, 5), at(45, 5), at(45, -5)]


def polygon(points) -> dict:
    return {"type": "Polygon", "coordinates": [[list(p) for p in points]]}


def check_street_pit(result: dict) -> None:
    seg = {s["key"]: s for s in result["segments"]}
    assert set(seg) == {"S1", "W1", "R1", "G1"}  # R2 starts at x = 60, T1 runs at x = 20
    # W1: axis 58.7, d300 -> top 58.85 (1.15 m deep), invert 58.55 (1.45 m): reached by a 2 m pit
    assert seg["W1"]["top_depth_m"] == [1.15, 1.15] and seg["W1"]["invert_depth_m"] == [1.45, 1.45]
    assert seg["W1"]["reached"] and seg["W1"]["length_inside_m"] == pytest.approx(10.0, abs=0.01)
    # G1: axis 59.0, d200 -> top 0.9 m deep, 10 m inside (y -5..5)
    assert seg["G1"]["reached"] and seg["G1"]["top_depth_m"] == [0.9, 0.9]
    # S1 top 2.6 m, R1 top 2.7 m: below the pit
    assert not seg["S1"]["reached"] and seg["S1"]["top_depth_m"] == [2.6, 2.6]
    assert not seg["R1"]["reached"]
    assert seg["W1"]["owner"] == "owner of water" and seg["W1"]["diameter_mm"] == 300
    v = result["utilities"]
    assert {u: v[u]["verdict"] for u in ("water", "gas", "sewage", "rain", "telecom")} == {
        "water": "conflict", "gas": "conflict", "sewage": "clear", "rain": "clear", "telecom": "clear"}
    assert result["pit"]["area_m2"] == pytest.approx(100.0, abs=0.05)
    assert result["pit"]["volume_m3"] == pytest.approx(200.0, abs=0.1)


def test_a_pit_reaches_the_shallow_pipes(db):
    street(db)
    result = excavate(polygon(PIT), 2.0, engine=db, building_distance=20)
    check_street_pit(result)
    # B1 (0..30 x 8..20) lies 15 m across and 3 m up from the pit's corner
    assert [(b["key"], b["distance_m"]) for b in result["buildings"]] == [("B1", pytest.approx(15.30, abs=0.01))]
    assert excavate(polygon(PIT), 2.0, engine=db)["buildings"] == []  # not within the default 5 m
    with db.connect() as c:
        rows = c.execute(sa.text("select o.key from qa_findings f join city_objects o on o.id = f.object_id "
                                 "where f.run_id = :r order by o.key"), {"r": result["run_id"]}).scalars().all()
    assert rows == ["G1", "W1"]


def test_a_pit_given_in_longitude_and_latitude(db):
    street(db)
    lon, lat = transform(4547, 4490, [p[0] for p in PIT], [p[1] for p in PIT])
    result = excavate(polygon(zip(lon, lat)), 2.0, crs="EPSG:4490", engine=db)
    check_street_pit(result)
    assert result["pit"]["input_crs"] == "EPSG:4490"


@pytest.mark.parametrize("shape, depth, crs, message", [
    (polygon([at(0, 0), at(10, 10), at(10, 0), at(0, 10), at(0, 0)]), 2, None, "polygon: not a simple polygon"),
    ({"type": "Polygon", "coordinates": []}, 2, None, "polygon: empty"),
    (polygon(PIT), -1, None, "depth: -1 m is out of range"),
    (polygon(PIT), 150, None, "depth: 150 m is out of range"),
    (polygon(PIT), "deep", None, "depth: 'deep' is not a number"),
    ({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}, 2, None, "polygon: expected a Polygon"),
    (polygon([(2.35, 48.85), (2.36, 48.85), (2.36, 48.86), (2.35, 48.85)]), 2, "EPSG:4326", "outside"),
])
def test_bad_input_says_what_is_wrong_and_stores_nothing(db, shape, depth, crs, message):
    street(db)
    with pytest.raises(InputError, match=message) as e:
        excavate(shape, depth, crs=crs, engine=db)
    if crs:
        assert isinstance(e.value, GeoreferenceError)
    with db.connect() as c:
        assert c.scalar(sa.text("select count(*) from analysis_runs")) == 0

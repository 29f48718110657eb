"""The sample district's underground: the street networks lie at realistic depths and bend over or under each
other where they cross (no violation), and the planted-violations zone (sample_models/district/underground.py)
holds exactly the planted cases."""
from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
import sqlalchemy as sa

from analyses.underground import clearances
from analyses.underground.sections import long_section
from importers import gis
from sample_models.district import drainage, generate, underground


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    out = tmp_path_factory.mktemp("district")
    return out, generate(out, scale=0.25, seed=7)


def _load(out, engine) -> None:
    for layer in ("roads", "buildings", "pipes"):  # the pipes bring their nodes layer along
        kw = {"height_field": "height_m", "floors_field": "floors"} if layer == "buildings" else {}
        gis.import_file(out / "district.gpkg", layer=layer, kind=layer, dataset=f"sample-{layer}", engine=engine, **kw)
    underground.load(out, engine=engine)


def test_only_the_planted_violations_are_found_and_all_inside_the_zone(db, district):
    out, manifest = district
    entry = manifest["underground"]
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8"))["underground"] == entry
    _load(out, db)
    result = clearances.check(engine=db)
    with db.connect() as c:
        rows = c.execute(sa.text("""
            select f.rule, a.key, b.key, f.details, st_x(f.geom), st_y(f.geom) from qa_findings f
            left join city_objects a on a.id = f.object_id left join city_objects b on b.id = f.related_id
            where f.run_id = :r and f.severity <> 'info'"""), {"r": result["run_id"]}).all()
        # independent: the sewer's outer wall to the building wall, by PostGIS (axis distance less the radius)
        wall = c.scalar(sa.text("""
            select st_distance(s.centerline, b.footprint) - s.diameter_mm / 2000.0 from pipe_segments s
            join city_objects o on o.id = s.object_id, city_objects b
            where o.key = 'pipe:WSZ001' and b.key = :b"""), {"b": underground.BUILDING[0]})
    got = {(r[0], r[1], r[2]): r[3] for r in rows}
    planted = {(p["rule"], p["object"], p["related"]): p for p in entry["planted"]}
    assert set(got) == set(planted)  # nothing in the clean street networks, nothing missed in the zone
    for k, p in planted.items():
        assert got[k]["measured_m"] == pytest.approx(p["measured_m"], abs=0.011), k
        assert got[k]["required_m"] == p["required_m"], k
    zone = shapely.box(*entry["zone"]["bbox"])
    assert all(zone.contains(shapely.Point(r[4], r[5])) for r in rows)
    assert wall == pytest.approx(1.0, abs=1e-6)
    # pairs with no rule stay "no rule" (info), never given a distance
    assert result["findings"]["no_rule"] > 0
    assert set(result["findings"]) == {"no_rule", *(p["rule"] for p in entry["planted"])}


def test_the_planted_adverse_slope_shows_in_the_long_section(db, district):
    out, manifest = district
    underground.load(out, engine=db)
    case = manifest["underground"]["long_section"]
    p = long_section(case["from"], case["to"], engine=db)
    assert p["adverse"] == case["adverse"]
    rises = [s for s in p["segments"] if s["adverse"]]
    assert len(rises) == 1 and -rises[0]["slope"] * rises[0]["length_m"] == pytest.approx(case["rise_m"], abs=0.002)
    assert "<svg" in p["svg"]


def test_street_networks_keep_the_rules_at_every_crossing(district):
    """Independent of the checks: at every crossing of two utilities' segments in the generated file, the
    walls clear each other by at least 0.15 m (the smallest vertical rule of the table)."""
    import pyogrio.raw

    out, manifest = district
    meta, _, wkb, data = pyogrio.raw.read(out / "district.gpkg", layer="pipes")
    col = dict(zip(meta["fields"], data))
    lines = shapely.from_wkb(wkb)
    utility = col["utility"].astype(str)
    size = np.nan_to_num(np.where(col["shape"] == "rectangular", col["height_mm"], col["diameter_mm"]).astype(float)) / 1000
    gravity = np.isin(utility, ["rain", "sewage"])
    tree = shapely.STRtree(shapely.force_2d(lines))
    i, j = tree.query(shapely.force_2d(lines), predicate="intersects")
    keep = (i < j) & (utility[i] != utility[j])
    i, j = i[keep], j[keep]
    assert len(i) > 100
    at = shapely.intersection(shapely.force_2d(lines[i]), shapely.force_2d(lines[j]))

    def z(k):
        t = shapely.line_locate_point(shapely.force_2d(lines[k]), at)
        zz = shapely.get_coordinates(shapely.line_interpolate_point(lines[k], t), include_z=True)[:, 2]
        return zz + (size[k] / 2) * gravity[k]  # gravity lines run at the invert: the axis is half a size up

    gap = abs(z(i) - z(j)) - size[i] / 2 - size[j] / 2
    assert gap.min() >= 0.15
    # at realistic depths: pressure lines' tops 0.7-1.6 m below ground at their nodes, gravity tops from 2.0 m
    # (COVER_M at the planted low-lying area's manholes, whose street sinks), and the pressure lines bend to cross
    top = np.r_[col["start_depth"], col["end_depth"]] - np.tile(np.where(gravity, size, size / 2), 2)
    both = np.tile(gravity, 2)
    lowland = [k.split(":", 1)[1] for k in manifest["drainage"]["lowland"]["manholes"]]
    sunk = np.isin(np.r_[col["from_node"], col["to_node"]].astype(str), lowland)
    assert 0.7 <= top[~both].min() and top[~both].max() <= 1.6
    assert top[both & ~sunk].min() >= 2.0 - 1e-9 and top[both & sunk].min() >= drainage.COVER_M - 1e-9
    bent = shapely.get_num_coordinates(lines) > 2
    assert bent.sum() > 100 and not (bent & gravity).any()


def _net(utility, xy, depth, dn):
    """A straight network of one utility, nodes at one depth (m) below flat ground at 0."""
    from sample_models.district.networks import Network

    n = len(xy)
    return Network(utility, np.array(xy, float), np.array(["manhole"] * n, object), np.zeros(n),
                   np.full(n, depth), np.full(n, -depth), np.arange(n - 1), np.arange(1, n),
                   {"shape": np.array(["circular"] * (n - 1), object), "diameter_mm": np.full(n - 1, dn),
                    "width_mm": np.zeros(n - 1), "height_mm": np.zeros(n - 1)}, {})


def test_a_node_beside_a_sewer_moves_out_of_its_way():
    """A water main whose node lies 0.2 m beside a sewer (no room for a bend between them): the node takes
    the level run under the sewer, so the main clears it by the table's 0.40 m where it crosses."""
    from sample_models.district import crossings

    sewer = _net("sewage", [(0.2, -20), (0.2, 20)], 2.2, 600)  # invert 2.2 m deep: axis -1.9, top -1.6
    water = _net("water", [(-30, 0), (0, 0), (30, 0)], 1.4, 300)  # axis -1.4: its wall 0.05 m over the sewer
    crossings.resolve(water, [sewer])
    line = water.lines()[1]
    z = shapely.get_coordinates(shapely.line_interpolate_point(line, 0.2), include_z=True)[0, 2]
    gap = abs(z - (-1.9)) - 0.15 - 0.30
    assert gap >= 0.40 - 0.005
    assert water.node_invert[1] < -1.9  # the node went under the sewer, its depth with it
    assert water.node_depth[1] == pytest.approx(-water.node_invert[1], abs=1e-9)


@pytest.mark.parametrize("sewers_x, length, runs", [
    ((3.0,), 12.0, 1),  # 3 m from the node: the level run's 1 m pad gives way to the ramp
    ((15.0, 18.0), 40.0, 1),  # 3 m apart: no room for two ramps between two runs, so one run under both
    ((12.0, 24.0), 40.0, 2),  # 12 m apart: room for a run under each
])
def test_dips_ramp_at_45_degrees_at_most(sewers_x, length, runs):
    """A water main dipping under sewers: the ramps (fittings come in 11.25, 22.5, 45 and 90 degree bends; a
    dip is made with 45 degree ones) are no steeper than 45 degrees, and it clears each sewer by the table's
    0.40 m."""
    from sample_models.district import crossings

    sewers = [_net("sewage", [(x, -20), (x, 20)], 2.2, 600) for x in sewers_x]  # axis -1.9: pass under them
    water = _net("water", [(0, 0), (length, 0)], 1.4, 300)
    crossings.resolve(water, sewers)
    line = water.lines()[0]
    xyz = shapely.get_coordinates(line, include_z=True)
    slope = np.abs(np.diff(xyz[:, 2])) / np.linalg.norm(np.diff(xyz[:, :2], axis=0), axis=1)
    assert len(xyz) > 2 and slope.max() <= 1.0 + 0.01  # z rounded to 1 mm
    assert np.sum((np.diff(xyz[:, 2]) == 0) & (xyz[:-1, 2] < -2)) == runs  # level runs under the sewers
    for x in sewers_x:
        z = shapely.get_coordinates(shapely.line_interpolate_point(line, x), include_z=True)[0, 2]
        assert abs(z - (-1.9)) - 0.15 - 0.30 >= 0.40 - 0.005


def test_a_dip_goes_no_deeper_than_its_own_crossing_needs():
    """A water main under a power duct at its own depth and, 5 m on, over a deep sewer: it dips under the duct
    only, and is back up before the sewer (one run for both would have to pass under the sewer, 1.6 m deeper)."""
    from sample_models.district import crossings

    duct = _net("power", [(15.0, -20), (15.0, 20)], 1.4, 500)  # axis -1.4, as the water main's
    sewer = _net("sewage", [(20.0, -20), (20.0, 20)], 3.0, 600)  # axis -2.7
    water = _net("water", [(0, 0), (40, 0)], 1.4, 300)
    crossings.resolve(water, [duct, sewer])
    line = water.lines()[0]
    z = {x: shapely.get_coordinates(shapely.line_interpolate_point(line, x), include_z=True)[0, 2] for x in (15, 20)}
    assert abs(z[15] - (-1.4)) - 0.25 - 0.15 >= 0.15 - 0.005  # under the duct by 0.15 m (GB 50289 Table 4.1.14)
    assert abs(z[20] - (-2.7)) - 0.30 - 0.15 >= 0.40 - 0.005  # over the sewer by 0.40 m
    assert shapely.get_coordinates(line, include_z=True)[:, 2].min() > -2.2

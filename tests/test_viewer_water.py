"""The water tool of the viewer in headless Chromium against `cim demo` (fixtures of test_viewer): a burst
shows its valves to close as markers (seized or missing ones flagged), the isolated pipes and the buildings
left without water; the renewal programme colours the mains by year, with a legend."""
from __future__ import annotations

import sqlalchemy as sa
from test_viewer import Page, _assert_clean, browser, demo  # noqa: F401  (module fixtures)
from test_viewer_drainage import COUNT_MARKED

from analyses.water import isolation


def _burst_pipe(engine) -> tuple[dict, float, float, float]:
    """A water main whose burst leaves buildings dry behind two or more valves within a few hundred metres,
    preferring one that meets an inoperable valve; the isolation worked out here (analyses.water), the
    centre of its area (lon, lat) and a camera height that shows it all."""
    iso = isolation.load(engine)
    best, best_score = None, -1
    for i in range(iso.net.n_segments):
        r = iso.burst(i)
        score = (len(r["isolated"]["buildings"]) > 0) * 4 + (len(r["valves_to_close"]) >= 2) * 2 \
            + (len(r["inoperable_valves"]) > 0) * 5 + (r["isolated"]["length_m"] < 400) * 4
        if score > best_score:
            best, best_score = r, score
    with engine.connect() as c:
        lon0, lat0, lon1, lat1 = c.execute(sa.text(
            "select st_xmin(e), st_ymin(e), st_xmax(e), st_ymax(e) from (select st_transform(st_setsrid(st_extent("
            "st_force2d(centerline)), st_srid(min(centerline))), 4326) e from pipe_segments "
            "where object_id = any(:i)) q"), {"i": best["isolated"]["pipes"]}).one()
    span_m = max(lon1 - lon0, lat1 - lat0) * 111_000
    return best, (lon0 + lon1) / 2, (lat0 + lat1) / 2, max(150.0, 1.8 * span_m)


def test_burst_valves_dry_area_and_renewal_by_year(browser, demo):  # noqa: F811
    p = Page(browser, demo["base"], key=demo["key"])
    p.page.wait_for_function("'pipes' in window.cim.tilesets", timeout=120_000)
    expect, lon, lat, height = _burst_pipe(demo["engine"])
    assert expect["isolated"]["buildings"], "the district has no burst that leaves a building dry"
    p.look_down_at(lon, lat, height)
    p.page.check("#underground")
    p.js(f"window.cim.water.isolate({expect['pipe']['id']})")
    p.page.wait_for_function("window.cim.water.last && window.cim.water.last.valves_to_close", timeout=60_000)
    got = p.js("window.cim.water.last")
    assert sorted(v["key"] for v in got["valves_to_close"]) == sorted(v["key"] for v in expect["valves_to_close"])
    assert sorted(got["isolated"]["buildings"]) == sorted(expect["isolated"]["buildings"])
    assert p.js("window.cim.water.markers()") == len(got["valves_to_close"]) + len(
        got["inoperable_valves"]) + len(got["isolated"]["pipes"]) + len(got["cut_off"]["pipes"])
    p.js("document.getElementById('water').scrollIntoView()")
    p.settle()
    p.screenshot("viewer_water_burst.png")
    with demo["engine"].connect() as c:  # the tiles at full detail around the burst pipe itself
        mid = c.execute(sa.text("select st_x(p), st_y(p) from pipe_segments s, st_transform("
                                "st_lineinterpolatepoint(st_force2d(s.centerline), 0.5), 4326) p "
                                "where s.object_id = :i"), {"i": expect["pipe"]["id"]}).one()
    p.look_down_at(mid[0], mid[1], 120)
    marked = p.js(COUNT_MARKED, ["#ff9100", "#ff1744"])
    assert marked.get("#ff1744", 0) >= 1 and marked.get("#ff9100", 0) + marked.get("#ff1744", 0) >= 1, marked
    text = p.page.inner_text("#water")
    assert "需关闭阀门" in text and "停水建筑" in text and "L/s" in text
    if got["inoperable_valves"]:
        assert "⚠" in text

    p.page.fill("#water-target", "3")  # the district at scale 0.1 is small: 3 km over the years to 2027
    p.page.click("#water button[data-i18n=renewalByYear]")
    p.page.wait_for_function("window.cim.water.last && window.cim.water.last.years", timeout=120_000)
    prog = p.js("window.cim.water.last")
    assert prog["pipes"] and len(p.page.query_selector_all("#water-legend div")) == len(prog["years"])
    assert prog["target_km"] == 3 and len(prog["years"]) >= 2
    p.page.wait_for_function("window.cim.viewer.dataSourceDisplay.ready", timeout=120_000)
    p.look_down_at(114.02, 32.98, 1500)
    p.js("document.getElementById('water').scrollIntoView()")
    p.screenshot("viewer_water_renewal.png")
    years = {pp["year"] for pp in prog["pipes"]}
    colours = ["#d50000", "#ff6d00", "#ffd600", "#00c853", "#2979ff", "#aa00ff"][:len(prog["years"])]
    seen = p.js(COUNT_MARKED, colours)
    assert sum(seen.values()) >= 1 and len(seen) >= min(len(years), 2), seen

    p.page.click("#water button[data-i18n=criticalityMap]")
    p.page.wait_for_function("window.cim.water.last && window.cim.water.last.by_pipe", timeout=120_000)
    assert len(p.page.query_selector_all("#water-legend div")) == 5
    assert p.js("window.cim.water.markers()") == len(p.js("window.cim.water.last.by_pipe"))
    p.page.wait_for_function("window.cim.viewer.dataSourceDisplay.ready", timeout=120_000)
    p.look_down_at(114.02, 32.98, 1500)
    p.screenshot("viewer_water_criticality.png")
    _assert_clean(p)
    p.close()

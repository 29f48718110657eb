"""The planner's viewer tools in headless Chromium against `cim demo` (the fixtures of test_viewer.py): the
as-is / plan switch and the split-screen swipe, measuring distance, area and height, and saved views."""
from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from pyproj import Geod
from shapely.geometry import shape
from test_viewer import CHROMIUM, Page, _assert_clean, _building, _get, browser, demo  # noqa: F401  (fixtures)

from cim_core.crs import to_lonlat, transform

GEOD = Geod(ellps="WGS84")


@pytest.fixture(scope="module")
def page(browser, demo):  # noqa: F811
    p = Page(browser, demo["base"])
    p.js("() => window.cim.scenariosListed")
    yield p
    p.close()


def _site(demo) -> dict:
    """The building the plan demolishes for the pocket park: its footprint's centre (lon, lat)."""
    cmp = _get(demo["base"], "/api/scenarios/renewal/comparison?healthcheck=false")
    gone = cmp["demolished"][0]
    f = _get(demo["base"], f"/api/collections/buildings/items/{gone['id']}")
    c = shapely.centroid(shape(f["geometry"]))
    return {"lon": c.x, "lat": c.y, "cmp": cmp}


def _lonlat(x: float, y: float) -> tuple[float, float]:
    lon, lat = to_lonlat(4547, np.array([x]), np.array([y]))
    return float(lon[0]), float(lat[0])


def _pixel(img: np.ndarray, x: float, y: float, r: int = 3) -> np.ndarray:
    return img[int(y) - r:int(y) + r + 1, int(x) - r:int(x) + r + 1].reshape(-1, 3).mean(axis=0)


def _swipe_settled(p: Page):
    p.page.wait_for_function("""() => { const s = Object.values(window.cim.planTilesets);
        return s.length > 0 && s.every((t) => t.tilesLoaded); }""", timeout=180_000)
    p.settle()


def test_swipe_shows_the_plan_right_of_the_divider(page, demo):
    p, site = page, _site(demo)
    assert site["cmp"]["buildings"] == {"demolished": 1, "new": 0, "changed": 1}
    options = p.js("() => [...document.querySelectorAll('#scenario option')].map((o) => o.textContent)")
    assert options == ["现状", "旧改方案"]
    p.look_down_at(site["lon"], site["lat"], 260)
    p.js("() => window.cim.setSwipe(true)")
    _swipe_settled(p)
    x, y = p.screen_of(site["lon"], site["lat"])
    p.js("() => { document.getElementById('swipe-divider').hidden = true; }")  # the divider is drawn at 50 %
    shots = {}
    for side, split in (("as-is", 0.98), ("plan", 0.02)):
        p.js(f"() => {{ window.cim.viewer.scene.splitPosition = {split}; window.cim.viewer.scene.requestRender(); }}")
        p.settle()
        shots[side] = _pixel(p.screenshot(f"scenario_swipe_{side}.png"), x, y)
    # where the old building stood, the plan has the pocket park: green on the ground map, not a roof
    r, g, b = shots["plan"]
    assert g > r and g > b, f"plan side at the site is not green: {shots['plan']}"
    assert np.abs(shots["plan"] - shots["as-is"]).sum() > 60, shots
    p.js("() => { document.getElementById('swipe-divider').hidden = false; }")
    # the divider drags with the mouse
    width = p.js("() => window.cim.viewer.scene.canvas.clientWidth")
    p.js("() => { window.cim.viewer.scene.splitPosition = 0.5; window.dispatchEvent(new Event('resize')); }")
    box = p.page.locator("#swipe-divider").bounding_box()
    p.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 200)
    p.page.mouse.down()
    p.page.mouse.move(x + 0.0, box["y"] + 200, steps=5)
    p.page.mouse.up()
    assert abs(p.js("() => window.cim.viewer.scene.splitPosition") - x / width) < 0.02
    # an oblique view of the block, as-is left of the divider and the plan right of it
    p.js("""([lon, lat]) => { const v = window.cim.viewer;
        v.scene.camera.setView({destination: Cesium.Cartesian3.fromDegrees(lon, lat - 0.0032, 260),
          orientation: {heading: 0, pitch: Cesium.Math.toRadians(-38), roll: 0}}); v.scene.requestRender(); }""",
         [site["lon"], site["lat"]])
    xs, _ = p.screen_of(site["lon"], site["lat"])
    p.js(f"() => {{ window.cim.viewer.scene.splitPosition = {xs / width}; window.dispatchEvent(new Event('resize')); }}")
    _swipe_settled(p)
    img = p.screenshot("scenario_swipe.png")
    assert img.std() > 12
    p.js("() => window.cim.setSwipe(false)")
    assert p.js("() => Object.keys(window.cim.planTilesets).length") == 0
    _assert_clean(p)


def test_switching_to_the_plan_reloads_the_scene_from_its_tiles(page, demo):
    p = page
    p.page.select_option("#scenario", "renewal")
    p.page.wait_for_function("() => window.cim.state.scenario === 'renewal' && window.cim.tilesets.buildings", timeout=60_000)
    p.settle()
    urls = p.js("() => Object.values(window.cim.tilesets).map((t) => t.resource.url)")
    assert urls and all("/tiles/scenarios/renewal/" in u for u in urls), urls
    assert "scenario=renewal" in p.js("() => location.hash")
    p.page.select_option("#scenario", "")
    p.page.wait_for_function("() => window.cim.state.scenario === null", timeout=60_000)
    _assert_clean(p)


def _click_at(p: Page, lonlats: list[tuple[float, float]], finish: bool):
    for lon, lat in lonlats:
        x, y = p.screen_of(lon, lat)
        p.page.mouse.click(x, y)
        p.page.wait_for_timeout(600)  # two quick clicks would be a double-click
    if finish:
        p.page.mouse.click(*p.screen_of(*lonlats[-1]), button="right")


def test_measured_distance_and_area_match_the_geodesic_ones(page, demo):
    p = page
    b = _building(demo)
    lon0, lat0 = b["lon"], b["lat"]
    p.look_down_at(lon0, lat0, 700)
    p.js("() => window.cim.setPlan(true)")  # the 2D plan: lines of sight vertical, no parallax on roofs
    p.settle()
    # a 240 m line and a 150 m x 100 m rectangle around the building, in the storage CRS
    ex, ny = transform(4326, 4547, [lon0], [lat0])
    ex, ny = float(ex[0]), float(ny[0])
    line = [_lonlat(ex + dx, ny + dy) for dx, dy in ((-120, -60), (120, -60))]
    p.page.click("#measure-distance")
    _click_at(p, line, finish=True)
    measured = p.js("() => window.cim.measure.result")
    _, _, expected = GEOD.inv(line[0][0], line[0][1], line[1][0], line[1][1])
    assert measured == pytest.approx(expected, rel=0.01), (measured, expected)
    assert "距离" in p.page.text_content("#measure-result") and " m" in p.page.text_content("#measure-result")
    rect = [_lonlat(ex + dx, ny + dy) for dx, dy in ((-75, -50), (75, -50), (75, 50), (-75, 50))]
    p.page.click("#measure-area")
    _click_at(p, rect, finish=True)
    area = p.js("() => window.cim.measure.result")
    expected_area = abs(GEOD.polygon_area_perimeter([q[0] for q in rect], [q[1] for q in rect])[0])
    assert area == pytest.approx(expected_area, rel=0.01), (area, expected_area)
    assert "m²" in p.page.text_content("#measure-result")
    # height: a roof, then the ground beside the building
    fp = shape(_get(demo["base"], f"/api/collections/buildings/items/{b['id']}")["geometry"])
    minx, miny, maxx, maxy = fp.bounds
    p.page.click("#measure-height")
    _click_at(p, [(b["lon"], b["lat"]), (minx - (maxx - minx) * 0.02 - 0.00002, (miny + maxy) / 2)], finish=False)
    dh = p.js("() => window.cim.measure.result")
    props = b["props"]
    assert dh == pytest.approx(props["zmax"] - props["zmin"], abs=1.0), (dh, props["zmax"], props["zmin"])
    p.page.keyboard.press("Escape")
    assert p.js("() => window.cim.measure.mode") is None
    p.js("() => window.cim.setPlan(false)")
    _assert_clean(p)


def test_a_saved_view_is_a_link_that_opens_the_same_view(browser, page, demo):  # noqa: F811
    p = page
    p.js("() => window.cim.setScenario('renewal')")
    b = _building(demo)
    p.look_down_at(b["lon"], b["lat"], 500)
    p.page.fill("#view-name", "旧改现场")
    p.page.click("#view-form button[type=submit]")
    saved = json.loads(p.js("() => localStorage.getItem('cim.views')"))
    assert [v["name"] for v in saved] == ["旧改现场"]
    h = saved[0]["hash"]
    assert "view=" in h and "layers=" in h and "scenario=renewal" in h
    p.page.click("#view-copy")
    link = p.page.input_value("#view-link")
    assert link.endswith(h)
    other = Page(browser, demo["base"], hash_=h)
    try:
        other.settle()
        state = other.js("""() => { const c = Cesium.Cartographic.fromCartesian(window.cim.viewer.scene.camera.positionWC);
            return {lon: Cesium.Math.toDegrees(c.longitude), lat: Cesium.Math.toDegrees(c.latitude), h: c.height,
                    scenario: window.cim.state.scenario}; }""")
        assert state["scenario"] == "renewal"
        assert state["lon"] == pytest.approx(b["lon"], abs=1e-5) and state["lat"] == pytest.approx(b["lat"], abs=1e-5)
        assert state["h"] == pytest.approx(500, abs=1)
        _assert_clean(other)
    finally:
        other.close()
    p.js("() => window.cim.setScenario(null)")

"""The underground tools panel in headless Chromium against `cim demo` (the fixtures of test_viewer.py):
a pit drawn with the mouse, a cross-section drawing and a long section between two manholes."""
from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa
from test_viewer import CHROMIUM, Page, _assert_clean, browser, demo  # noqa: F401  (fixtures)

from cim_core.crs import to_lonlat



def _sewer_pair(engine) -> tuple[int, int, float, float]:
    """Two manholes joined by a sewer segment, and the plan position (storage CRS) of the first."""
    with engine.connect() as c:
        return c.execute(sa.text("""
            select s.from_node, s.to_node, st_x(n.geom), st_y(n.geom) from pipe_segments s
            join pipe_nodes n on n.object_id = s.from_node
            where s.utility = 'sewage' and n.node_type = 'manhole' order by s.object_id limit 1""")).one()


@pytest.fixture(scope="module")
def tools_page(browser, demo):  # noqa: F811
    p = Page(browser, demo["base"], key=demo["key"])
    p.page.wait_for_function("'pipes' in window.cim.tilesets", timeout=120_000)
    yield p
    p.close()


def test_a_pit_drawn_with_the_mouse_shows_what_it_reaches(tools_page, demo):  # noqa: F811
    p = tools_page
    _, _, x, y = _sewer_pair(demo["engine"])
    ring = np.array([[x - 15, y - 15], [x + 15, y - 15], [x + 15, y + 15], [x - 15, y + 15]])
    lon, lat = to_lonlat(4547, ring[:, 0], ring[:, 1])
    clon, clat = to_lonlat(4547, x, y)
    p.look_down_at(float(clon), float(clat), 120)
    p.page.fill("#ug-depth", "3")
    p.page.click("#ug-pit")
    for lo, la in zip(lon, lat):
        sx, sy = p.screen_of(float(lo), float(la), 0.0)
        p.page.mouse.click(sx, sy)
    p.page.mouse.click(10 + sx, sy, button="right")
    p.page.wait_for_function("window.cim.ugLast && window.cim.ugLast.pit", timeout=60_000)
    result = p.js("window.cim.ugLast")
    assert result["pit"]["area_m2"] == pytest.approx(900, rel=0.02)
    assert result["utilities"]["sewage"]["verdict"] == "conflict"  # the manhole at the pit's centre
    assert p.js("window.cim.state.highlighted.length") > 0
    assert p.page.locator("#ug-result table tr").count() > 2
    assert "m³" in p.page.inner_text("#ug-status")
    p.settle()
    img = p.screenshot("underground_pit.png")
    assert img.std() > 10
    _assert_clean(p)


def test_a_cross_section_and_a_long_section_are_drawn(tools_page, demo):  # noqa: F811
    p = tools_page
    a, b, x, y = _sewer_pair(demo["engine"])
    lon, lat = to_lonlat(4547, np.array([x - 25, x + 25]), np.array([y - 25, y + 25]))
    line = [[float(lon[0]), float(lat[0])], [float(lon[1]), float(lat[1])]]
    section = p.js("(line) => window.cim.underground.section(line)", line)
    assert section["pipes"], "the diagonal line should cut the street's pipes"
    p.page.wait_for_function("document.getElementById('ug-svg').complete && "
                             "document.getElementById('ug-svg').naturalWidth > 0")
    assert p.page.is_visible("#ug-svg")
    p.page.locator("#ug-svg").screenshot(path=str(__import__("conftest").ARTIFACTS / "underground_section.png"))
    p.screenshot("underground_section_panel.png")
    profile = p.js("([a, b]) => window.cim.underground.profile(a, b)", [a, b])
    assert len(profile["segments"]) == 1 and {m["id"] for m in profile["manholes"]} == {a, b}
    assert p.page.is_visible("#ug-svg")
    _assert_clean(p)


def test_the_findings_list_flies_to_each_finding_and_highlights_both_objects(tools_page, demo):  # noqa: F811
    """The planted-violations zone is imported next to the demo's district; the clearance check of the panel
    over the zone lists exactly the planted cases, and a click on one flies there and highlights both objects."""
    from sample_models.district import underground

    folder = next((demo["home"] / "sample-district").glob("scale-*"))
    manifest = __import__("json").loads((folder / "manifest.json").read_text(encoding="utf-8"))
    underground.load(folder, engine=demo["engine"])
    p = tools_page
    p.page.click("#ug-clear")
    # inside the zone: the demo also imports the IFC buildings, whose service laterals are not clean (docs)
    p.js("(box) => window.cim.underground.check(box)", manifest["underground"]["zone"]["bbox"])
    p.page.wait_for_function("window.cim.ugFindings && document.querySelectorAll('#ug-findings li').length > 0",
                             timeout=120_000)
    listed = p.js("window.cim.ugFindings.map((f) => f.properties)")
    planted = {(c["rule"], c["object"], c["related"]) for c in manifest["underground"]["planted"]}
    assert {(f["rule"], f["object_key"], f["related_key"]) for f in listed} == planted
    items = p.page.locator("#ug-findings li")
    k = next(i for i, f in enumerate(listed) if f["rule"] == "building_clearance")
    assert "1.00 / 2.50 m" in items.nth(k).inner_text() and "距建筑物过近" in items.nth(k).inner_text()
    items.nth(k).click()
    p.page.wait_for_timeout(2500)  # the camera's flight
    # the marker and both objects drawn in plan (a sewer, a building outline), tiles loaded or not
    p.page.wait_for_function("window.cim.viewer.entities.values.filter((e) => e.polyline).length >= 2")
    f = p.js(f"window.cim.ugFindings[{k}]")
    lon, lat = f["geometry"]["coordinates"]
    cam = p.js("""() => { const c = window.cim.viewer.scene.camera.positionCartographic;
        return [Cesium.Math.toDegrees(c.longitude), Cesium.Math.toDegrees(c.latitude), c.height]; }""")
    assert abs(cam[0] - lon) < 1e-4 and abs(cam[1] - lat) < 1e-4 and cam[2] < 200
    assert sorted(p.js("window.cim.state.highlighted")) == sorted([f["properties"]["object_id"],
                                                                    f["properties"]["related_id"]])
    assert "active" in items.nth(k).get_attribute("class")
    if p.page.is_visible("#panel-close"):  # the object panel of an earlier click would hide the label
        p.page.click("#panel-close")
    p.settle()
    img = p.screenshot("underground_findings.png")
    assert img.std() > 10
    # English labels after the language switch
    p.page.click("#lang")
    p.js("() => window.cim.underground.findings(window.cim.ugFindingsRun)")
    assert "too near a building" in p.page.locator("#ug-findings li").nth(k).inner_text()
    p.page.click("#lang")
    _assert_clean(p)

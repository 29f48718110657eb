"""The health-check dashboard at /dashboard in headless Chromium: cards with values against targets, the map
of units with the service areas of the chosen coverage indicator and the charts drawn by ECharts, the problem
list linking into the 3D viewer, the drill-down to a compound's life circle, the English switch, no console
errors; screenshots go to tests/artifacts/dashboard.png and dashboard_lifecircle.png."""
from __future__ import annotations

import httpx
import sqlalchemy as sa
from conftest import ARTIFACTS
from playwright.sync_api import sync_playwright
from test_api_clients import server  # noqa: F401  (a real uvicorn process on the test database)
from test_healthcheck_district import LAYERS, sample  # noqa: F401  (the generated district, scale 1)

from analyses.healthcheck import yearly
from importers import gis
from sample_models.district import entries

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def test_dashboard_renders_values_map_and_charts(db, server, sample):  # noqa: F811
    out, _ = sample
    for e in entries(out):
        if e.importer == "gis" and e.options["layer"] in LAYERS:
            gis.import_file(out / e.path, engine=db, **e.options)
    yearly.run(2024, engine=db)
    with db.begin() as c:  # by 2025 two markets have closed
        c.execute(sa.text("delete from city_objects where id in (select id from city_objects "
                          "where attributes->>'kind' = 'market' order by id limit 2)"))
    yearly.run(2025, engine=db)
    assert httpx.get(f"{server}/dashboard", follow_redirects=True).status_code == 200
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1300})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{server}/dashboard/?indicator=market_coverage")
        page.wait_for_selector("body[data-ready=true]", timeout=60000)
        cards = page.locator(".card")
        assert cards.count() >= 10
        market = page.locator(".card[data-indicator=market_coverage]")
        assert "菜市场" in market.inner_text() and "%" in market.inner_text()
        assert "无数据" in page.locator(".card[data-indicator=waterlogging_points]").inner_text()
        assert page.locator(".card.fail").count() >= 1
        for chart in ("#map", "#trend", "#byunit"):
            assert page.locator(f"{chart} canvas").count() >= 1, chart
        # the list follows the chosen indicator; the box lists every indicator's problems
        named = "tds => tds.map(td => td.textContent)"
        chosen = page.locator("#indicator option:checked").inner_text()
        only = page.eval_on_selector_all("#problems tbody tr:not(.info) td:first-child", named)
        assert only and set(only) == {chosen}
        assert page.locator("#problem-count").inner_text() == f"({len(only)})"
        page.check("#all-problems")
        page.wait_for_function(f"document.querySelectorAll('#problems tbody tr:not(.info)').length > {len(only)}")
        every = page.eval_on_selector_all("#problems tbody tr:not(.info) td:first-child", named)
        assert chosen in every and len(set(every)) > 1
        href = page.locator("#problems tbody a").first.get_attribute("href")
        assert href.startswith(("/#view=114.", "/#view=113."))
        page.wait_for_timeout(800)  # let the charts' entry animation finish before the picture
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=False)
        page.click("#lang")
        page.wait_for_function("document.documentElement.lang === 'en'")
        assert "Coverage of food markets" in market.inner_text()
        assert page.locator("h1").inner_text() == "City health check"
        drill_down(page, server)
        browser.close()
    assert errors == []
    areas = httpx.get(f"{server}/api/healthcheck/service-areas", params={"indicator": "market_coverage"}).json()
    zones = [f for f in areas["features"] if f["properties"]["kind"] == "area"]
    assert len(zones) == 1 and zones[0]["properties"]["radius"] == 800 and zones[0]["properties"]["count"] > 0
    lon, lat = zones[0]["geometry"]["coordinates"][0][0][0] if zones[0]["geometry"]["type"] == "MultiPolygon" \
        else zones[0]["geometry"]["coordinates"][0][0]
    assert 113 < lon < 115 and 32 < lat < 34
    bad = httpx.get(f"{server}/api/healthcheck/service-areas", params={"indicator": "road_density"})
    assert bad.status_code == 400 and "road_density" in bad.json()["detail"]


def drill_down(page, server):
    """The planted estate's life circle: every class of the bands listed with its distances, the missing
    ones marked; the map draws the facilities' service areas."""
    page.goto(f"{server}/dashboard/?indicator=life_circle&level=compound&compound=HC-ESTATE")
    page.wait_for_selector("body[data-ready=true]", timeout=60000)
    drill = page.locator("#drill")
    assert drill.get_attribute("data-compound") == "HC-ESTATE"
    assert "天中新城小区" in drill.inner_text()
    rows = page.locator("#drill tr.within, #drill tr.missing")
    assert rows.count() == 5
    assert {"幼儿园", "小学", "菜市场", "中学", "社区卫生服务中心"} <= set(drill.inner_text().split())
    assert page.locator("#level").input_value() == "compound"
    page.wait_for_timeout(800)
    page.locator("#panels").screenshot(path=str(ARTIFACTS / "dashboard_lifecircle.png"))

"""The viewer's live tool in headless Chromium against a real uvicorn: during a gas leak on a manhole
the sensor shows red, the alarm is listed and acknowledged from the page, a state change arriving on
the live stream recolours the sensor, and a click on the alarm draws the sensor's 24 h chart."""
from __future__ import annotations

import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import ARTIFACTS
from monitor_helpers import X, Y, make_sensors, start_api, wait_for
from test_monitor_alarms import feed

from services.auth import create_key

from playwright import sync_api as playwright_sync  # noqa: E402
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def api(db, cli_env):
    make_sensors(db)
    proc, base = start_api(cli_env)
    yield base
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def test_live_gas_alarm_on_a_manhole(db, api):
    assert Path(CHROMIUM).exists(), "the viewer tests need /usr/bin/chromium (.ci/install)"
    _, operator = create_key("operator", engine=db)
    t0 = datetime.now(UTC) - timedelta(minutes=3)
    feed(db, "G1", [1, 2, 28, 30, 33], t0)  # a gas leak at MH-1: alarm after two readings over 25 %LEL
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        ctx = browser.new_context(viewport={"width": 960, "height": 640})
        ctx.add_init_script(f"localStorage.setItem('cim.apiKey', {operator!r})")
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(api + "/")
        page.wait_for_function("window.cim && window.cim.live && window.cim.live.ready === true", timeout=120_000)
        assert page.evaluate("() => window.cim.live.sensors.get('G1').state") == "alarm"
        colour = page.evaluate("""() => window.cim.viewer.entities.getById('sensor-G1').point.color.getValue()
                                   .toCssHexString()""")
        assert colour == "#e0312b"
        items = page.locator("#live-alarms li")
        assert items.count() == 1 and "G1" in items.first.inner_text() and "gas-level" in items.first.inner_text()
        page.evaluate("""([lon, lat]) => { const v = window.cim.viewer; v.scene.camera.setView({
            destination: Cesium.Cartesian3.fromDegrees(lon, lat, 12)}); v.scene.requestRender(); }""",
                      list(lonlat(db)))
        items.first.click()  # the 24 h chart of G1
        page.wait_for_function("document.querySelectorAll('#live-chart polyline').length === 1")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "monitor_live_gas_alarm.png"))
        page.locator("#live-alarms li button").click()  # acknowledge
        wait_for(lambda: acked(db), timeout=10)
        page.wait_for_function("!document.querySelector('#live-alarms li button')")
        feed(db, "P1", [0.12, 0.12, 0.12], datetime.now(UTC) - timedelta(seconds=20))  # low pressure: warning
        page.wait_for_function("window.cim.live.sensors.get('P1').state === 'warning'", timeout=20_000)
        assert errors == []
        browser.close()


def lonlat(db) -> tuple[float, float]:
    with db.connect() as c:
        r = c.execute(sa.text("select st_x(p), st_y(p) from (select st_transform(st_setsrid(st_makepoint(:x, :y), "
                              "4547), 4326) p) q"), {"x": X, "y": Y}).one()
    return r[0], r[1]


def acked(db) -> bool:
    with db.connect() as c:
        return c.scalar(sa.text("select acknowledged_by is not null from alarms")) is True

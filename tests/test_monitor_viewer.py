"""The viewer's live tool in headless Chromium against a real uvicorn: during a gas leak on a manhole
the sensor shows red, the alarm is listed and acknowledged from the page, a state change arriving on
the live stream recolours the sensor, and a click on the alarm draws the sensor's 24 h chart."""
from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import ARTIFACTS
from monitor_helpers import X, Y, count, make_sensors, start_api, wait_for
from test_monitor_alarms import feed, water_main

from services.auth import create_key
from services.monitor import simulate as sim
from services.monitor.broker import endpoint
from services.monitor.ingest import Ingest

from playwright import sync_api as playwright_sync  # noqa: E402
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture
def api(db, cli_env):
    make_sensors(db)
    proc, base = start_api(cli_env)
    yield base
    stop(proc)


@contextmanager
def live_page(base: str, key: str) -> Iterator[tuple]:
    """The viewer in headless Chromium with `key` in its key box, once the live tool is ready: (page,
    the page errors so far)."""
    assert Path(CHROMIUM).exists(), "the viewer tests need /usr/bin/chromium (.ci/install)"
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        ctx = browser.new_context(viewport={"width": 960, "height": 640})
        ctx.add_init_script(f"localStorage.setItem('cim.apiKey', {key!r})")
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base + "/")
        page.wait_for_function("window.cim && window.cim.live && window.cim.live.ready === true", timeout=120_000)
        yield page, errors
        browser.close()


def test_live_gas_alarm_on_a_manhole(db, api):
    _, operator = create_key("operator", engine=db)
    t0 = datetime.now(UTC) - timedelta(minutes=3)
    feed(db, "G1", [1, 2, 28, 30, 33], t0)  # a gas leak at MH-1: alarm after two readings over 25 %LEL
    with live_page(api, operator) as (page, errors):
        assert page.evaluate("() => window.cim.live.sensors.get('G1').state") == "alarm"
        colour = page.evaluate("""() => window.cim.viewer.entities.getById('sensor-G1').point.color.getValue()
                                   .toCssHexString()""")
        assert colour == "#e0312b"
        items = page.locator("#live-alarms li")
        assert items.count() == 1 and "G1" in items.first.inner_text() and "gas-level" in items.first.inner_text()
        page.evaluate("""([lon, lat]) => { const v = window.cim.viewer; v.scene.camera.setView({
            destination: Cesium.Cartesian3.fromDegrees(lon, lat, 20),
            orientation: {heading: 0, pitch: Cesium.Math.toRadians(-90), roll: 0}}); v.scene.requestRender(); }""",
                      list(lonlat(db)))
        # a label only where it is needed: G1 is in alarm, P1 and P2 are quiet until the pointer is on P1
        assert labels_shown(page) == {"G1"}
        page.mouse.move(*screen_of(page, lonlat(db, dx=1)))
        page.wait_for_function("window.cim.live.hovered === 'P1'", timeout=10_000)
        assert labels_shown(page) == {"G1", "P1"}
        page.mouse.move(*screen_of(page, lonlat(db, dy=-4.5)))  # off the sensors and the manhole (3 m)
        page.wait_for_function("window.cim.live.hovered === null", timeout=10_000)
        assert labels_shown(page) == {"G1"}
        items.first.click()  # the 24 h chart of G1
        page.wait_for_function("document.querySelectorAll('#live-chart polyline').length === 1")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "monitor_live_gas_alarm.png"))
        page.locator("#live-alarms li button").click()  # acknowledge
        wait_for(lambda: acked(db), timeout=10)
        page.wait_for_function("!document.querySelector('#live-alarms li button')")
        feed(db, "P1", [0.12, 0.12, 0.12], datetime.now(UTC) - timedelta(seconds=20))  # low pressure: warning
        page.wait_for_function("window.cim.live.sensors.get('P1').state === 'warning'", timeout=20_000)
        assert labels_shown(page) == {"G1", "P1"}  # a warning shows its label too
        assert errors == []


def labels_shown(page) -> set[str]:
    """The codes of the live sensors whose label is drawn now."""
    return set(page.evaluate("""() => [...window.cim.live.sensors.keys()].filter((c) => {
        const e = window.cim.viewer.entities.getById(`sensor-${c}`);
        return e && e.label.show.getValue(); })"""))


def lonlat(db, dx: float = 0.0, dy: float = 0.0) -> tuple[float, float]:
    with db.connect() as c:
        r = c.execute(sa.text("select st_x(p), st_y(p) from (select st_transform(st_setsrid(st_makepoint(:x, :y), "
                              "4547), 4326) p) q"), {"x": X + dx, "y": Y + dy}).one()
    return r[0], r[1]


def screen_of(page, lonlat: tuple[float, float]) -> tuple[float, float]:
    """Where a point 2 m above the ground is on the page (the sensors are drawn at 2 m)."""
    return tuple(page.evaluate("""([lon, lat]) => { const v = window.cim.viewer; v.scene.render();
        const p = Cesium.SceneTransforms.worldToWindowCoordinates(v.scene, Cesium.Cartesian3.fromDegrees(lon, lat, 2));
        return [p.x, p.y]; }""", list(lonlat)))


def acked(db) -> bool:
    with db.connect() as c:
        return c.scalar(sa.text("select acknowledged_by is not null from alarms")) is True


def test_simulated_gas_leak_colours_the_manhole_live(db, cli_env, mosquitto):
    """The simulator publishes over MQTT, the ingest stores and evaluates, the stream reaches the open page:
    the manhole MH-1 itself (not only the sensor's point) turns red while the page is open."""
    make_sensors(db)
    water_main(db)
    placed = sim.place_sensors(db, 6)
    _, operator = create_key("operator", engine=db)
    ing = Ingest(db, endpoint(start=False), instance="viewer")
    runner = threading.Thread(target=ing.run, kwargs={"report_every": 3600}, daemon=True)
    runner.start()
    assert ing.subscribed.wait(10)
    proc, base = start_api(cli_env)
    try:
        with live_page(base, operator) as (page, errors):
            mh = count(db, "select s.asset_id from sensors s where s.code = 'G1'")
            assert page.evaluate(f"() => window.cim.viewer.entities.getById('asset-{mh}') !== undefined")
            out: dict = {}
            sim_thread = threading.Thread(target=lambda: out.update(sim.run(
                placed, endpoint(start=False), rate=30, duration=10, incident="gas-leak", incident_after=1)))
            sim_thread.start()
            # the manhole's colour follows the leak's sensor, live over the stream
            page.wait_for_function(f"window.cim.viewer.entities.getById('asset-{mh}').cimState === 'alarm'",
                                   timeout=60_000)
            colour = page.evaluate(f"""() => window.cim.viewer.entities.getById('asset-{mh}').ellipse.material
                                        .color.getValue().withAlpha(1).toCssHexString()""")
            assert colour == "#e0312b"
            page.wait_for_function("[...document.querySelectorAll('#live-alarms li')]"
                                   ".some(li => li.textContent.includes('SIM-GAS'))", timeout=30_000)
            lon, lat = lonlat(db)
            page.evaluate("""([lon, lat]) => { const v = window.cim.viewer;
                v.camera.lookAt(Cesium.Cartesian3.fromDegrees(lon, lat, 0),
                                new Cesium.HeadingPitchRange(0, -0.8, 45));
                v.camera.lookAtTransform(Cesium.Matrix4.IDENTITY); v.scene.requestRender(); }""", [lon, lat])
            page.wait_for_function("window.cim.viewer.dataSourceDisplay.ready", timeout=30_000)
            page.wait_for_timeout(1000)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "monitor_live_gas_leak_manhole.png"))
            sim_thread.join(30)
            assert out["incident_asset"] == "MH-1"
            # only the sensors that need attention carry their code (the leak's, or one offline)
            shown = labels_shown(page)
            states = page.evaluate("() => Object.fromEntries([...window.cim.live.sensors].map(([c, s]) => "
                                   "[c, s.state]))")
            assert len(shown) < len(states)
            assert shown == {c for c, st in states.items() if st in ("warning", "alarm", "critical", "offline")}
            assert any(c.startswith("SIM-GAS") for c in shown)
            assert errors == []
    finally:
        ing.stop()
        runner.join(10)
        stop(proc)

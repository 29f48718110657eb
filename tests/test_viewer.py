"""The viewer in headless Chromium against `cim demo` serving a small generated district.

One `cim demo --scale 0.1` process (database of the test cluster, CIM_HOME in a temp folder) serves
every test of this module; each test opens a fresh page and asserts what a user sees.
"""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from conftest import ARTIFACTS, new_database
from PIL import Image

from cim_core.db import free_port
from cim_core.migrate import upgrade

from playwright import sync_api as playwright_sync  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run"]
CIM = Path(sys.executable).with_name("cim")
SCALE = "0.1"




def _start_demo(env: dict, port: int, log: Path) -> tuple[subprocess.Popen, str]:
    """Run `cim demo` until it prints the URL and the URL answers; (process, its output so far)."""
    out = log.open("w")
    proc = subprocess.Popen([str(CIM), "demo", "--port", str(port), "--scale", SCALE], env=env, stdout=out,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        text = log.read_text()
        if proc.poll() is not None:
            raise AssertionError(f"cim demo exited with {proc.returncode}:\n{text}")
        if f"http://127.0.0.1:{port}/" in text:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
                return proc, text
            except OSError:
                pass
        time.sleep(0.5)
    proc.kill()
    raise AssertionError(f"cim demo did not print its URL in time:\n{log.read_text()}")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def demo(cluster, tmp_path_factory):
    """`cim demo` on a free port with a fresh database of the test cluster; yields its base URL and env."""
    url = new_database(cluster)
    engine = sa.create_engine(url)
    upgrade(engine, srid=4547)
    home = tmp_path_factory.mktemp("demo_home")
    env = {**os.environ, "CIM_DATABASE_URL": url, "CIM_HOME": str(home)}
    env.pop("CIM_SRID", None)
    port = free_port()
    proc, output = _start_demo(env, port, home / "demo.log")
    base = f"http://127.0.0.1:{port}"
    # A key of the role that may read every pipe network.
    token = subprocess.run([str(CIM), "keys", "create", "--role", "utilities"], env=env, capture_output=True,
                           text=True, check=True).stdout.strip().splitlines()[-1]
    yield {"base": base, "env": env, "engine": engine, "output": output, "key": token, "home": home}
    _stop(proc)
    # The demo leaves its Mosquitto running, as it leaves PostGIS: stop this home's broker.
    subprocess.run([str(CIM), "broker", "stop"], env=env, capture_output=True, check=True)
    engine.dispose()


def _get(base: str, path: str, key: str | None = None):
    req = urllib.request.Request(base + path, headers={"X-API-Key": key} if key else {})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def browser():
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


class Page:
    """A viewer page that records console errors and every request to another host."""

    def __init__(self, browser, base: str, hash_: str = "", key: str | None = None):
        self.base = base
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.context = browser.new_context(viewport={"width": 960, "height": 640})
        if key:
            self.context.add_init_script(f"localStorage.setItem('cim.apiKey', {json.dumps(key)})")
        self.page = self.context.new_page()
        host = urllib.parse.urlsplit(base).netloc
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: urllib.parse.urlsplit(r.url).scheme in ("http", "https", "ws", "wss")
                     and urllib.parse.urlsplit(r.url).netloc != host and self.foreign.append(r.url))
        self.page.goto(base + "/" + hash_)
        self.wait_ready()

    def wait_ready(self):
        self.page.wait_for_function("window.cim && window.cim.ready === true", timeout=180_000)

    def js(self, script: str, arg=None):
        return self.page.evaluate(script, arg)

    def settle(self):
        """Every shown tileset and the globe loaded, plus a few frames."""
        self.page.evaluate("() => window.cim.whenLoaded()")

    def screenshot(self, name: str) -> np.ndarray:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        png = self.page.screenshot(path=str(ARTIFACTS / name))
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float64)

    def look_down_at(self, lon: float, lat: float, height: float):
        self.js("""([lon, lat, h]) => { const v = window.cim.viewer;
            v.scene.camera.setView({destination: Cesium.Cartesian3.fromDegrees(lon, lat, h),
              orientation: {heading: 0, pitch: Cesium.Math.toRadians(-90), roll: 0}}); v.scene.requestRender(); }""",
                [lon, lat, height])
        self.settle()

    def screen_of(self, lon: float, lat: float, height: float = 0.0) -> tuple[float, float]:
        xy = self.js("""([lon, lat, h]) => { const s = window.cim.viewer.scene;
            const p = Cesium.SceneTransforms.worldToWindowCoordinates(s, Cesium.Cartesian3.fromDegrees(lon, lat, h));
            return p ? [p.x, p.y] : null; }""", [lon, lat, height])
        assert xy, f"{lon},{lat} is not on screen"
        return xy[0], xy[1]

    def close(self):
        self.context.close()


@pytest.fixture(scope="module")
def page(browser, demo):
    """One anonymous viewer page for the tests that only look and click (a page load costs a minute
    of software WebGL on a shared CPU); each test sets the camera it needs."""
    p = Page(browser, demo["base"])
    yield p
    p.close()


@pytest.fixture(scope="module")
def keyed_page(browser, demo):
    """A viewer page whose user entered a key of the `utilities` role in the key box."""
    p = Page(browser, demo["base"])
    assert "pipes" not in p.js("Object.keys(window.cim.tilesets)")
    p.page.fill("#key", demo["key"])
    p.page.click("#key-form button[type=submit]")
    p.page.wait_for_function("'pipes' in window.cim.tilesets", timeout=120_000)
    assert p.js("localStorage.getItem('cim.apiKey')") == demo["key"]
    yield p
    p.close()


def _assert_clean(p: Page):
    assert not p.errors, f"console errors: {p.errors}"
    assert not p.foreign, f"requests to other hosts: {p.foreign}"


def _building(demo) -> dict:
    """A GIS building of the district, with a point inside its footprint (lon/lat) and its database id."""
    feats = _get(demo["base"], "/api/collections/buildings/items?limit=200")["features"]
    import shapely
    from shapely.geometry import shape
    # The biggest footprint: easy to hit with a click from above.
    f = max(feats, key=lambda f: shape(f["geometry"]).area)
    pt = shapely.point_on_surface(shape(f["geometry"]))
    return {"id": f["id"], "lon": pt.x, "lat": pt.y, "props": f["properties"]}


def test_district_shows_without_errors_or_foreign_requests(page):
    page.settle()
    img = page.screenshot("viewer_district.png")
    _assert_clean(page)
    # The opening view frames the whole district: the corners of its ground (the root tileset's region) are on
    # the canvas, right of the left panel.
    corners = page.js("""() => { const [w, s, e, n] = window.cim.district, scene = window.cim.viewer.scene;
        const left = document.getElementById('panel-left').getBoundingClientRect().right;
        return [[w, s], [e, s], [e, n], [w, n]].map(([lon, lat]) => Cesium.SceneTransforms.worldToWindowCoordinates(
            scene, Cesium.Cartesian3.fromRadians(lon, lat, 0))).map((p) => p && [p.x, p.y, left,
            scene.canvas.clientWidth, scene.canvas.clientHeight]); }""")
    assert all(c and c[2] <= c[0] <= c[3] and 0 <= c[1] <= c[4] for c in corners), f"district corners: {corners}"
    # Not blank, not black: ground, sky and buildings make a varied picture.
    assert img.std() > 12, f"screenshot looks blank (std {img.std():.1f})"
    assert img.mean() > 40, f"screenshot looks black (mean {img.mean():.1f})"
    # The layers an anonymous user may read are loaded; the pipes are listed as locked, in Chinese.
    assert page.js("Object.keys(window.cim.tilesets).sort()") == ["bim", "buildings", "ground"]
    layers = page.page.inner_text("#layers")
    assert "建筑" in layers
    locked = page.js("""() => [...document.querySelectorAll('#layers li.locked')].filter(li => li.querySelector(
        'svg.lock[aria-label]')).map(li => li.firstChild.textContent.trim())""")
    assert "地下管线" in locked, f"layers drawn with a lock: {locked}"
    loaded = page.js("""() => Object.fromEntries(Object.entries(window.cim.tilesets).map(([k, t]) =>
        [k, t.statistics.numberOfFeaturesLoaded]))""")
    assert loaded["buildings"] > 0 and loaded["ground"] > 0, f"features loaded: {loaded}"
    # BIM loads on demand: its tileset's error is its root's (the buildings layer draws the LOD1 blocks BIM's
    # root draws), so it loads once that error shows on screen (at scale 1's opening view it does not; the
    # BIM storey test below sees its elements close up)
    sse, limit = page.js("""() => { const ts = window.cim.tilesets.bim;
        return [ts.root.getScreenSpaceError(window.cim.viewer.scene.frameState, true),
                ts.memoryAdjustedScreenSpaceError]; }""")
    assert (loaded["bim"] > 0) == (sse > limit), f"BIM features loaded {loaded['bim']} at {sse:.1f} px (limit {limit})"
    # one draw call per tile of buildings and ground: their colours are in the vertices
    commands = page.js("""() => ['buildings', 'ground'].map(k => window.cim.tilesets[k].statistics).map(s =>
        [s.numberOfCommands, s.numberOfTilesWithContentReady])""")
    assert all(0 < c <= n for c, n in commands), f"draw commands, tiles of buildings and ground: {commands}"


def test_the_precomputed_lighting_table_is_cesiums_own(page):
    """viewer/brdf-lut.png, which the scene takes instead of drawing it (js/scene.js), holds what CesiumJS's own
    generator draws, texel for texel; on a CesiumJS upgrade that changes it, copy tests/artifacts/brdf-lut.png."""
    cesium, ours, source = page.js("""() => {
        const scene = window.cim.viewer.scene, context = scene.context;
        const read = (texture) => {
            const fb = new Cesium.Framebuffer({context, colorTextures: [texture], destroyAttachments: false});
            const px = context.readPixels({x: 0, y: 0, width: 256, height: 256, framebuffer: fb});
            fb.destroy();
            return Array.from(px);
        };
        const generator = new Cesium.BrdfLutGenerator();
        generator.update(scene.frameState);
        const drawn = read(generator.colorTexture);
        generator.destroy();
        return [drawn, read(scene._brdfLutGenerator.colorTexture), window.cim.brdfLut];
    }""")
    drawn = np.array(cesium, dtype=np.uint8).reshape(256, 256, 4)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    Image.fromarray(drawn[..., :3]).save(ARTIFACTS / "brdf-lut.png")
    assert source == "precomputed"
    assert drawn[..., 0].max() > 200 and drawn[..., 1].max() > 50, "CesiumJS drew an empty table"
    diff = np.abs(drawn.astype(int) - np.array(ours, dtype=np.uint8).reshape(256, 256, 4)).max()
    assert diff == 0, f"viewer/brdf-lut.png differs from CesiumJS's table by up to {diff}/255"


def test_the_city_map_lies_on_the_ground_and_is_pickable(page, demo):
    roads = _get(demo["base"], "/api/collections/roads/items?limit=500")["features"]
    road = max((f for f in roads if f["geometry"]["type"] == "LineString" and f["properties"].get("name")),
               key=lambda f: f["properties"].get("width_m") or 0)
    (lon0, lat0), (lon1, lat1) = np.asarray(road["geometry"]["coordinates"])[:2, :2]
    lon, lat = (lon0 + lon1) / 2, (lat0 + lat1) / 2
    page.js("() => window.cim.labelsReady")
    page.look_down_at(lon, lat, 400)
    page.screenshot("viewer_ground_road.png")
    x, y = page.screen_of(lon, lat, (road["properties"].get("zmin") or 0) + page.js("window.cim.verticalOffset"))
    picked = page.js("([x, y]) => window.cim.pickAt(x, y)", [x, y])
    assert picked and picked["class"] == "road" and picked["id"] == road["id"], picked
    # The whole district from above at an angle: roads, rivers, parks and land use under the buildings.
    page.js("""() => { const v = window.cim.viewer;
        v.scene.camera.setView({destination: Cesium.Cartesian3.fromDegrees(114.02, 32.962, 1400),
          orientation: {heading: 0, pitch: Cesium.Math.toRadians(-40), roll: 0}}); v.scene.requestRender(); }""")
    page.settle()
    page.screenshot("viewer_ground.png")
    classes = page.js("""() => { const out = new Set();
        const visit = (tile) => {
          if (tile.content && tile.contentReady) for (let i = 0; i < tile.content.featuresLength; i++)
            out.add(tile.content.getFeature(i).getProperty('class'));
          tile.children.forEach(visit); };
        visit(window.cim.tilesets.ground.root); return [...out].sort(); }""")
    assert classes == ["green", "landuse", "road", "water"], classes
    # road names as labels, one per named road, hidden with the ground layer
    assert road["properties"]["name"] in page.js("window.cim.roadLabels")
    page.page.uncheck("input[data-layer=ground]")
    assert page.js("window.cim.viewer.scene.primitives._primitives.some(p => p instanceof Cesium.LabelCollection "
                   "&& !p.show)")
    page.page.check("input[data-layer=ground]")
    page.settle()
    _assert_clean(page)


def test_click_on_a_building_shows_its_id_and_attributes(page, demo):
    b = _building(demo)
    page.look_down_at(b["lon"], b["lat"], 400)
    x, y = page.screen_of(b["lon"], b["lat"])
    page.page.mouse.click(x, y)
    page.page.wait_for_selector("#panel-right:not([hidden])")
    page.page.wait_for_function("document.querySelector('#record-props').rows.length > 0", timeout=30_000)
    page.screenshot("viewer_building_picked.png")
    tile_props = page.page.inner_text("#feature-props")
    record = page.page.inner_text("#record-props")
    assert f"id {b['id']}" in page.page.inner_text("#feature-sub")
    # At once from the tile: its floors; then from the API: the source dataset and every attribute.
    assert re.search(rf"floors\s+{b['props']['floors']}\b", tile_props), tile_props
    assert b["props"]["dataset"] in record
    assert re.search(rf"attributes.build_year\s+{b['props']['build_year']}\b", record), record
    page.page.click("#panel-close")
    _assert_clean(page)


def test_underground_mode_makes_a_pipe_pickable(keyed_page, demo):
    p = keyed_page
    pipes = _get(demo["base"], "/api/collections/pipes_water/items?limit=100", demo["key"])["features"]
    pipe = max(pipes, key=lambda f: f["properties"]["length_m"] or 0)
    coords = np.asarray(pipe["geometry"]["coordinates"])
    mid = (coords[0] + coords[-1]) / 2
    assert "pipes" in p.js("Object.keys(window.cim.tilesets)")
    assert p.js("document.querySelectorAll('#layers svg.lock').length") == 0
    p.look_down_at(mid[0], mid[1], 60)
    x, y = p.screen_of(mid[0], mid[1], mid[2] + p.js("window.cim.verticalOffset"))
    above = p.js("([x, y]) => window.cim.pickAt(x, y)", [x, y])
    assert not above or above.get("id") != pipe["id"], "the opaque ground should hide the pipe"
    p.page.check("#underground")
    p.page.eval_on_selector("#opacity", "e => { e.value = '0.3'; e.dispatchEvent(new Event('input')); }")
    p.settle()
    p.screenshot("viewer_underground.png")
    below = p.js("([x, y]) => window.cim.pickAt(x, y)", [x, y])
    assert below and below["id"] == pipe["id"], f"picked {below} instead of water pipe {pipe['id']}"
    assert below["utility"] == "water"
    # And from below the surface, looking up.
    p.js("""([lon, lat]) => { const v = window.cim.viewer;
        v.scene.camera.setView({destination: Cesium.Cartesian3.fromDegrees(lon, lat, -40),
          orientation: {heading: 0, pitch: Cesium.Math.toRadians(90), roll: 0}}); v.scene.requestRender(); }""",
         [mid[0], mid[1]])
    p.settle()
    p.screenshot("viewer_underground_from_below.png")
    x, y = p.screen_of(mid[0], mid[1], mid[2] + p.js("window.cim.verticalOffset"))
    from_below = p.js("([x, y]) => window.cim.pickAt(x, y)", [x, y])
    assert from_below and from_below["id"] == pipe["id"], f"from below: picked {from_below}"
    _assert_clean(p)


def test_a_storey_of_a_bim_building_shows_alone(page, demo):
    manifest = json.loads((demo["home"] / "sample-district" / f"scale-{SCALE}" / "manifest.json").read_text())
    name = next(f["name"] for f in manifest["files"] if f.get("kind") == "ifc")
    page.page.fill("#search-q", name)
    page.page.press("#search-q", "Enter")
    page.page.click("#search-results li:has-text('IfcBuilding')")
    page.page.wait_for_selector("#bim:not([hidden]) button.storey", timeout=30_000)
    page.page.wait_for_function("!window.cim.flying")
    storeys = page.page.query_selector_all("#bim-tree button.storey")
    assert len(storeys) >= 2
    storeys[1].click()
    chosen = storeys[1].get_attribute("data-storey")
    page.settle()
    page.screenshot("viewer_storey_alone.png")
    shown = page.js("""() => { const ts = window.cim.tilesets.bim, out = new Set();
        const visit = (tile) => {
          if (tile.content && tile.contentReady) for (let i = 0; i < tile.content.featuresLength; i++) {
            const f = tile.content.getFeature(i);
            if (ts.style.show.evaluate(f)) out.add(String(f.getProperty('storey_id'))); }
          tile.children.forEach(visit); };
        visit(ts.root); return [...out]; }""")
    assert shown == [chosen], f"features of storeys {shown} shown, expected only {chosen}"
    # The building's LOD1 blocks are cut away around the storey.
    assert page.js("window.cim.tilesets.buildings.clippingPolygons.length") == 1
    page.page.click("#show-all-storeys")
    assert page.js("window.cim.tilesets.buildings.clippingPolygons") is None
    page.page.click("#panel-close")
    _assert_clean(page)


def test_view_and_layers_survive_a_shared_link(page, browser, demo):
    page.look_down_at(114.02, 32.98, 900)
    page.page.uncheck("input[data-layer=bim]")
    page.js("window.cim.viewer.scene.camera.moveEnd.raiseEvent()")
    link = page.page.url
    page.page.check("input[data-layer=bim]")
    assert "view=" in link and "layers=" in link
    again = Page(browser, demo["base"], hash_="#" + link.split("#", 1)[1])
    try:
        cam = again.js("""() => { const c = Cesium.Cartographic.fromCartesian(window.cim.viewer.scene.camera.positionWC);
            return [Cesium.Math.toDegrees(c.longitude), Cesium.Math.toDegrees(c.latitude), c.height]; }""")
        assert abs(cam[0] - 114.02) < 1e-4 and abs(cam[1] - 32.98) < 1e-4 and abs(cam[2] - 900) < 1
        assert not again.page.is_checked("input[data-layer=bim]")
        assert again.page.is_checked("input[data-layer=buildings]")
        assert not again.js("window.cim.tilesets.bim.show")
        _assert_clean(again)
    finally:
        again.close()


def test_plan_view_and_png_export(page):
    page.look_down_at(114.02, 32.98, 900)
    page.js("() => { const c = window.cim.viewer.scene.camera; c.setView({orientation: {heading: 0, "
            "pitch: Cesium.Math.toRadians(-35), roll: 0}}); }")
    page.page.click("#plan-2d")
    assert page.js("window.cim.viewer.scene.camera.frustum instanceof Cesium.OrthographicFrustum")
    assert abs(page.js("Cesium.Math.toDegrees(window.cim.viewer.scene.camera.pitch)") + 90) < 0.5
    assert page.page.get_attribute("#plan-2d", "aria-pressed") == "true"
    page.settle()
    with page.page.expect_download() as download:
        page.page.click("#export-png")
    png = Path(download.value.path()).read_bytes()
    (ARTIFACTS / "viewer_plan_export.png").write_bytes(png)
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG"
    assert list(img.size) == page.js("[window.cim.viewer.scene.canvas.width, window.cim.viewer.scene.canvas.height]")
    assert np.asarray(img.convert("RGB"), dtype=float).std() > 5  # the view, not an empty buffer
    page.page.click("#plan-2d")
    assert page.js("window.cim.viewer.scene.camera.frustum instanceof Cesium.PerspectiveFrustum")
    _assert_clean(page)


def test_language_switches_to_english_and_back(page):
    assert "图层" in page.page.inner_text("#panel-left")
    page.page.click("#lang")
    text = page.page.inner_text("#panel-left")
    assert "Layers" in text and "Buildings" in text and "图层" not in text
    page.page.click("#lang")
    assert "图层" in page.page.inner_text("#panel-left")


def test_second_demo_run_skips_the_import(demo, tmp_path):
    port = free_port()
    proc, output = _start_demo(demo["env"], port, tmp_path / "demo2.log")
    _stop(proc)
    assert "import skipped" in output
    assert "sample-buildings" in demo["output"]

"""The viewer in headless Chromium: time until the sample district has loaded, and frame rate while orbiting.

Runs `cim demo --scale N` (its own CIM_HOME and embedded database per scale under the work folder; a second
run skips the import), opens the viewer with a key of the `utilities` role so that every layer loads, and
measures
- load_s: from navigation until every shown tileset reports tilesLoaded and the globe's tiles are loaded
  (the viewer's own `cim.marks.loaded`, ms since navigation);
- orbit_fps: postRender events per second while the camera circles the district for ORBIT_S seconds (after
  the road labels, which the viewer adds once the first view is complete, are in); on software GL the viewer
  draws at half resolution while the camera moves, as a user's orbit would;
- opening_view: what the first complete view draws (draw commands of the last frame, the tiles' commands and
  triangles, globe tiles), the shader programs linked and frames drawn until then, and when each tileset's
  content was ready (decoded and uploaded; ms since navigation) against the last tile response.
Software WebGL (SwiftShader) on a shared CPU: the figures are lower bounds of what a GPU gives.
Above scale 1 the demo runs its design storm beside the server until one is stored (SWMM on one core for
many minutes): a scale-30 run before that measures the viewer beside it.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from bench._http import free_port

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
ORBIT_S = 8.0
VIEWPORT = {"width": 1280, "height": 720}


# Counters kept from the page's start (an init script, before any of the page's own): shader programs linked,
# frames drawn and their main-thread time, and when each tileset's content was ready (decoded and on the GPU).
PROBE_JS = """(() => {
    const P = window.__bench = {programs: 0, frames: 0, frame_ms: 0, longest_frame_ms: 0, content_ready_ms: {}};
    const link = WebGL2RenderingContext.prototype.linkProgram;
    WebGL2RenderingContext.prototype.linkProgram = function (...a) { P.programs++; return link.apply(this, a); };
    const raf = window.requestAnimationFrame.bind(window);
    window.requestAnimationFrame = (cb) => raf((ts) => {
        const t = performance.now();
        try { cb(ts); } finally {
            const d = performance.now() - t;
            P.frames++; P.frame_ms += d; P.longest_frame_ms = Math.max(P.longest_frame_ms, d);
        }
    });
    const hook = () => {
        for (const [k, ts] of Object.entries((window.cim && window.cim.tilesets) || {}))
            if (!ts.__bench) ts.__bench = ts.tileLoad.addEventListener(() => {
                P.content_ready_ms[k] = Math.round(performance.now()); });
        if (!(window.cim && window.cim.ready)) setTimeout(hook, 5);
    };
    hook();
})();"""
# What the page reports once ready: the marks, tiles and requests; where the time goes: the tile requests
# (last response, and the server's share) vs decoding and drawing after them; what the opening view draws.
FIGURES_JS = """() => {
    const c = window.cim, ts = Object.values(c.tilesets), scene = c.viewer.scene, P = window.__bench;
    return {load_s: c.marks.loaded / 1000, marks: c.marks, layers: Object.keys(c.tilesets),
            opening_view: {draw_commands: scene.frameState.commandList.length,
                           tile_draw_commands: sum(ts.map(t => t.show ? t.statistics.numberOfCommands : 0)),
                           tile_triangles: sum(ts.map(t => t.show ? t.statistics.numberOfTrianglesSelected : 0)),
                           globe_tiles: scene.globe._surface._tilesToRender.length,
                           shader_programs_linked: P.programs, frames_drawn: P.frames,
                           frames_main_thread_ms: Math.round(P.frame_ms),
                           longest_frame_ms: Math.round(P.longest_frame_ms),
                           content_ready_ms: P.content_ready_ms},
            tiles_by_layer: Object.fromEntries(Object.entries(c.tilesets).map(([k, t]) =>
                [k, t.show ? t.statistics.numberOfLoadedTilesTotal : "hidden"])),
            tiles_loaded: ts.map(t => t.statistics.numberOfLoadedTilesTotal).reduce((a, b) => a + b, 0),
            features_loaded: ts.map(t => t.statistics.numberOfFeaturesLoaded).reduce((a, b) => a + b, 0),
            renderer: c.renderer, msaa: c.viewer.scene.msaaSamples,
            requests: requestTimes()};
    function requestTimes() {
        const r = performance.getEntriesByType("resource");
        const tiles = r.filter((e) => e.name.includes("/tiles/"));
        const glb = tiles.filter((e) => !e.name.split("?")[0].endsWith(".json"));
        const end = (list) => Math.round(Math.max(0, ...list.map((e) => e.responseEnd)));
        return {cesium_js_ms: end(r.filter((e) => e.name.endsWith("/Cesium.js"))),
                tile_requests: tiles.length, glb_requests: glb.length,
                glb_bytes: glb.reduce((a, e) => a + (e.encodedBodySize || 0), 0),
                last_tile_response_ms: end(tiles),
                tile_wait_ms_sum: Math.round(tiles.reduce((a, e) => a + (e.responseStart - e.requestStart), 0)),
                api_requests: r.filter((e) => e.name.includes("/api/")).length};
    }
    function sum(list) { return list.reduce((a, b) => a + b, 0); }
}"""
# Frames per second while the camera circles the district.
ORBIT_JS = """(seconds) => new Promise((resolve) => {
    const scene = window.cim.viewer.scene, sphere = window.cim.districtSphere();
    const range = sphere.radius * 2.0, pitch = Cesium.Math.toRadians(-35);
    let frames = 0, t0 = performance.now();
    const count = () => frames++;
    scene.postRender.addEventListener(count);
    const step = (now) => {
        const heading = ((now - t0) / 1000) * (2 * Math.PI / seconds);
        scene.camera.lookAt(sphere.center, new Cesium.HeadingPitchRange(heading, pitch, range));
        scene.requestRender();
        if (now - t0 < seconds * 1000) requestAnimationFrame(step);
        else {
            scene.postRender.removeEventListener(count);
            scene.camera.lookAtTransform(Cesium.Matrix4.IDENTITY);
            resolve(frames / ((now - t0) / 1000));
        }
    };
    requestAnimationFrame(step);
})"""


def _ensure_chromium() -> None:
    if not Path(CHROMIUM).exists():
        subprocess.run(["apt-get", "install", "-y", "chromium"], check=True)



def _cim(*args: str, env: dict) -> str:
    exe = Path(sys.executable).with_name("cim")
    return subprocess.run([str(exe), *args], env=env, capture_output=True, text=True, check=True).stdout


def run(scale: float, work: Path) -> dict:
    from playwright.sync_api import sync_playwright

    _ensure_chromium()
    home = (work / f"scale-{scale:g}" / "home").absolute()
    env = {**os.environ, "CIM_HOME": str(home)}
    env.pop("CIM_DATABASE_URL", None)
    port = free_port()
    log = home.parent / "demo.log"
    home.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    demo = subprocess.Popen([str(Path(sys.executable).with_name("cim")), "demo", "--port", str(port),
                             "--scale", f"{scale:g}"], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        while url not in log.read_text():
            if demo.poll() is not None:
                raise RuntimeError(f"cim demo failed:\n{log.read_text()}")
            time.sleep(0.5)
        demo_s = time.perf_counter() - started
        token = re.search(r"\b[A-Za-z0-9_-]{24,}\b", _cim("keys", "create", "--role", "utilities", env=env)).group(0)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            ctx = browser.new_context(viewport=VIEWPORT)
            ctx.add_init_script(f"localStorage.setItem('cim.apiKey', '{token}')")
            ctx.add_init_script(PROBE_JS)
            page = ctx.new_page()
            page.goto(url)
            page.wait_for_function("window.cim && window.cim.ready === true", timeout=600_000)
            figures = page.evaluate(FIGURES_JS)
            page.evaluate("() => window.cim.labelsReady")
            figures["orbit_fps"] = page.evaluate(ORBIT_JS, ORBIT_S)
            browser.close()
    finally:
        demo.terminate()
        demo.wait(30)
        _cim("db", "stop", env=env)
        _cim("broker", "stop", env=env)  # the demo leaves its Mosquitto running, as it leaves PostGIS
    return {"demo_to_url_s": round(demo_s, 1), "load_s": round(figures["load_s"], 2),
            "orbit_fps": round(figures["orbit_fps"], 2), "orbit_seconds": ORBIT_S, "viewport": VIEWPORT,
            "layers": figures["layers"], "tiles_loaded": figures["tiles_loaded"],
            "tiles_by_layer": figures["tiles_by_layer"],
            "features_loaded": figures["features_loaded"], "opening_view": figures["opening_view"],
            "renderer": figures["renderer"], "msaa": figures["msaa"],
            "marks_ms": figures["marks"], "requests": figures["requests"],
            "load_average": [round(v, 2) for v in os.getloadavg()]}

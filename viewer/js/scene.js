// The Cesium scene: a terrain-less globe without imagery, lit at local noon, and the camera moves.
// Settings chosen for speed where a software renderer (SwiftShader, no GPU) draws every pixel on the CPU:
// measured in docs/scene.md ("Viewer speed"), the sky's scattering and the dynamic environment map of the
// tilesets cost more than the city itself.
import { $, cim, tilesets } from "./state.js";

export const SKY = Cesium.Color.fromCssColorString("#b9d3ea"); // a plain sky instead of the scattering sky

// The renderer's name, asked of a throwaway context before the viewer is made: software WebGL (headless, no GPU)
// gets settings it can afford.
function rendererName() {
  const gl = document.createElement("canvas").getContext("webgl2") || document.createElement("canvas").getContext("webgl");
  if (!gl) return "";
  const info = gl.getExtension("WEBGL_debug_renderer_info");
  const name = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
  gl.getExtension("WEBGL_lose_context")?.loseContext();
  return name;
}
cim.renderer = rendererName();
cim.software = /swiftshader|llvmpipe|software/i.test(cim.renderer);

// The ellipsoid without terrain, each of its tiles known to exist. CesiumJS refines a globe tile only once it
// knows whether the tile's children exist; EllipsoidTerrainProvider leaves that unknown until a tile's data has
// loaded, so the globe went down to the district's tiles (level 9 at scale 1) one level a frame.
class Ellipsoid extends Cesium.EllipsoidTerrainProvider {
  getTileDataAvailable() {
    return true;
  }
}

function createViewer() {
  Cesium.Ion.defaultAccessToken = undefined;
  return new Cesium.Viewer("scene", {
    baseLayer: false,
    baseLayerPicker: false,
    geocoder: false,
    terrainProvider: new Ellipsoid(),
    animation: false,
    timeline: false,
    homeButton: false,
    sceneModePicker: false,
    navigationHelpButton: false,
    fullscreenButton: false,
    infoBox: false,
    selectionIndicator: false,
    requestRenderMode: true,
    maximumRenderTimeChange: Infinity,
    contextOptions: { webgl: { preserveDrawingBuffer: true } }, // the PNG export reads the last frame (tools/view.js)
    skyAtmosphere: false,
    skyBox: false,
    // Multisampling and order-independent translucency (extra full-screen passes) cost every pixel again.
    msaaSamples: cim.software ? 1 : 4,
    orderIndependentTranslucency: !cim.software,
  });
}

function setUpGlobe(globe) {
  globe.baseColor = Cesium.Color.fromCssColorString("#7d8a6e");
  globe.showGroundAtmosphere = false;
  globe.dynamicAtmosphereLighting = false;
  // Without imagery or terrain the globe's tiles differ from the ellipsoid only by the sag of their 65 x 65
  // vertex grid (d^2 / 8R: 0.1 m at level 7, 2 m at level 5), far below CesiumJS's error estimate for
  // heightmap terrain: coarse tiles look the same, and the globe is complete in fewer frames.
  globe.maximumScreenSpaceError = 64;
  globe.preloadAncestors = false;
  globe.depthTestAgainstTerrain = true; // pipes stay hidden under an opaque ground
  globe.undergroundColor = Cesium.Color.fromCssColorString("#2a2f36");
  globe.translucency.frontFaceAlpha = 0.4;
  globe.translucency.backFaceAlpha = 0.4;
}

// A software renderer's cost grows with the pixels drawn: it draws at half resolution (a quarter of the
// pixels) while the camera moves, and sharp once the camera has stood still for SETTLE_MS. Tiles are chosen by
// their error in CSS pixels, so the resolution does not change which tiles load.
const LOW_RESOLUTION = 0.5;
const SETTLE_MS = 300;
let moving = false;

// Ambient light for the tiles' materials as fixed spherical harmonics (a sky-blue dome over a grey-green ground)
// instead of CesiumJS's dynamic environment map, which renders the sky into a cube map, reads it back to the CPU
// and recompiles every model's shaders whenever the camera or the sun moves.
export function lighting() {
  const sh = [new Cesium.Cartesian3(0.62, 0.66, 0.72), new Cesium.Cartesian3(0.1, 0.1, 0.12),
    ...Array.from({ length: 7 }, () => Cesium.Cartesian3.ZERO)];
  return {
    environmentMapOptions: { enabled: false },
    imageBasedLighting: new Cesium.ImageBasedLighting({ sphericalHarmonicCoefficients: sh }),
  };
}

const viewer = (cim.viewer = createViewer());
export const scene = viewer.scene;
export const globe = scene.globe;
setUpGlobe(globe);
scene.fog.enabled = false;
scene.backgroundColor = SKY;
scene.renderError.addEventListener((_, e) => cim.errors.push(String(e)));

// Local solar noon at the district's longitude, today.
export function setDaylight(lon) {
  const now = new Date();
  const noonUtc = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), 12) - (lon / 15) * 3600e3;
  viewer.clock.currentTime = Cesium.JulianDate.fromDate(new Date(noonUtc));
  viewer.clock.shouldAnimate = false;
}

// The district: the root tileset's region (cim.district, radians), known before any layer's tileset loads. Its
// ground lies at height 0: the tiles' vertical offset puts it there.
const districtRectangle = () => (cim.district ? Cesium.Rectangle.unpack(cim.district) : null);

export function districtSphere() {
  const rect = districtRectangle();
  return rect ? Cesium.BoundingSphere.fromRectangle3D(rect, Cesium.Ellipsoid.WGS84, 0) : null;
}
cim.districtSphere = districtSphere;

// The whole district from the south, HOME_PITCH down, as close as keeps all its ground in the part of the frame
// the left panel leaves free. For a flat rectangle of half-extents ex (east) and ny (north) seen from distance d,
// a ground point (x, y) lies at depth d + y cos p and at y sin p above the view's centre: the near edge bounds
// the height of the frame, the near corners its width. The view's centre moves west by the panel's share of the
// frame, so that the district sits in the middle of the free part. HOME_MARGIN leaves room for the buildings.
const HOME_PITCH = Cesium.Math.toRadians(40);
const HOME_MARGIN = 1.1;
export function flyHome(duration = 0) {
  const rect = districtRectangle();
  if (!rect) return;
  const c = Cesium.Rectangle.center(rect);
  const at = (lon, lat) => Cesium.Cartesian3.fromRadians(lon, lat, 0);
  const ex = Cesium.Cartesian3.distance(at(rect.west, c.latitude), at(rect.east, c.latitude)) / 2;
  const ny = Cesium.Cartesian3.distance(at(c.longitude, rect.south), at(c.longitude, rect.north)) / 2;
  const { aspectRatio: a, fov } = scene.camera.frustum; // fov spans the frame's longer side
  const tanWide = Math.tan(fov / 2);
  const [tanX, tanY] = a >= 1 ? [tanWide, tanWide / a] : [tanWide * a, tanWide];
  const panel = $("panel-left");
  const covered = panel && !panel.hidden ? Math.min(0.5, panel.getBoundingClientRect().right / scene.canvas.clientWidth) : 0;
  const p = HOME_PITCH;
  const d = ny * Math.cos(p) + HOME_MARGIN * Math.max((ny * Math.sin(p)) / tanY, ex / (tanX * (1 - covered)));
  const target = Cesium.Matrix4.multiplyByPoint(Cesium.Transforms.eastNorthUpToFixedFrame(at(c.longitude, c.latitude)),
    new Cesium.Cartesian3(-covered * d * tanX, 0, 0), new Cesium.Cartesian3()); // west of the centre, in metres
  scene.camera.flyToBoundingSphere(new Cesium.BoundingSphere(target, 0), {
    duration,
    offset: new Cesium.HeadingPitchRange(0, -p, d),
  });
}

// CesiumJS computes the BRDF lookup table of its models' lighting on the first model it draws: a 256 x 256
// texture, 1,024 samples a texel, about 2 s of software GL before any tile can show. viewer/brdf-lut.png is
// that same table as CesiumJS 1.140 draws it (tests/test_viewer.py compares them); the scene takes it
// instead, before any tileset loads. Its generator is not public API: without the image, CesiumJS draws its own.
export const brdfLutReady = (async () => {
  const image = await Cesium.Resource.fetchImage({ url: "brdf-lut.png" });
  const generator = scene._brdfLutGenerator;
  if (!generator || generator.colorTexture) return;
  generator._colorTexture = new Cesium.Texture({
    context: scene.context, source: image, flipY: false, // the image's first row is the table's row 0
    pixelFormat: Cesium.PixelFormat.RGBA, pixelDatatype: Cesium.PixelDatatype.UNSIGNED_BYTE,
    sampler: Cesium.Sampler.NEAREST,
  });
  cim.brdfLut = "precomputed";
})().catch((e) => cim.errors.push(`brdf-lut.png: ${e.message || e}`));

// Fly to a lon/lat box from the south, `pitch` degrees down, framing it with its surroundings.
export function flyToBox([w, s, e, n], pitch = -35, zoom = 4) {
  const sphere = Cesium.BoundingSphere.fromPoints(Cesium.Cartesian3.fromDegreesArray([w, s, e, n]));
  cim.flying = true;
  scene.camera.flyToBoundingSphere(sphere, {
    duration: 1.5,
    complete: () => (cim.flying = false),
    cancel: () => (cim.flying = false),
    offset: new Cesium.HeadingPitchRange(0, Cesium.Math.toRadians(pitch), Math.max(sphere.radius * zoom, 120)),
  });
}

function applyResolution() {
  viewer.resolutionScale = cim.software && moving ? LOW_RESOLUTION : 1;
  scene.requestRender();
}

// The camera's motion, seen before each frame: CesiumJS's own moveEnd comes only in a frame drawn after the
// camera stopped, which request-render mode need not draw, so a timer ends the motion and asks for the
// sharp frame.
// A move: the camera's position by more than a millimetre or its direction by more than 1e-6 rad (compared
// exactly, the view of a camera standing still differed from frame to frame in the last bits).
const last = { position: new Cesium.Cartesian3(), direction: new Cesium.Cartesian3() };
const moved = (camera) => Cesium.Cartesian3.distance(camera.positionWC, last.position) > 1e-3 ||
  Cesium.Cartesian3.dot(camera.directionWC, last.direction) < 1 - 5e-13;
let settle = null;
// A jump (the opening view, a shared link's view) is no motion: the frames after it are drawn sharp at once, and
// the drawing buffer is not made smaller and then larger again.
export function jumped() {
  Cesium.Cartesian3.clone(scene.camera.positionWC, last.position);
  Cesium.Cartesian3.clone(scene.camera.directionWC, last.direction);
}
jumped(); // the camera the viewer starts with
scene.preRender.addEventListener(() => {
  const camera = scene.camera;
  if (!cim.software || !moved(camera)) return;
  Cesium.Cartesian3.clone(camera.positionWC, last.position);
  Cesium.Cartesian3.clone(camera.directionWC, last.direction);
  if (!moving) {
    moving = true;
    applyResolution();
  }
  clearTimeout(settle);
  settle = setTimeout(() => {
    moving = false;
    applyResolution();
  }, SETTLE_MS);
});

// Resolves once every shown tileset and the globe have loaded what the current view needs and the camera
// stands still (the frame is sharp), `frames` frames in a row.
export const whenLoaded = (cim.whenLoaded = (frames = 3) => new Promise((resolve) => {
  let quiet = 0;
  const check = () => {
    const loaded = globe.tilesLoaded && Object.values(tilesets).every((ts) => !ts.show || ts.tilesLoaded);
    quiet = loaded && !moving ? quiet + 1 : 0;
    if (quiet >= frames) {
      scene.postRender.removeEventListener(check);
      resolve();
    } else if (!loaded || !moving) scene.requestRender(); // else the motion's end asks for the next frame
  };
  scene.postRender.addEventListener(check);
  scene.requestRender();
}));

// The first complete view: one sharp frame with everything loaded. (Loading at low resolution and then
// drawing sharp cost a frame more than it saved.)
let viewComplete;
export const firstViewComplete = new Promise((resolve) => (viewComplete = resolve));
export async function firstView() {
  await whenLoaded(1);
  viewComplete();
}

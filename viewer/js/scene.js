// The Cesium scene: a terrain-less globe without imagery, lit at local noon, and the camera moves.
import { cim, tilesets } from "./state.js";

function createViewer() {
  Cesium.Ion.defaultAccessToken = undefined;
  return new Cesium.Viewer("scene", {
    baseLayer: false,
    baseLayerPicker: false,
    geocoder: false,
    terrainProvider: new Cesium.EllipsoidTerrainProvider(),
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
    contextOptions: { webgl: { preserveDrawingBuffer: true } },
  });
}

function setUpGlobe(globe) {
  globe.baseColor = Cesium.Color.fromCssColorString("#7d8a6e");
  globe.showGroundAtmosphere = false;
  globe.depthTestAgainstTerrain = true; // pipes stay hidden under an opaque ground
  globe.undergroundColor = Cesium.Color.fromCssColorString("#2a2f36");
  globe.translucency.frontFaceAlpha = 0.4;
  globe.translucency.backFaceAlpha = 0.4;
}

// Software WebGL (headless, no GPU) cannot afford multisampling.
function fitRenderer(scene) {
  const gl = scene.context._gl;
  const info = gl.getExtension("WEBGL_debug_renderer_info");
  cim.renderer = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
  if (/swiftshader|llvmpipe|software/i.test(cim.renderer)) scene.msaaSamples = 1;
}

const viewer = (cim.viewer = createViewer());
export const scene = viewer.scene;
export const globe = scene.globe;
setUpGlobe(globe);
scene.fog.enabled = false;
fitRenderer(scene);
scene.renderError.addEventListener((_, e) => cim.errors.push(String(e)));

// Local solar noon at the district's longitude, today.
export function setDaylight(lon) {
  const now = new Date();
  const noonUtc = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), 12) - (lon / 15) * 3600e3;
  viewer.clock.currentTime = Cesium.JulianDate.fromDate(new Date(noonUtc));
  viewer.clock.shouldAnimate = false;
}

export function districtSphere() {
  const spheres = Object.values(tilesets).map((ts) => ts.boundingSphere);
  return spheres.length ? Cesium.BoundingSphere.fromBoundingSpheres(spheres) : null;
}
cim.districtSphere = districtSphere;

export function flyHome(duration = 0) {
  const sphere = districtSphere();
  if (!sphere) return;
  scene.camera.flyToBoundingSphere(sphere, {
    duration,
    offset: new Cesium.HeadingPitchRange(0, Cesium.Math.toRadians(-40), sphere.radius * 2.0),
  });
}

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

// Resolves once every shown tileset and the globe have loaded what the current view needs.
export const whenLoaded = (cim.whenLoaded = () => new Promise((resolve) => {
  let quiet = 0;
  const check = () => {
    const done = globe.tilesLoaded && Object.values(tilesets).every((ts) => !ts.show || ts.tilesLoaded);
    quiet = done ? quiet + 1 : 0;
    if (quiet >= 3) {
      scene.postRender.removeEventListener(check);
      resolve();
    } else scene.requestRender();
  };
  scene.postRender.addEventListener(check);
  scene.requestRender();
}));

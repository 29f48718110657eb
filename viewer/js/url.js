// The view, the ticked layers and the language in the URL's hash: a link shows what its sender saw.
import { scene } from "./scene.js";
import { state } from "./state.js";

export function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  const view = p.get("view") ? p.get("view").split(",").map(Number) : null;
  return {
    view: view && view.length === 5 && view.every(Number.isFinite) ? view : null,
    layers: p.has("layers") ? new Set(p.get("layers").split(",").filter(Boolean)) : null,
    lang: p.get("lang"),
    scenario: p.get("scenario"),
  };
}

export function writeHash() {
  const c = Cesium.Cartographic.fromCartesian(scene.camera.positionWC);
  if (!c) return;
  const deg = Cesium.Math.toDegrees;
  const view = [deg(c.longitude).toFixed(6), deg(c.latitude).toFixed(6), c.height.toFixed(1),
    deg(scene.camera.heading).toFixed(1), deg(scene.camera.pitch).toFixed(1)].join(",");
  const p = new URLSearchParams({ view, layers: [...state.visible].join(","), lang: state.lang });
  if (state.scenario) p.set("scenario", state.scenario);
  history.replaceState(null, "", "#" + p.toString().replace(/%2C/g, ","));
}

export function applyView(v) {
  scene.camera.setView({
    destination: Cesium.Cartesian3.fromDegrees(v[0], v[1], v[2]),
    orientation: { heading: Cesium.Math.toRadians(v[3]), pitch: Cesium.Math.toRadians(v[4]), roll: 0 },
  });
}

// Planner tools on the view itself: a 2D plan (straight down, orthographic) or the 3D scene, and a PNG of
// what is on screen.
import { scene } from "../scene.js";
import { $, cim } from "../state.js";

let perspective = null; // the 3D camera to return to

function setPlan(on) {
  const camera = scene.camera;
  if (on && !perspective) {
    perspective = { position: camera.positionWC.clone(), heading: camera.heading };
    const c = Cesium.Cartographic.fromCartesian(camera.positionWC);
    camera.setView({ destination: Cesium.Cartesian3.fromRadians(c.longitude, c.latitude, Math.max(c.height, 300)),
      orientation: { heading: camera.heading, pitch: -Cesium.Math.PI_OVER_TWO, roll: 0 } });
    camera.switchToOrthographicFrustum();
  } else if (!on && perspective) {
    camera.switchToPerspectiveFrustum();
    camera.setView({ destination: perspective.position,
      orientation: { heading: perspective.heading, pitch: Cesium.Math.toRadians(-45), roll: 0 } });
    perspective = null;
  }
  scene.screenSpaceCameraController.enableTilt = !on; // a plan stays a plan
  $("plan-2d").setAttribute("aria-pressed", String(on));
  scene.requestRender();
}

// The canvas keeps its drawing buffer (see scene.js), so the last frame can be read back as it is.
function pngOfView() {
  scene.render();
  return new Promise((resolve) => scene.canvas.toBlob(resolve, "image/png"));
}

async function downloadPng() {
  const blob = await pngOfView();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `cim-view-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-")}.png`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

$("plan-2d").addEventListener("click", () => setPlan(!perspective));
$("export-png").addEventListener("click", downloadPng);
cim.setPlan = setPlan;

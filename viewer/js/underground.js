// Underground mode: a translucent ground the camera may pass through, to see the pipes beneath.
import { globe, scene, SKY } from "./scene.js";
import { $, cim, state } from "./state.js";
import { restyle } from "./style.js";

function setUnderground(on) {
  globe.translucency.enabled = on;
  scene.screenSpaceCameraController.enableCollisionDetection = !on;
  // Through the ground one would see the sky: a neutral backdrop reads better under a street.
  scene.backgroundColor = on ? Cesium.Color.fromCssColorString("#59626b") : SKY;
  $("underground").checked = on;
  state.underground = on;
  state.groundAlpha = globe.translucency.frontFaceAlpha;
  restyle(); // the ground layer follows the globe's translucency
}

function setOpacity(a) {
  globe.translucency.frontFaceAlpha = a;
  globe.translucency.backFaceAlpha = a;
  $("opacity").value = a;
  $("opacity-value").textContent = a.toFixed(2);
  state.groundAlpha = a;
  restyle();
}

$("underground").addEventListener("change", (e) => setUnderground(e.target.checked));
$("opacity").addEventListener("input", (e) => setOpacity(Number(e.target.value)));
cim.setUnderground = setUnderground;
cim.setOpacity = setOpacity;

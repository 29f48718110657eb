// A click on a building, an element or a pipe opens it in the info panel; a click elsewhere closes it.
import { closePanel, openFeature } from "./info.js";
import { scene } from "./scene.js";
import { cim } from "./state.js";

function featureProps(feature) {
  const out = {};
  for (const k of feature.getPropertyIds()) {
    const v = feature.getProperty(k);
    out[k] = typeof v === "bigint" ? Number(v) : v;
  }
  return out;
}

function pickAt(position) {
  const picked = scene.pick(position);
  if (picked instanceof Cesium.Cesium3DTileFeature) return featureProps(picked);
  return null;
}
cim.pickAt = (x, y) => pickAt(new Cesium.Cartesian2(x, y));

new Cesium.ScreenSpaceEventHandler(scene.canvas).setInputAction((click) => {
  const props = pickAt(click.position);
  if (props && props.id !== undefined) openFeature(props);
  else closePanel();
}, Cesium.ScreenSpaceEventType.LEFT_CLICK);

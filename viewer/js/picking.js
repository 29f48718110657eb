// A click on a building, an element, a pipe or a surface of the ground map opens it in the info panel; a
// click elsewhere closes it.
import { closePanel, openFeature } from "./info.js";
import { scene } from "./scene.js";
import { cim, GROUND, state, tilesets } from "./state.js";

function featureProps(feature) {
  const out = {};
  for (const k of feature.getPropertyIds()) {
    const v = feature.getProperty(k);
    out[k] = typeof v === "bigint" ? Number(v) : v;
  }
  return out;
}

// Underground, the translucent map on the ground yields to what lies beneath it (a pipe) when both are hit.
function pickAt(position) {
  const hits = (state.underground ? scene.drillPick(position, 4) : [scene.pick(position)])
    .filter((p) => p instanceof Cesium.Cesium3DTileFeature);
  const picked = hits.find((p) => p.tileset !== tilesets[GROUND]) || hits[0];
  return picked ? featureProps(picked) : null;
}
cim.pickAt = (x, y) => pickAt(new Cesium.Cartesian2(x, y));

new Cesium.ScreenSpaceEventHandler(scene.canvas).setInputAction((click) => {
  if (cim.measure && cim.measure.mode) return; // the click places a measuring point (tools/measure.js)
  const props = pickAt(click.position);
  if (props && props.id !== undefined) openFeature(props);
  else closePanel();
}, Cesium.ScreenSpaceEventType.LEFT_CLICK);

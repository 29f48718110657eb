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

// A block of merged building mass (a parent tile seen from afar, services/tiles/mass.py) stands for many
// buildings: a click on it moves the camera halfway there, where its buildings show one by one.
function zoomTowards(position) {
  const target = scene.pickPosition(position);
  if (!target) return;
  const camera = scene.camera;
  const destination = Cesium.Cartesian3.lerp(camera.positionWC, target, 0.5, new Cesium.Cartesian3());
  camera.flyTo({ destination, orientation: { heading: camera.heading, pitch: camera.pitch }, duration: 1 });
}

new Cesium.ScreenSpaceEventHandler(scene.canvas).setInputAction((click) => {
  if (cim.measure && cim.measure.mode) return; // the click places a measuring point (tools/measure.js)
  const props = pickAt(click.position);
  if (props && props.class === "block") zoomTowards(click.position);
  else if (props && props.id !== undefined) openFeature(props);
  else closePanel();
}, Cesium.ScreenSpaceEventType.LEFT_CLICK);

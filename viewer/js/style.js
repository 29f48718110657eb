// What each tileset shows and how: visible layers and utilities, the selection, an isolated storey.
import { clippingFor } from "./clipping.js";
import { scene } from "./scene.js";
import { cim, GROUND, NODES, PIPES, state, tilesets } from "./state.js";
import { showRoadLabels } from "./tools/labels.js";

const lit = (v) => (typeof v === "number" || typeof v === "bigint" ? String(v) : JSON.stringify(String(v)));

function colorRule() {
  if (state.selectedId === null) return undefined;
  return { conditions: [[`\${id} === ${lit(state.selectedId)}`, "color('#ffd54a')"], ["true", "color('white')"]] };
}

// Underground, the map on the ground is as translucent as the globe, so that the pipes show through it.
function groundColor() {
  const a = Number(state.groundAlpha).toFixed(3);
  const rules = [["true", `color('white', ${a})`]];
  if (state.selectedId !== null) rules.unshift([`\${id} === ${lit(state.selectedId)}`, `color('#ffd54a', ${a})`]);
  return { conditions: rules };
}

function pipesShow() {
  const segs = state.utilities.map((u) => u.utility).filter((u) => state.visible.has(u));
  const segShow = segs.length ? segs.map((u) => `\${utility} === ${lit(u)}`).join(" || ") : "false";
  const nodeShow = state.visible.has(NODES) ? "true" : "false";
  return `(\${class} === 'pipe_node' ? ${nodeShow} : (${segShow}))`;
}

function showRules(layer) {
  const show = [];
  if (layer === "buildings" && state.storey) show.push(`\${id} !== ${lit(state.storey.buildingId)}`);
  if (layer === "bim" && state.storey) show.push(`\${storey_id} === ${lit(state.storey.id)}`);
  if (layer === PIPES) show.push(pipesShow());
  return show;
}

function styleFor(layer) {
  const style = {};
  const show = showRules(layer);
  if (show.length) style.show = show.map((s) => `(${s})`).join(" && ");
  const color = layer === GROUND && state.underground ? groundColor() : colorRule();
  if (color) style.color = color;
  return new Cesium.Cesium3DTileStyle(style);
}

function layerShown(layer) {
  if (state.locked.has(layer)) return false;
  if (layer === PIPES) return state.utilities.some((u) => state.visible.has(u.utility)) || state.visible.has(NODES);
  return state.visible.has(layer);
}

export function restyle() {
  for (const [layer, ts] of Object.entries(tilesets)) {
    ts.show = layerShown(layer);
    ts.style = styleFor(layer);
    // An isolated storey: cut away every block standing on that building's footprint.
    if (layer === "buildings" && ts.clippedFor !== state.storey) {
      ts.clippingPolygons = clippingFor(state.storey);
      ts.clippedFor = state.storey;
    }
  }
  showRoadLabels();
  scene.requestRender();
}
cim.restyle = restyle;

export function select(id) {
  state.selectedId = id;
  restyle();
}

// What each tileset shows and how: visible layers and utilities, the selection, an isolated storey.
import { clippingFor } from "./clipping.js";
import { scene } from "./scene.js";
import { cim, GROUND, NODES, PIPES, state, tilesets } from "./state.js";
import { showRoadLabels } from "./tools/labels.js";

const lit = (v) => (typeof v === "number" || typeof v === "bigint" ? String(v) : JSON.stringify(String(v)));

function colorRule() {
  const hit = (state.highlighted || []).map((id) => [`\${id} === ${lit(id)}`, "color('#ff3b30')"]);
  // Tools tint objects of other layers in colours of their own: state.tints, id -> CSS colour
  for (const [id, css] of state.tints || []) hit.push([`\${id} === ${lit(id)}`, `color('${css}')`]);
  if (state.selectedId === null && !hit.length) return undefined;
  const selected = state.selectedId === null ? [] : [[`\${id} === ${lit(state.selectedId)}`, "color('#ffd54a')"]];
  return { conditions: [...selected, ...hit, ["true", "color('white')"]] };
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

// Feature id -> CSS colour: what tools mark on the pipes (a trace, findings); the others fade.
export const highlights = new Map();

function withHighlights(style) {
  const base = style.color;
  style.color = {
    evaluateColor(feature, result) {
      const css = highlights.get(Number(feature.getProperty("id")));
      if (css) return Cesium.Color.fromCssColorString(css, result);
      const c = base ? base.evaluateColor(feature, result) : Cesium.Color.clone(Cesium.Color.WHITE, result);
      c.alpha = 0.25; // the unmarked pipes fade so that the marks stand out
      return c;
    },
  };
  return style;
}

function styleFor(layer) {
  const style = {};
  const show = showRules(layer);
  if (show.length) style.show = show.map((s) => `(${s})`).join(" && ");
  const color = layer === GROUND && state.underground ? groundColor() : colorRule();
  if (color) style.color = color;
  const out = new Cesium.Cesium3DTileStyle(style);
  return layer === PIPES && highlights.size ? withHighlights(out) : out;
}

// The pipes lie under the opaque ground, so they are drawn (and their tiles asked for) in underground mode only.
function layerShown(layer) {
  if (state.locked.has(layer)) return false;
  if (layer === PIPES)
    return state.underground && (state.utilities.some((u) => state.visible.has(u.utility)) || state.visible.has(NODES));
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

// Road names on the ground map: one label per named road, at the middle of its longest piece, shown
// while the ground layer is and the camera is within LABEL_DISTANCE_M.
import { api } from "../http.js";
import { scene } from "../scene.js";
import { cim, GROUND, state, tilesets } from "../state.js";

const LABEL_DISTANCE_M = 2500;
const labels = scene.primitives.add(new Cesium.LabelCollection());

const segmentsOf = (g) => (g.type === "LineString" ? [g.coordinates] : g.type === "MultiLineString" ? g.coordinates : []);

function lengthOf(line) {
  let sum = 0;
  for (let i = 1; i < line.length; i++) sum += Math.hypot(line[i][0] - line[i - 1][0], line[i][1] - line[i - 1][1]);
  return sum;
}

// The point halfway along a lon/lat line (degrees; short enough to measure flat).
function middleOf(line) {
  let left = lengthOf(line) / 2;
  for (let i = 1; i < line.length; i++) {
    const d = Math.hypot(line[i][0] - line[i - 1][0], line[i][1] - line[i - 1][1]);
    if (d >= left && d > 0) {
      const t = left / d;
      return [line[i - 1][0] + t * (line[i][0] - line[i - 1][0]), line[i - 1][1] + t * (line[i][1] - line[i - 1][1])];
    }
    left -= d;
  }
  return line[0];
}

function longestPieces(features) {
  const best = new Map();
  for (const f of features) {
    const name = f.properties && f.properties.name;
    if (!name) continue;
    for (const line of segmentsOf(f.geometry || {})) {
      const len = lengthOf(line);
      if (!best.has(name) || best.get(name).len < len) best.set(name, { len, line });
    }
  }
  return best;
}

export async function loadRoadLabels() {
  labels.removeAll();
  cim.roadLabels = [];
  if (!tilesets[GROUND]) return;
  let doc;
  try {
    doc = await api("/api/collections/roads/items?limit=10000&properties=name");
  } catch (e) {
    cim.errors.push(String(e));
    return;
  }
  for (const [name, { line }] of longestPieces(doc.features)) {
    const [lon, lat] = middleOf(line);
    labels.add({
      position: Cesium.Cartesian3.fromDegrees(lon, lat, 3), // the globe is the district's ground
      text: name, // a label draws text, never markup
      font: "14px sans-serif", fillColor: Cesium.Color.WHITE, outlineColor: Cesium.Color.fromCssColorString("#333"),
      outlineWidth: 3, style: Cesium.LabelStyle.FILL_AND_OUTLINE,
      distanceDisplayCondition: new Cesium.DistanceDisplayCondition(0, LABEL_DISTANCE_M),
      disableDepthTestDistance: Number.POSITIVE_INFINITY, // above the buildings in front of it
    });
    cim.roadLabels.push(name);
  }
  scene.requestRender();
}

// The labels follow the ground layer's checkbox.
export function showRoadLabels() {
  labels.show = Boolean(tilesets[GROUND]) && state.visible.has(GROUND) && !state.locked.has(GROUND);
}

// Measuring on the scene: distance along clicked points (geodesic on the ellipsoid, m), area of a clicked
// polygon (in the east-north plane of its first point, m2), height between two clicked points (m).
// Left-click adds a point; a double-click or right-click ends a distance or area; Esc clears.
import { STRINGS, t } from "../i18n.js";
import { scene } from "../scene.js";
import { $, cim } from "../state.js";

Object.assign(STRINGS.zh, { planner: "规划工具", measureDistance: "测距", measureArea: "测面积", measureHeight: "测高",
  measureHint: "左键逐点点击，双击或右键结束，Esc 清除", distance: "距离", area: "面积", height: "高差" });
Object.assign(STRINGS.en, { planner: "Planner tools", measureDistance: "Distance", measureArea: "Area",
  measureHeight: "Height", measureHint: "click points; double-click or right-click to finish, Esc clears",
  distance: "distance", area: "area", height: "height difference" });

const viewer = cim.viewer;
const COLOR = Cesium.Color.fromCssColorString("#ffd54a");
const m = (cim.measure = { mode: null, points: [], result: null, entities: [] });

// Where a click lands: the picked surface (buildings, ground tiles, the globe), else the ellipsoid.
function pickAt(position) {
  let p = scene.pickPositionSupported ? scene.pickPosition(position) : undefined;
  if (!Cesium.defined(p)) p = scene.camera.pickEllipsoid(position, scene.globe.ellipsoid);
  return Cesium.defined(p) ? p : null;
}

export function geodesicLength(cartos) {
  let sum = 0;
  for (let i = 1; i < cartos.length; i++) sum += new Cesium.EllipsoidGeodesic(cartos[i - 1], cartos[i]).surfaceDistance;
  return sum;
}

export function planarArea(points) {
  const toLocal = Cesium.Matrix4.inverse(Cesium.Transforms.eastNorthUpToFixedFrame(points[0]), new Cesium.Matrix4());
  const xy = points.map((p) => Cesium.Matrix4.multiplyByPoint(toLocal, p, new Cesium.Cartesian3()));
  let twice = 0;
  for (let i = 0; i < xy.length; i++) {
    const a = xy[i], b = xy[(i + 1) % xy.length];
    twice += a.x * b.y - b.x * a.y;
  }
  return Math.abs(twice) / 2;
}

const fmt = (v, unit) => `${v.toLocaleString(undefined, { maximumFractionDigits: v < 100 ? 2 : 1 })} ${unit}`;

function measured() {
  const cartos = m.points.map((p) => Cesium.Cartographic.fromCartesian(p));
  if (m.mode === "distance" && m.points.length >= 2) return { value: geodesicLength(cartos), text: (v) => `${t("distance")} ${fmt(v, "m")}` };
  if (m.mode === "area" && m.points.length >= 3) return { value: planarArea(m.points), text: (v) => `${t("area")} ${fmt(v, "m²")}` };
  if (m.mode === "height" && m.points.length === 2) return { value: Math.abs(cartos[1].height - cartos[0].height), text: (v) => `${t("height")} ${fmt(v, "m")}` };
  return null;
}

function draw() {
  for (const e of m.entities) viewer.entities.remove(e);
  m.entities = m.points.map((p) => viewer.entities.add({ position: p, point: { pixelSize: 7, color: COLOR,
    disableDepthTestDistance: Number.POSITIVE_INFINITY } }));
  if (m.points.length >= 2) {
    const ring = m.mode === "area" ? [...m.points, m.points[0]] : m.points;
    m.entities.push(viewer.entities.add({ polyline: { positions: ring, width: 3, material: COLOR,
      depthFailMaterial: COLOR } }));
  }
  const r = measured();
  m.result = r ? Number(r.value.toFixed(3)) : null;
  $("measure-result").textContent = r ? r.text(r.value) : t("measureHint");
  if (r) {
    m.entities.push(viewer.entities.add({ position: m.points[m.points.length - 1], label: { text: r.text(r.value),
      font: "14px sans-serif", fillColor: Cesium.Color.WHITE, showBackground: true, pixelOffset: new Cesium.Cartesian2(0, -18),
      disableDepthTestDistance: Number.POSITIVE_INFINITY } }));
  }
  scene.requestRender();
}

function start(mode) {
  clear();
  m.mode = mode;
  m.done = false;
  $("measure-result").textContent = t("measureHint");
  for (const id of ["distance", "area", "height"]) $(`measure-${id}`).setAttribute("aria-pressed", String(id === mode));
}

function clear() {
  m.points = [];
  m.mode = null;
  draw();
  $("measure-result").textContent = "";
  for (const id of ["distance", "area", "height"]) $(`measure-${id}`).setAttribute("aria-pressed", "false");
}

const handler = new Cesium.ScreenSpaceEventHandler(scene.canvas);
handler.setInputAction((e) => {
  if (!m.mode || m.done) return;
  const p = pickAt(e.position);
  if (!p) return;
  m.points.push(p);
  if (m.mode === "height" && m.points.length === 2) m.done = true;
  draw();
}, Cesium.ScreenSpaceEventType.LEFT_CLICK);
const finish = () => {
  if (m.mode) m.done = true;
};
handler.setInputAction(finish, Cesium.ScreenSpaceEventType.LEFT_DOUBLE_CLICK);
handler.setInputAction(finish, Cesium.ScreenSpaceEventType.RIGHT_CLICK);
document.addEventListener("keydown", (e) => e.key === "Escape" && m.mode && clear());

for (const id of ["distance", "area", "height"]) $(`measure-${id}`).addEventListener("click", () => start(id));
$("measure-clear").addEventListener("click", clear);
m.start = start;
m.clear = clear;
m.lonLat = () => m.points.map((p) => {
  const c = Cesium.Cartographic.fromCartesian(p);
  return [Cesium.Math.toDegrees(c.longitude), Cesium.Math.toDegrees(c.latitude), c.height];
});

// The findings list of the underground tools: run the clearance checks (or open a stored run), list the
// findings (rule, measured vs required, both objects), and on a click fly the camera to the finding and
// highlight both objects. Server strings reach the page through textContent only.
import { t } from "../i18n.js";
import { scene } from "../scene.js";
import { $, cim, state } from "../state.js";
import { execute, say } from "./underground-tools.js";

let marks = [];
let listed = [];

async function getJson(url) {
  const headers = state.key ? { "X-API-Key": state.key } : {};
  const res = await fetch(url, { headers });
  const body = await res.json();
  if (!res.ok) throw new Error(body.detail || `HTTP ${res.status}`);
  return body;
}

function label(p) {
  const d = p.details || {};
  const m2 = (v) => Number(v).toFixed(2);
  const mr = d.measured_m !== undefined ? `${m2(d.measured_m)} / ${m2(d.required_m)} m` : "";
  const pair = [p.object_key, p.related_key].filter(Boolean).join(" ↔ ");
  return `${t("ugRule_" + p.rule)} · ${mr} · ${pair}`;
}

function unmark() {
  marks.forEach((e) => cim.viewer.entities.remove(e));
  marks = [];
}

// Both objects drawn in plan on the surface (red), whether or not their tiles are loaded.
async function outline(id) {
  const o = await getJson(`/api/objects/${id}`);
  const g = o.geometry;
  if (!g || g.type === "Point") return;
  const rings = g.type === "LineString" ? [g.coordinates] : g.type === "Polygon" ? g.coordinates : [];
  for (const ring of rings) {
    marks.push(cim.viewer.entities.add({ polyline: {
      positions: Cesium.Cartesian3.fromDegreesArrayHeights(ring.flatMap(([x, y]) => [x, y, 0.3])),
      width: 6, material: Cesium.Color.RED.withAlpha(0.9) } }));
  }
  scene.requestRender();
}

// Fly to finding k of the list and highlight both of its objects.
function flyTo(k, duration = 1.5) {
  const f = listed[k];
  const [lon, lat] = f.geometry.coordinates;
  const p = f.properties;
  state.highlighted = [p.object_id, p.related_id].filter((id) => id !== null && id !== undefined);
  if (cim.restyle) cim.restyle();
  if (cim.setUnderground) cim.setUnderground(true);
  unmark();
  marks.push(cim.viewer.entities.add({
    position: Cesium.Cartesian3.fromDegrees(lon, lat, 0),
    point: { pixelSize: 14, color: Cesium.Color.RED, outlineColor: Cesium.Color.WHITE, outlineWidth: 2,
      disableDepthTestDistance: Number.POSITIVE_INFINITY },
    label: { text: label(p), font: "13px sans-serif", fillColor: Cesium.Color.WHITE, showBackground: true,
      backgroundColor: Cesium.Color.fromCssColorString("#b00020").withAlpha(0.85),
      horizontalOrigin: Cesium.HorizontalOrigin.LEFT, pixelOffset: new Cesium.Cartesian2(12, -16),
      disableDepthTestDistance: Number.POSITIVE_INFINITY },
  }));
  state.highlighted.forEach((id) => outline(id).catch((e) => say(String(e.message || e))));
  [...$("ug-findings").children].forEach((li, i) => li.classList.toggle("active", i === k));
  scene.camera.flyTo({
    destination: Cesium.Cartesian3.fromDegrees(lon, lat, 70),
    orientation: { heading: 0, pitch: Cesium.Math.toRadians(-90), roll: 0 }, duration,
  });
  scene.requestRender();
  return f;
}

// The findings of a stored run (all but the "no rule" notes), as the list.
async function findings(runId) {
  const doc = await getJson(`/api/runs/${runId}/findings?limit=1000`);
  listed = doc.features.filter((f) => f.properties.severity !== "info" && f.geometry);
  const items = listed.map((f, k) => {
    const li = document.createElement("li");
    li.textContent = label(f.properties);
    li.addEventListener("click", () => flyTo(k));
    return li;
  });
  $("ug-findings").replaceChildren(...items);
  say(listed.length ? `${t("ugFindings")}: ${listed.length}` : t("ugNoFindings"));
  cim.ugFindings = listed;
  cim.ugFindingsRun = runId;
  return listed;
}

// Run every clearance check (optionally in a storage-CRS bbox) and list its findings.
async function check(bbox) {
  const r = await execute("underground-clearances", bbox ? { bbox } : {});
  return findings(r.run_id);
}

function clear() {
  unmark();
  listed = [];
  $("ug-findings").replaceChildren();
}

$("ug-check").addEventListener("click", () => check().catch((e) => say(String(e.message || e))));
$("ug-clear").addEventListener("click", clear);
Object.assign(cim.underground, { check, findings, flyTo, clearFindings: clear });

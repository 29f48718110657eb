// Underground tools: draw a pit (polygon + depth) and see what it reaches, draw a line for a cross-section,
// pick two manholes for a long section. Speaks to the OGC API - Processes of the platform; every server
// string reaches the page through textContent, and drawings (server SVG) only as images.
import { t } from "../i18n.js";
import { scene } from "../scene.js";
import { $, cim, state } from "../state.js";

const PROCESS = (id) => `/api/processes/${id}/execution`;
const entities = () => cim.viewer.entities;
let drawing = null; // {kind: "pit" | "line" | "profile", points: [[lon, lat]...] or manhole ids}
let shapes = [];

export async function execute(id, inputs) {
  const headers = { "Content-Type": "application/json" };
  if (state.key) headers["X-API-Key"] = state.key;
  const res = await fetch(PROCESS(id), { method: "POST", headers, body: JSON.stringify({ inputs }) });
  const body = await res.json();
  if (!res.ok) throw new Error(body.detail || `HTTP ${res.status}`);
  return body;
}

export function say(msg) {
  $("ug-status").textContent = msg;
}

function clearShapes() {
  shapes.forEach((e) => entities().remove(e));
  shapes = [];
  state.highlighted = [];
  if (cim.restyle) cim.restyle();
  $("ug-result").replaceChildren();
  $("ug-svg").hidden = true;
  scene.requestRender();
}

function table(headers, rows) {
  const tbl = document.createElement("table");
  tbl.className = "props";
  for (const r of [headers, ...rows]) {
    const tr = document.createElement("tr");
    for (const v of r) {
      const td = document.createElement(r === headers ? "th" : "td");
      td.textContent = v === null || v === undefined ? "" : String(v);
      tr.append(td);
    }
    tbl.append(tr);
  }
  return tbl;
}

function showPit(ring, depth) {
  shapes.push(entities().add({
    polygon: {
      hierarchy: Cesium.Cartesian3.fromDegreesArray(ring.flat()),
      height: 0, extrudedHeight: -depth, perPositionHeight: false,
      material: Cesium.Color.ORANGE.withAlpha(0.35), outline: true, outlineColor: Cesium.Color.ORANGE,
    },
  }));
  if (cim.setUnderground) cim.setUnderground(true);
}

// A pit of `ring` ([lon, lat] pairs, CGCS2000 ~ WGS 84) and `depth` metres: the hit pipes are highlighted.
async function excavate(ring, depth) {
  clearShapes();
  showPit(ring, depth);
  const closed = [...ring, ring[0]];
  const r = await execute("underground-excavation", {
    polygon: { type: "Polygon", coordinates: [closed] }, depth, crs: "EPSG:4490" });
  state.highlighted = r.segments.filter((s) => s.reached).map((s) => s.id).concat(r.nodes.map((n) => n.id));
  if (cim.restyle) cim.restyle();
  const rows = r.segments.map((s) => [s.key, s.utility, s.diameter_mm, s.top_depth_m && s.top_depth_m[0],
    s.invert_depth_m && s.invert_depth_m[1], s.length_inside_m, s.reached ? "✔" : ""]);
  $("ug-result").replaceChildren(
    table([t("ugObject"), t("ugUtility"), "mm", t("ugTop"), t("ugInvert"), t("ugInside"), t("ugReached")], rows),
    table([t("ugUtility"), t("ugVerdict")], Object.entries(r.utilities)
      .filter(([, v]) => v.segments || v.nodes).map(([u, v]) => [u, t(v.verdict === "clear" ? "ugClear" : "ugConflict")])));
  say(`${t("ugVolume")} ${r.pit.volume_m3} m³`);
  cim.ugLast = r;
  return r;
}

function showSvg(svg) {
  const img = $("ug-svg");
  img.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svg);
  img.hidden = false;
}

async function section(line) {
  clearShapes();
  shapes.push(entities().add({ polyline: { positions: Cesium.Cartesian3.fromDegreesArray(line.flat()),
    width: 3, material: Cesium.Color.YELLOW, clampToGround: false } }));
  const r = await execute("underground-cross-section", {
    line: { type: "LineString", coordinates: line }, crs: "EPSG:4490" });
  $("ug-result").replaceChildren(table([t("ugChainage"), t("ugObject"), t("ugUtility"), t("ugTop"), t("ugGap")],
    r.pipes.map((p) => [p.chainage_m, p.key, p.utility, p.top_depth_m, p.gap_after_m])));
  showSvg(r.svg);
  say(`${t("ugSection")} ${r.length_m} m`);
  cim.ugLast = r;
  return r;
}

async function profile(start, end) {
  clearShapes();
  const r = await execute("underground-long-section", { start, end });
  $("ug-result").replaceChildren(table([t("ugObject"), t("ugSlope"), t("ugFlag")],
    r.segments.map((s) => [s.key, s.slope, [s.adverse && t("ugAdverse"), s.step && t("ugStep")].filter(Boolean).join(" ")])));
  showSvg(r.svg);
  say(`${t("ugProfile")} ${r.length_m} m`);
  cim.ugLast = r;
  return r;
}

function run(promise) {
  return promise.catch((e) => say(String(e.message || e)));
}

function lonLatAt(position) {
  const p = scene.pickPositionSupported ? scene.pickPosition(position) : undefined;
  const at = p || scene.camera.pickEllipsoid(position);
  if (!at) return null;
  const c = Cesium.Cartographic.fromCartesian(at);
  return [Cesium.Math.toDegrees(c.longitude), Cesium.Math.toDegrees(c.latitude)];
}

const handler = new Cesium.ScreenSpaceEventHandler(scene.canvas);
handler.setInputAction((click) => {
  if (!drawing) return;
  if (drawing.kind === "profile") {
    const props = cim.pickAt(click.position.x, click.position.y);
    if (props && props.class === "pipe_node") drawing.points.push(props.id);
    if (drawing.points.length === 2) finish();
    return;
  }
  const ll = lonLatAt(click.position);
  if (ll) drawing.points.push(ll);
  say(`${t("ugPoints")} ${drawing.points.length}`);
}, Cesium.ScreenSpaceEventType.LEFT_CLICK);
handler.setInputAction(() => finish(), Cesium.ScreenSpaceEventType.RIGHT_CLICK);

function finish() {
  const d = drawing;
  drawing = null;
  if (!d) return;
  if (d.kind === "pit" && d.points.length >= 3) run(excavate(d.points, Number($("ug-depth").value)));
  else if (d.kind === "line" && d.points.length >= 2) run(section(d.points));
  else if (d.kind === "profile" && d.points.length === 2) run(profile(d.points[0], d.points[1]));
  else say(t("ugTooFew"));
}

function start(kind) {
  drawing = { kind, points: [] };
  say(t(kind === "profile" ? "ugPickManholes" : "ugDrawHint"));
}

$("ug-pit").addEventListener("click", () => start("pit"));
$("ug-line").addEventListener("click", () => start("line"));
$("ug-profile").addEventListener("click", () => start("profile"));
$("ug-clear").addEventListener("click", clearShapes);
cim.underground = { excavate, section, profile, clear: clearShapes };

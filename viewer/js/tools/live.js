// Live monitoring: sensors and their assets (manhole, segment, building) coloured by state (normal,
// warning, alarm, offline), the open alarms with acknowledge, and a 24 h chart of a clicked sensor; kept
// current by the server-sent events stream.
import { api } from "../http.js";
import { t } from "../i18n.js";
import { $, cim, state } from "../state.js";
import { drawChart } from "./live-chart.js";

const COLOURS = { normal: "#2e9d4b", warning: "#f2b01e", alarm: "#e0312b", critical: "#9b0d8c", offline: "#8a8f98",
                  unknown: "#cfd3d8" };
const live = (cim.live = { sensors: new Map(), alarms: [], events: 0, hovered: null, picked: null });
// A sensor's code is drawn only while it needs attention or the pointer is on it (or it was clicked):
// always-on labels clutter the other tools' views.
const LABELLED = new Set(["warning", "alarm", "critical", "offline"]);
const HOVER_PICK_MS = 100;
const MANHOLE_GRANULARITY = Cesium.Math.toRadians(10);

function colourOf(s) {
  return Cesium.Color.fromCssColorString(COLOURS[s] || COLOURS.unknown);
}

// Which state an asset with several sensors shows: the worst of them.
const RANK = { unknown: 0, normal: 1, offline: 2, warning: 3, alarm: 4, critical: 5 };

function assetState(assetId) {
  let worst = "unknown";
  for (const o of live.sensors.values()) {
    if (o.asset_id === assetId && (RANK[o.state] ?? 0) > RANK[worst]) worst = o.state;
  }
  return worst;
}

// The sensor's asset drawn in the scene in its state's colour: a manhole or node as a short cylinder at
// the surface, a segment as a line, a building as its footprint raised to its height.
function assetGraphics(s, colour) {
  const g = s.asset_geometry;
  const fill = colour.withAlpha(0.85);
  if (g.type === "Point") {
    // 36 sides: at CesiumJS's default granularity (1 degree) each cylinder was 1,340 triangles, and the
    // demo's were as many as all its buildings in a frame
    return { position: Cesium.Cartesian3.fromDegrees(g.coordinates[0], g.coordinates[1], 0),
             ellipse: { semiMajorAxis: 3, semiMinorAxis: 3, height: 0.3, extrudedHeight: 2.5, material: colour,
                        granularity: MANHOLE_GRANULARITY, outline: true, outlineColor: Cesium.Color.WHITE } };
  }
  const lines = g.type === "LineString" ? [g.coordinates] : g.type === "MultiLineString" ? g.coordinates : null;
  if (lines) {
    return { polyline: { positions: Cesium.Cartesian3.fromDegreesArray(lines[0].flat()), width: 8, material: fill,
                         depthFailMaterial: fill } };
  }
  const ring = g.type === "Polygon" ? g.coordinates[0] : g.type === "MultiPolygon" ? g.coordinates[0][0] : null;
  if (!ring) return null;
  const low = s.asset_zmin ?? 0;
  return { polygon: { hierarchy: Cesium.Cartesian3.fromDegreesArray(ring.flat()), height: 0,
                      extrudedHeight: Math.max(3, (s.asset_zmax ?? low + 10) - low), material: colour.withAlpha(0.6),
                      outline: true, outlineColor: colour } };
}

function showAsset(s) {
  const viewer = cim.viewer;
  if (!viewer || s.asset_id == null || !s.asset_geometry) return;
  const id = `asset-${s.asset_id}`;
  const state = assetState(s.asset_id);
  const old = viewer.entities.getById(id);
  if (old && old.cimState === state) return;
  if (old) viewer.entities.remove(old);
  const graphics = assetGraphics(s, colourOf(state));
  if (!graphics) return;
  const e = viewer.entities.add({ id, name: s.asset_key || id, ...graphics });
  e.cimSensor = s.code;
  e.cimState = state;
  renderWhenDrawn(viewer);
}

// Entity geometry is built in web workers: in request-render mode, draw again once it is ready.
function renderWhenDrawn(viewer) {
  viewer.scene.requestRender();
  if (!viewer.dataSourceDisplay.ready) setTimeout(() => renderWhenDrawn(viewer), 100);
}

function showSensor(s) {
  const viewer = cim.viewer;
  if (!viewer || s.lon == null) return;
  const at = Cesium.Cartesian3.fromDegrees(s.lon, s.lat, 2);
  let e = viewer.entities.getById(`sensor-${s.code}`);
  if (!e) {
    e = viewer.entities.add({ id: `sensor-${s.code}`, position: at,
      point: { pixelSize: 14, outlineColor: Cesium.Color.WHITE, outlineWidth: 2,
               disableDepthTestDistance: Number.POSITIVE_INFINITY },
      label: { text: s.code, font: "12px sans-serif", pixelOffset: new Cesium.Cartesian2(0, -18),
               disableDepthTestDistance: Number.POSITIVE_INFINITY, showBackground: true } });
    e.cimSensor = s.code;
  }
  e.point.color = colourOf(s.state);
  e.label.show = LABELLED.has(s.state) || s.code === live.hovered || s.code === live.picked;
  showAsset(s);
  viewer.scene.requestRender();
}

function renderAlarms() {
  const list = $("live-alarms");
  list.replaceChildren();
  for (const a of live.alarms) {
    const li = document.createElement("li");
    li.className = `alarm-${a.level}`;
    const text = document.createElement("span");
    text.textContent = `${a.sensor} · ${a.rule} · ${a.level} · ${a.status}`; // server strings as text only
    li.append(text);
    if (a.status !== "acknowledged") {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = t("acknowledge");
      b.addEventListener("click", () => acknowledge(a.id));
      li.append(b);
    }
    li.addEventListener("click", () => showChart(a.sensor));
    list.append(li);
  }
  $("live-alarms-none").hidden = live.alarms.length > 0;
}

async function acknowledge(id) {
  const res = await fetch(`/api/alarms/${id}/acknowledge`, {
    method: "POST", headers: { "X-API-Key": state.key, "content-type": "application/json" },
    body: JSON.stringify({ note: "viewer" }) });
  $("live-status").textContent = res.ok ? "" : `${t("loadFailed")} (${res.status})`;
  await loadAlarms();
}

async function loadAlarms() {
  if (!live.alarmsReadable) {
    // the API said this caller may not read alarms: no request, no 401/403 in the console
    live.alarms = [];
    $("live-status").textContent = t("alarmsNeedKey");
    renderAlarms();
    return;
  }
  try {
    live.alarms = (await api("/api/alarms?status=open")).alarms;
    $("live-status").textContent = "";
  } catch (e) {
    live.alarms = [];
    $("live-status").textContent = e.status === 401 || e.status === 403 ? t("alarmsNeedKey") : t("loadFailed");
  }
  renderAlarms();
}

async function loadSensors() {
  const { sensors, alarms_readable: readable } = await api("/api/monitor/sensors");
  live.alarmsReadable = readable;
  for (const s of sensors) {
    live.sensors.set(s.code, s);
    showSensor(s);
  }
}

async function showChart(code) {
  $("live-chart-title").textContent = code;
  const series = await api(`/api/monitor/sensors/${encodeURIComponent(code)}/series?hours=24`);
  $("live-chart").removeAttribute("hidden");  // an empty chart stays out of the panel until a sensor is picked
  drawChart($("live-chart"), series);
}

function listen() {
  const src = new EventSource(`/api/monitor/stream${state.key ? `?key=${encodeURIComponent(state.key)}` : ""}`);
  src.addEventListener("state", (ev) => {
    const msg = JSON.parse(ev.data);
    const s = live.sensors.get(msg.sensor);
    live.events += 1;
    if (s) {
      s.state = msg.state;
      showSensor(s);
    }
  });
  src.addEventListener("alarm", () => {
    live.events += 1;
    loadAlarms();
  });
  return src;
}

function sensorAt(position) {
  const picked = cim.viewer.scene.pick(position);
  return (picked && picked.id && picked.id.cimSensor) || null;
}

// Moves the hover or pick mark (`which`) to `code` and redraws the labels of the sensors it left and reached.
function mark(which, code) {
  const was = live[which];
  if (was === code) return;
  live[which] = code;
  for (const c of [was, code]) if (c && live.sensors.has(c)) showSensor(live.sensors.get(c));
}

function onPick(movement) {
  const code = sensorAt(movement.position);
  mark("picked", code);
  if (code) showChart(code);
}

// Picking renders the scene: at most once per HOVER_PICK_MS, at the pointer's latest position.
let hoverAt = null;
function onHover(movement) {
  const pending = hoverAt !== null;
  hoverAt = Cesium.Cartesian2.clone(movement.endPosition);
  if (pending) return;
  setTimeout(() => {
    const at = hoverAt;
    hoverAt = null;
    mark("hovered", sensorAt(at));
  }, HOVER_PICK_MS);
}

export async function startLive() {
  await loadSensors();
  await loadAlarms();
  live.stream = listen();
  const handler = new Cesium.ScreenSpaceEventHandler(cim.viewer.scene.canvas);
  handler.setInputAction(onPick, Cesium.ScreenSpaceEventType.LEFT_CLICK);
  handler.setInputAction(onHover, Cesium.ScreenSpaceEventType.MOUSE_MOVE);
  live.ready = true;
}

// Water supply tool: click a water main to isolate a burst (the valves to close as markers, seized or
// missing valves flagged, the isolated and cut-off pipes, the buildings left without water tinted, and the
// lists), or colour the mains by their renewal year or criticality, through the OGC API processes
// burst-isolation, renewal-programme and pipe-criticality. Server strings reach the page by textContent.
import { api, runProcess } from "../http.js";
import { STRINGS, t } from "../i18n.js";
import { scene } from "../scene.js";
import { $, cim, state } from "../state.js";
import { highlights, restyle } from "../style.js";

Object.assign(STRINGS.zh, {
  water: "供水",
  isolateMode: "点击水管模拟爆管关阀",
  renewalByYear: "老旧管网更新计划（按年份）",
  criticalityMap: "管段关键性（停水范围）",
  valvesToClose: "需关闭阀门",
  badValves: "失效阀门（锈死/缺失）",
  dryBuildings: "停水建筑",
  isolatedPipes: "隔离管段",
  cutOffPipes: "连带停水管段",
  status: "状态",
  isolated: (v, p, b, q) => `关闭 ${v} 个阀门，隔离 ${p} 段管线，${b} 栋建筑停水，需水量 ${q} L/s`,
  renewalDone: (km, n) => `计划更新 ${km} km，${n} 段`,
  criticalityDone: (n) => `${n} 段管线，按停水长度着色`,
  outOfService: "停水长度",
  targetKm: "更新目标",
});
Object.assign(STRINGS.en, {
  water: "Water supply",
  isolateMode: "click a water main to isolate a burst",
  renewalByYear: "Old-mains renewal programme (by year)",
  criticalityMap: "Pipe criticality (out of service)",
  valvesToClose: "Valves to close",
  badValves: "Inoperable valves (seized / missing)",
  dryBuildings: "Buildings without water",
  isolatedPipes: "Isolated pipes",
  cutOffPipes: "Pipes cut off with them",
  status: "status",
  isolated: (v, p, b, q) => `close ${v} valves; ${p} pipes isolated, ${b} buildings without water, ${q} L/s`,
  renewalDone: (km, n) => `${km} km planned, ${n} mains`,
  criticalityDone: (n) => `${n} mains coloured by the length a burst takes out of service`,
  outOfService: "out of service",
  targetKm: "Renewal target",
});
// Apart from the CJJ 61 utility colours and the brick of the buildings.
const COLOURS = { burst: "#ff1744", isolated: "#ff9100", cutOff: "#ffd600", close: "#00e676", bad: "#d500f9",
                  dry: "#2962ff" };
const YEARS = ["#d50000", "#ff6d00", "#ffd600", "#00c853", "#2979ff", "#aa00ff"];
const RAMP = ["#1a9850", "#91cf60", "#fee08b", "#fc8d59", "#d73027"];
const LIFT_M = 1.5; // lines drawn just above the ground layer, which is translucent underground
let isolating = false;
let markers = [];
let pipeLines = null; // object id -> [[lon, lat], ...] of every water main, read once from the features API

const say = (text) => ($("water-status").textContent = text);

function clearMarks() {
  markers.forEach((e) => cim.viewer.entities.remove(e));
  markers = [];
  highlights.clear();
  state.tints = new Map();
  $("water-result").replaceChildren();
  $("water-legend").replaceChildren();
}

async function act(work) {
  say("…");
  try {
    clearMarks();
    say(await work());
  } catch (e) {
    say(String(e.message || e));
  }
  restyle();
}

function paint(ids, colour) {
  for (const id of ids || []) highlights.set(Number(id), colour);
}

const shortKey = (key) => String(key).split(/[\s:]/).pop(); // "node JSN000052" -> "JSN000052"

function marker(v, colour, flagged) {
  markers.push(cim.viewer.entities.add({
    position: Cesium.Cartesian3.fromDegrees(v.lon, v.lat, 0),
    point: { pixelSize: flagged ? 16 : 13, color: Cesium.Color.fromCssColorString(colour),
             outlineColor: flagged ? Cesium.Color.WHITE : Cesium.Color.BLACK, outlineWidth: 2,
             disableDepthTestDistance: Number.POSITIVE_INFINITY },
    label: { text: flagged ? `⚠ ${shortKey(v.key)} (${v.status})` : shortKey(v.key), font: "12px sans-serif",
             fillColor: Cesium.Color.WHITE, outlineColor: Cesium.Color.BLACK, outlineWidth: 3, style: Cesium.LabelStyle.FILL_AND_OUTLINE,
             pixelOffset: new Cesium.Cartesian2(0, -16), disableDepthTestDistance: Number.POSITIVE_INFINITY },
  }));
}

function line(coords, colour, width) {
  const material = Cesium.Color.fromCssColorString(colour);
  markers.push(cim.viewer.entities.add({
    polyline: { positions: Cesium.Cartesian3.fromDegreesArrayHeights(coords.flatMap((c) => [c[0], c[1], LIFT_M])),
                width, arcType: Cesium.ArcType.NONE,
                material, depthFailMaterial: material },
  }));
}

// The mains as lines over the tiles: a 3D pipe is thinner than a pixel at a district's scale. Read again
// when an id is missing (a renewal makes a new version of a main).
async function waterLines(ids) {
  if (pipeLines && ids.every((id) => pipeLines.has(id))) return pipeLines;
  const out = new Map();
  let url = "/api/collections/pipes_water/items?limit=5000";
  while (url) {
    const page = await api(url);
    for (const f of page.features) out.set(Number(f.id), f.geometry.coordinates.map((c) => [c[0], c[1]]));
    const next = (page.links || []).find((l) => l.rel === "next");
    url = next ? next.href : null;
  }
  return (pipeLines = out);
}

async function drawPipes(colours) {
  const lines = await waterLines([...colours.keys()]);
  for (const [id, colour] of colours) if (lines.has(id)) line(lines.get(id), colour, 3);
}

function list(titleKey, colour, rows) {
  const h = document.createElement("h3");
  h.textContent = `${t(titleKey)} (${rows.length})`;
  h.style.borderLeft = `12px solid ${colour}`;
  h.style.paddingLeft = "4px";
  const ul = document.createElement("ul");
  for (const r of rows.slice(0, 30)) {
    const li = document.createElement("li");
    li.textContent = r;
    ul.append(li);
  }
  if (rows.length > 30) ul.append(Object.assign(document.createElement("li"), { textContent: "…" }));
  $("water-result").append(h, ul);
}

export async function isolate(pipe) {
  await act(async () => {
    const r = (await runProcess("burst-isolation", { pipe: Number(pipe) })).isolation;
    paint(r.cut_off.pipes, COLOURS.cutOff);
    paint(r.isolated.pipes, COLOURS.isolated);
    paint([r.pipe.id], COLOURS.burst);
    paint(r.valves_to_close.map((v) => v.id), COLOURS.close);
    paint(r.inoperable_valves.map((v) => v.id), COLOURS.bad);
    r.lines.cut_off.forEach((c) => line(c, COLOURS.cutOff, 4));
    r.lines.isolated.forEach((c) => line(c, COLOURS.isolated, 5));
    r.valves_to_close.forEach((v) => marker(v, COLOURS.close, false));
    r.inoperable_valves.forEach((v) => marker(v, COLOURS.bad, true));
    const dry = [...r.isolated.buildings, ...r.cut_off.buildings];
    state.tints = new Map(dry.map((id) => [id, COLOURS.dry]));
    list("valvesToClose", COLOURS.close, r.valves_to_close.map((v) => v.key));
    list("badValves", COLOURS.bad, r.inoperable_valves.map((v) => `⚠ ${v.key}: ${v.status}`));
    list("dryBuildings", COLOURS.dry, dry.map(String));
    list("isolatedPipes", COLOURS.isolated, r.isolated.pipes.map(String));
    if (r.cut_off.pipes.length) list("cutOffPipes", COLOURS.cutOff, r.cut_off.pipes.map(String));
    cim.water.last = r;
    const ls = ((r.isolated.demand_m3s + r.cut_off.demand_m3s) * 1000).toFixed(2);
    return t("isolated")(r.valves_to_close.length, r.isolated.pipes.length, dry.length, ls);
  });
}

function legend(entries) {
  const box = $("water-legend");
  for (const [colour, text] of entries) {
    const row = document.createElement("div");
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.cssText = `display:inline-block;width:14px;height:10px;margin-right:6px;background:${colour}`;
    row.append(sw, text);
    box.append(row);
  }
}

export async function renewal() {
  await act(async () => {
    const km = Number($("water-target").value);
    const p = (await runProcess("renewal-programme", km > 0 ? { target_km: km } : {})).programme;
    const colour = Object.fromEntries(p.years.map((y, i) => [y.year, YEARS[i % YEARS.length]]));
    for (const pipe of p.pipes) highlights.set(pipe.id, colour[pipe.year]);
    await drawPipes(highlights);
    legend(p.years.map((y) => [colour[y.year], `${y.year}: ${y.km.toFixed(2)} km, ${y.pipes}`]));
    cim.water.last = p;
    return t("renewalDone")(p.planned_km.toFixed(2), p.pipes.length);
  });
}

export async function criticality() {
  await act(async () => {
    const c = (await runProcess("pipe-criticality", {})).criticality;
    const values = c.by_pipe.map((p) => p.out_of_service_m).sort((a, b) => a - b);
    const breaks = [0.2, 0.4, 0.6, 0.8].map((q) => values[Math.floor(q * (values.length - 1))]);
    const cls = (v) => breaks.filter((b) => v > b).length;
    for (const p of c.by_pipe) highlights.set(p.id, RAMP[cls(p.out_of_service_m)]);
    await drawPipes(highlights);
    const edges = [0, ...breaks, values[values.length - 1]];
    legend(RAMP.map((col, i) => [col, `${t("outOfService")} ${edges[i].toFixed(0)}–${edges[i + 1].toFixed(0)} m`]));
    cim.water.last = c;
    return t("criticalityDone")(c.by_pipe.length);
  });
}

// An element with properties (dataset entries under `data`) and children.
function el(tag, props = {}, ...children) {
  const { data, ...rest } = props;
  const node = Object.assign(document.createElement(tag), rest);
  Object.assign(node.dataset, data || {});
  node.append(...children);
  return node;
}

const labelled = (key, tag = "span", props = {}) => el(tag, { ...props, data: { i18n: key }, textContent: t(key) });

function panel() {
  const box = el("input", { type: "checkbox", id: "water-isolate" });
  box.addEventListener("change", () => (isolating = box.checked));
  const actions = [["renewalByYear", renewal], ["criticalityMap", criticality],
                   ["clearMarks", () => { clearMarks(); restyle(); say(""); }]];
  const buttons = actions.map(([key, onClick]) => {
    const b = labelled(key, "button", { type: "button" });
    b.addEventListener("click", onClick);
    return b;
  });
  const target = el("input", { type: "number", id: "water-target", min: "0", step: "any", placeholder: "144.34" });
  target.style.width = "6em";
  $("status").before(el("section", { id: "water" }, labelled("water", "h2"),
    el("label", {}, box, " ", labelled("isolateMode")), el("label", {}, labelled("targetKm"), " ", target, " km"),
    ...buttons,
    el("p", { id: "water-status", className: "muted" }), el("div", { id: "water-legend" }),
    el("div", { id: "water-result" })));
}

panel();
cim.water = { isolate, renewal, criticality, last: null, markers: () => markers.length };

new Cesium.ScreenSpaceEventHandler(scene.canvas).setInputAction((click) => {
  if (!isolating) return;
  const picked = scene.pick(click.position);
  if (!(picked instanceof Cesium.Cesium3DTileFeature)) return;
  if (picked.getProperty("class") !== "pipe_segment" || picked.getProperty("utility") !== "water") return;
  isolate(picked.getProperty("id"));
}, Cesium.ScreenSpaceEventType.LEFT_CLICK);

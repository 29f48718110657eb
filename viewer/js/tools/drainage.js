// Drainage tool: trace a clicked pipe up- and downstream, show misconnections and the manholes that flood in
// a design storm, by colouring pipes and manholes through the OGC API processes (drainage-*).
import { STRINGS, t } from "../i18n.js";
import { scene } from "../scene.js";
import { $, cim, state } from "../state.js";
import { highlights, restyle } from "../style.js";
import { layerControls, showCatchment, showGrades, showWaterlogging } from "./drainage-layers.js";

Object.assign(STRINGS.zh, {
  drainage: "排水",
  traceMode: "点击管线追踪上下游",
  upstream: "上游",
  downstream: "下游",
  misconnections: "错接混接检查",
  storm: "设计暴雨（3 年一遇，120 分钟）",
  clearMarks: "清除标注",
  working: "计算中…",
  traced: (u, d) => `上游 ${u} 段，下游 ${d} 段`,
  found: (n) => `发现 ${n} 处错接混接`,
  flooded: (n) => `${n} 个检查井冒溢`,
});
Object.assign(STRINGS.en, {
  drainage: "Drainage",
  traceMode: "click a pipe to trace up- and downstream",
  upstream: "upstream",
  downstream: "downstream",
  misconnections: "Find misconnections",
  storm: "Design storm (3-year, 120 min)",
  clearMarks: "Clear marks",
  working: "working…",
  traced: (u, d) => `${u} pipes upstream, ${d} downstream`,
  found: (n) => `${n} misconnections found`,
  flooded: (n) => `${n} manholes flood`,
});
// Apart from the CJJ 61 utility colours (cyan, brown, magenta, orange, red, green, purple).
const COLOURS = { up: "#2962ff", down: "#ffee00", start: "#ff80ab", mis: "#ff80ab", related: "#ffee00",
                  flood: "#2962ff" };
let tracing = false;

async function run(process, inputs) {
  const res = await fetch(`/api/processes/${process}/execution`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...(state.key ? { "X-API-Key": state.key } : {}) },
    body: JSON.stringify({ inputs }),
  });
  const body = await res.json();
  if (!res.ok) throw new Error(body.detail || `HTTP ${res.status}`);
  return body;
}

function mark(ids, colour) {
  for (const id of ids || []) highlights.set(Number(id), colour);
}

function say(text) {
  $("drainage-status").textContent = text;
}

async function act(work) {
  say(t("working"));
  try {
    say(await work());
  } catch (e) {
    say(String(e.message || e));
  }
  restyle();
}

export async function traceSegment(id) {
  await act(async () => {
    const r = await run("drainage-trace", { segment: Number(id), direction: "both" });
    highlights.clear();
    mark(r.upstream.segments, COLOURS.up);
    mark(r.upstream.nodes, COLOURS.up);
    mark(r.downstream.segments, COLOURS.down);
    mark(r.downstream.nodes, COLOURS.down);
    mark([r.start.id], COLOURS.start);
    cim.drainage.last = r;
    return t("traced")(r.upstream.segments.length, r.downstream.segments.length);
  });
}

export async function misconnections() {
  await act(async () => {
    const r = await run("drainage-misconnections", {});
    highlights.clear();
    mark(r.objects.map((o) => o.related_id).filter((i) => i !== null), COLOURS.related);
    mark(r.objects.map((o) => o.object_id), COLOURS.mis);
    cim.drainage.last = r;
    return t("found")(r.objects.length);
  });
}

export async function storm(dataset) {
  await act(async () => {
    const r = await run("drainage-storm", { dataset, return_period: 3, duration_min: 120 });
    highlights.clear();
    mark(r.flooded, COLOURS.flood);
    cim.drainage.last = r;
    return t("flooded")(r.flooded.length);
  });
}

function clear() {
  highlights.clear();
  state.highlighted = [];
  $("drainage-grades").value = "off";
  showGrades("off", run);
  say("");
}

function button(key, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.dataset.i18n = key;
  b.textContent = t(key);
  b.addEventListener("click", onClick);
  return b;
}

function panel() {
  const sec = document.createElement("section");
  sec.id = "drainage";
  const h = document.createElement("h2");
  h.dataset.i18n = "drainage";
  h.textContent = t("drainage");
  const label = document.createElement("label");
  const box = document.createElement("input");
  box.type = "checkbox";
  box.id = "drainage-trace";
  box.addEventListener("change", () => (tracing = box.checked));
  const span = document.createElement("span");
  span.dataset.i18n = "traceMode";
  span.textContent = t("traceMode");
  label.append(box, " ", span);
  const status = document.createElement("p");
  status.id = "drainage-status";
  status.className = "muted";
  sec.append(h, label, button("misconnections", misconnections),
             button("storm", () => storm(cim.drainage.dataset || "sample-pipes")),
             button("clearMarks", clear), ...layerControls(act, run), status);
  $("status").before(sec);
}

panel();
cim.drainage = { traceSegment, misconnections, storm, highlights, dataset: null, last: null,
                 grades: (mode) => act(() => showGrades(mode, run)),
                 catchment: (node) => act(() => showCatchment(node, run)),
                 waterlogging: (on) => act(() => showWaterlogging(on)) };

new Cesium.ScreenSpaceEventHandler(scene.canvas).setInputAction((click) => {
  if (!tracing && !cim.drainageLayers.catchment) return;
  const picked = scene.pick(click.position);
  if (!(picked instanceof Cesium.Cesium3DTileFeature)) return;
  const cls = picked.getProperty("class");
  if (cim.drainageLayers.catchment && cls === "pipe_node") cim.drainage.catchment(picked.getProperty("id"));
  else if (tracing && cls === "pipe_segment") traceSegment(picked.getProperty("id"));
}, Cesium.ScreenSpaceEventType.LEFT_CLICK);

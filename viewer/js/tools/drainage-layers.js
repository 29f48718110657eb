// Drainage layers of the drainage tool: pipes coloured by their CCTV condition grade (structural or
// functional, CJJ 181-2012) with a legend and the defects as markers along the pipes; a manhole's catchment;
// the waterlogging risk points (the flooding manholes of the latest design storm). HTTP: /api/drainage/*
// and the drainage-* processes.
import { api } from "../http.js";
import { STRINGS, t } from "../i18n.js";
import { $, cim, state } from "../state.js";
import { highlights, restyle } from "../style.js";

Object.assign(STRINGS.zh, {
  gradeBy: "管段等级着色",
  gradeOff: "不着色",
  structural: "结构性缺陷等级",
  functional: "功能性缺陷等级",
  gradeLegend: ["Ⅰ 级", "Ⅱ 级", "Ⅲ 级", "Ⅳ 级"],
  defectsShown: (p, d) => `${p} 段已检测管道，${d} 处缺陷`,
  catchmentMode: "点击检查井显示汇水范围",
  catchmentOf: (k, s, b, p) => `${k} 汇水范围：${s} 段管道，${b} 栋建筑，${p} 个地块`,
  waterlogging: "易涝积水点（最近一次设计暴雨）",
  waterlogged: (n) => `${n} 个易涝积水点`,
  noStorm: "尚无设计暴雨计算结果",
});
Object.assign(STRINGS.en, {
  gradeBy: "Colour pipes by grade",
  gradeOff: "off",
  structural: "structural grade",
  functional: "functional grade",
  gradeLegend: ["grade I", "grade II", "grade III", "grade IV"],
  defectsShown: (p, d) => `${p} inspected pipes, ${d} defects`,
  catchmentMode: "click a manhole to show its catchment",
  catchmentOf: (k, s, b, p) => `catchment of ${k}: ${s} pipes, ${b} buildings, ${p} parcels`,
  waterlogging: "Waterlogging points (latest design storm)",
  waterlogged: (n) => `${n} waterlogging points`,
  noStorm: "no design storm has run yet",
});
// Condition grades I-IV: a green-to-red scale (grade I no action, IV urgent, CJJ 181-2012 ch. 8).
export const GRADE_COLOURS = ["#1b9e4b", "#ffd21f", "#ff7f00", "#d7191c"];
const CATCHMENT = "#2962ff"; // what drains to the manhole: the trace's upstream blue
const WATER = "#0d47a1";
const layer = (cim.drainageLayers = { grades: null, defects: null, mode: "off", catchment: false, water: null });

function entities(prefix) {
  const v = cim.viewer;
  for (const e of v.entities.values.filter((x) => String(x.id).startsWith(prefix))) v.entities.remove(e);
  return v.entities;
}

function point(id, [lon, lat, z], css, size, text) {
  const at = Cesium.Cartesian3.fromDegrees(lon, lat, z || 0);
  return { id, position: at, point: { pixelSize: size, color: Cesium.Color.fromCssColorString(css),
    outlineColor: Cesium.Color.WHITE, outlineWidth: 1, disableDepthTestDistance: Number.POSITIVE_INFINITY },
    ...(text ? { label: { text, font: "12px sans-serif", pixelOffset: new Cesium.Cartesian2(0, -16),
      showBackground: true, disableDepthTestDistance: Number.POSITIVE_INFINITY,
      distanceDisplayCondition: new Cesium.DistanceDisplayCondition(0, 800) } } : {}) };
}

function legend(mode) {
  const box = $("drainage-legend");
  box.replaceChildren();
  if (mode === "off") return;
  GRADE_COLOURS.forEach((c, i) => {
    const item = document.createElement("span");
    item.className = "legend-item";
    const sw = document.createElement("i");
    sw.style.cssText = `display:inline-block;width:14px;height:8px;margin:0 4px 0 8px;background:${c}`;
    item.append(sw, t("gradeLegend")[i]);
    box.append(item);
  });
}

// Colour the inspected pipes by the chosen grade; show their defects (of the same kind) along them.
export async function showGrades(mode, run) {
  layer.mode = mode;
  highlights.clear();
  entities("defect-");
  legend(mode);
  if (mode === "off") { restyle(); return t("gradeOff"); }
  if (!layer.grades) {
    await run("drainage-inspection-grade", {});
    [layer.grades, layer.defects] = await Promise.all([api("/api/drainage/grades"), api("/api/drainage/defects")]);
  }
  const key = mode === "structural" ? "structural_grade" : "functional_grade";
  for (const [id, g] of Object.entries(layer.grades.segments)) highlights.set(Number(id), GRADE_COLOURS[g[key] - 1]);
  const own = layer.defects.features.filter((f) => f.properties.kind === mode);
  const ents = entities("defect-");
  for (const f of own) {
    const p = f.properties;
    ents.add(point(`defect-${f.id}`, f.geometry.coordinates, GRADE_COLOURS[p.grade - 1], 9,
                   `${p.code}${p.grade} ${p.position_m} m`));
  }
  restyle();
  return t("defectsShown")(Object.keys(layer.grades.segments).length, own.length);
}

export async function showCatchment(node, run) {
  const r = (await run("drainage-catchment", { node: Number(node) })).catchment;
  if (layer.mode !== "off") { // the grade colours and defects give way
    $("drainage-grades").value = "off";
    await showGrades("off", run);
  }
  highlights.clear();
  for (const id of [...r.segments, ...r.nodes]) highlights.set(Number(id), CATCHMENT);
  highlights.set(Number(r.node.id), "#ff80ab");
  state.highlighted = [...r.buildings, ...r.parcels]; // the buildings and parcels it drains, in every layer
  cim.drainage.last = r;
  restyle();
  return t("catchmentOf")(r.node.key, r.segments.length, r.buildings.length, r.parcels.length);
}

export async function showWaterlogging(on) {
  const ents = entities("waterlogging-");
  if (!on) { layer.water = null; cim.viewer.scene.requestRender(); return ""; }
  try {
    layer.water = await api("/api/drainage/waterlogging");
  } catch (e) {
    if (e.status === 404) return t("noStorm");
    throw e;
  }
  for (const f of layer.water.features) {
    const v = f.properties.flooding_m3;
    ents.add(point(`waterlogging-${f.id}`, f.geometry.coordinates, WATER, Math.min(26, 10 + Math.sqrt(v) / 2),
                   `${f.properties.key.replace(/^node:/, "")} ${v.toFixed(0)} m³`));
  }
  cim.viewer.scene.requestRender();
  return t("waterlogged")(layer.water.features.length);
}

function row(...children) {
  const label = document.createElement("label");
  label.append(...children);
  return label;
}

function text(key) {
  const span = document.createElement("span");
  span.dataset.i18n = key;
  span.textContent = t(key);
  return span;
}

// The controls, appended to the drainage section; act(work) shows work's answer in the status line.
export function layerControls(act, run) {
  const select = document.createElement("select");
  select.id = "drainage-grades";
  for (const key of ["gradeOff", "structural", "functional"]) {
    const o = document.createElement("option");
    o.value = key === "gradeOff" ? "off" : key;
    o.dataset.i18n = key;
    o.textContent = t(key);
    select.append(o);
  }
  select.addEventListener("change", () => act(() => showGrades(select.value, run)));
  const box = document.createElement("input");
  box.type = "checkbox";
  box.id = "drainage-catchment";
  box.addEventListener("change", () => (layer.catchment = box.checked));
  const water = document.createElement("input");
  water.type = "checkbox";
  water.id = "drainage-waterlogging";
  water.addEventListener("change", () => act(() => showWaterlogging(water.checked)));
  const leg = document.createElement("div");
  leg.id = "drainage-legend";
  leg.className = "muted";
  return [row(text("gradeBy"), " ", select), leg, row(box, " ", text("catchmentMode")),
          row(water, " ", text("waterlogging"))];
}

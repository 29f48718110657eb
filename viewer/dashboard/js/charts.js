// ECharts (vendored from npm, served at /echarts): the units map, year-on-year and per-unit charts.
import * as echarts from "/echarts/echarts.esm.min.mjs";
import { fmt } from "./cards.js";
import { t, ui } from "./i18n.js";

const charts = new Map();

function chart(box) {
  if (!charts.has(box.id)) charts.set(box.id, echarts.init(box));
  return charts.get(box.id);
}

const label = (ind) => `${ui.lang === "zh" ? ind.name_zh : ind.name_en} (${ind.unit})`;

function unitsOf(fc, ind, level) {
  return fc.features.filter((f) => f.properties.indicator === ind.id && f.properties.level === level);
}

export function renderMap(box, fc, ind, level) {
  const units = unitsOf(fc, ind, level).filter((f) => f.geometry);
  echarts.registerMap("units", { type: "FeatureCollection", features: units.map((f) => ({
    type: "Feature", geometry: f.geometry, properties: { name: f.properties.unit_name || f.properties.unit_key } })) });
  const values = units.map((f) => f.properties.value).filter((v) => v !== null);
  chart(box).setOption({
    tooltip: { trigger: "item", formatter: (p) => `${p.name}: ${fmt(Number.isFinite(p.value) ? p.value : null)}` },
    visualMap: { min: Math.min(0, ...values), max: Math.max(1, ...values), calculable: true, right: 0, bottom: 0,
      inRange: { color: ["#d9534f", "#f0ad4e", "#2e8b57"] }, text: [ind.unit, ""] },
    series: [{ type: "map", map: "units", roam: true, label: { show: units.length <= 30, fontSize: 10 },
      data: units.map((f) => ({ name: f.properties.unit_name || f.properties.unit_key, value: f.properties.value })) }],
  }, true);
}

export function renderTrend(box, series, ind) {
  chart(box).setOption({
    tooltip: { trigger: "axis" }, grid: { left: 50, right: 20, top: 30, bottom: 30 },
    xAxis: { type: "category", data: series.map((s) => s[0]) }, yAxis: { type: "value", name: ind.unit },
    series: [{ type: "line", name: label(ind), data: series.map((s) => s[1]), connectNulls: false,
      markLine: ind.target === null ? undefined : { data: [{ yAxis: ind.target, name: t("target") }] } }],
  }, true);
}

export function renderByUnit(box, fc, ind, level) {
  const units = unitsOf(fc, ind, level);
  chart(box).setOption({
    tooltip: { trigger: "axis" }, grid: { left: 50, right: 20, top: 30, bottom: 70 },
    xAxis: { type: "category", data: units.map((f) => f.properties.unit_name || f.properties.unit_key),
      axisLabel: { rotate: 40, fontSize: 10 } },
    yAxis: { type: "value", name: ind.unit },
    series: [{ type: "bar", name: label(ind), data: units.map((f) => ({ value: f.properties.value,
      itemStyle: { color: f.properties.passes === false ? "#d9534f" : "#2e8b57" } })),
    markLine: ind.target === null ? undefined : { data: [{ yAxis: ind.target, name: t("target") }] } }],
  }, true);
}

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

const rings = (g) => (g.type === "Polygon" ? [g.coordinates] : g.type === "MultiPolygon" ? g.coordinates : [])
  .map((poly) => poly[0]);

// The units coloured by the indicator (a geo component and a map series on it); for a coverage indicator
// the service areas of its facilities (straight-line radius, translucent) and the facilities on top.
export function renderMap(box, fc, ind, level, areas, onPick) {
  const units = unitsOf(fc, ind, level).filter((f) => f.geometry);
  echarts.registerMap("units", { type: "FeatureCollection", features: units.map((f) => ({
    type: "Feature", geometry: f.geometry, properties: { name: f.properties.unit_name || f.properties.unit_key } })) });
  const values = units.map((f) => f.properties.value).filter((v) => v !== null);
  const zones = (areas?.features ?? []).filter((f) => f.properties.kind === "area");
  const spots = (areas?.features ?? []).filter((f) => f.properties.kind === "facility");
  const series = [{ type: "map", geoIndex: 0, name: label(ind),
    data: units.map((f) => ({ name: f.properties.unit_name || f.properties.unit_key, value: f.properties.value })) }];
  if (zones.length) {
    const outlines = zones.flatMap((f) => rings(f.geometry));
    series.push({ type: "custom", coordinateSystem: "geo", name: t("serviceArea"), silent: true, z: 3,
      itemStyle: { color: "rgba(30, 110, 200, 0.45)" },
      data: outlines.map((r) => r[0]),
      renderItem: (params, api) => ({ type: "polygon", shape: { points: outlines[params.dataIndex].map((q) => api.coord(q)) },
        style: { fill: "rgba(30, 110, 200, 0.16)", stroke: "rgba(30, 110, 200, 0.8)", lineWidth: 1 } }) });
    series.push({ type: "scatter", coordinateSystem: "geo", name: t("facilities"), z: 4, symbolSize: 5,
      itemStyle: { color: "#123a5c" }, data: spots.map((f) => ({ name: f.properties.name, value: f.geometry.coordinates })) });
  }
  const c = chart(box);
  c.setOption({
    tooltip: { trigger: "item", formatter: (p) => (p.seriesType === "map"
      ? `${p.name}: ${fmt(Number.isFinite(p.value) ? p.value : null)}` : p.name) },
    legend: zones.length ? { data: [t("serviceArea"), t("facilities")], top: 0, left: 0 } : undefined,
    visualMap: { seriesIndex: 0, min: Math.min(0, ...values), max: Math.max(1, ...values), calculable: true, right: 0,
      bottom: 0, inRange: { color: ["#d9534f", "#f0ad4e", "#2e8b57"] }, text: [ind.unit, ""] },
    geo: { map: "units", roam: true, label: { show: units.length <= 30, fontSize: 10 },
      itemStyle: { borderColor: "#555", borderWidth: 0.5 } },
    series,
  }, true);
  c.off("click");
  c.on("click", (p) => {
    const f = units.find((u) => (u.properties.unit_name || u.properties.unit_key) === p.name);
    if (f && onPick) onPick(f.properties);
  });
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

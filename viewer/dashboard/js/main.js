// The city health-check dashboard: indicator cards against targets, the units on a map coloured by the
// chosen indicator, year-on-year and per-unit charts, and the problem list (the chosen indicator's, or all)
// with links into the 3D viewer.
import { applyStrings, t, ui } from "./i18n.js";
import { renderCards } from "./cards.js";
import { renderMap, renderTrend, renderByUnit } from "./charts.js";
import { renderProblems } from "./problems.js";
import { renderDrill } from "./lifecircle.js";

const $ = (id) => document.getElementById(id);
const state = { set: null, years: [], results: new Map(), areas: new Map(), indicator: null, level: "street",
  year: null, compound: null, problems: new Map(), allProblems: false };
const WITH_AREAS = ["coverage", "life_circle"]; // kinds whose facilities' service areas the map draws

async function get(path) {
  const res = await fetch(path);
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

async function results(year) {
  if (!state.results.has(year)) state.results.set(year, await get(`/api/healthcheck/${year}/results`));
  return state.results.get(year);
}

const indicator = () => state.set.indicators.find((i) => i.id === state.indicator);

async function serviceAreas(ind) {
  if (!WITH_AREAS.includes(ind.kind)) return null;
  if (!state.areas.has(ind.id)) state.areas.set(ind.id, await get(`/api/healthcheck/service-areas?indicator=${ind.id}`));
  return state.areas.get(ind.id);
}

function pick(unit) { // a click on a unit of the map: a compound opens its life circle
  if (unit.level !== "compound") return;
  state.compound = unit.unit_key;
  renderDrill($("drill"), state.results.get(state.year), state.compound);
}
const name = (ind) => (ui.lang === "zh" ? ind.name_zh : ind.name_en);

function fillSelect(select, options, value) {
  select.replaceChildren(...options.map(([v, label]) => {
    const o = document.createElement("option");
    o.value = v;
    o.textContent = label;
    o.selected = String(v) === String(value);
    return o;
  }));
}

async function render() {
  applyStrings();
  fillSelect($("year"), state.years.map((y) => [y.year, String(y.year)]), state.year);
  fillSelect($("indicator"), state.set.indicators.map((i) => [i.id, name(i)]), state.indicator);
  const fc = await results(state.year);
  const ind = indicator();
  const levels = [...new Set(fc.features.filter((f) => f.properties.indicator === ind.id)
    .map((f) => f.properties.level))].filter((l) => l !== "district");
  if (!levels.includes(state.level)) state.level = levels[0] ?? "district";
  fillSelect($("level"), (levels.length ? levels : ["district"]).map((l) => [l, t(l)]), state.level);
  renderCards($("cards"), state.set.indicators, fc, state.indicator, (id) => { state.indicator = id; render(); });
  renderMap($("map"), fc, ind, state.level, await serviceAreas(ind), pick);
  renderDrill($("drill"), fc, state.compound);
  renderByUnit($("byunit"), fc, ind, state.level);
  const series = [];
  for (const y of state.years) {
    const row = (await results(y.year)).features.find(
      (f) => f.properties.indicator === ind.id && f.properties.level === "district");
    series.push([String(y.year), row ? row.properties.value : null]);
  }
  renderTrend($("trend"), series, ind);
  await renderList();
}

async function renderList() { // the problem list alone: the box that widens it changes nothing else
  if (!state.problems.has(state.year)) {
    state.problems.set(state.year, (await get(`/api/healthcheck/${state.year}/problems`)).problems);
  }
  renderProblems($("problems").tBodies[0], $("problem-count"), state.problems.get(state.year),
    state.set.indicators, state.allProblems ? null : state.indicator);
}

async function start() {
  const params = new URLSearchParams(location.search);
  ui.lang = params.get("lang") === "en" ? "en" : "zh";
  applyStrings();
  try {
    const doc = await get("/api/healthcheck");
    state.set = doc.set;
    state.years = doc.years;
    if (!state.years.length) {
      $("status").textContent = t("noRuns");
      return;
    }
    state.year = Number(params.get("year")) || state.years[state.years.length - 1].year;
    state.indicator = params.get("indicator") || state.set.indicators[0].id;
    state.level = params.get("level") || state.level;
    state.compound = params.get("compound");
    await render();
    document.body.dataset.ready = "true";
  } catch (err) {
    $("status").textContent = t("loadFailed") + err.message;
  }
}

$("year").addEventListener("change", (e) => { state.year = Number(e.target.value); render(); });
$("indicator").addEventListener("change", (e) => { state.indicator = e.target.value; render(); });
$("level").addEventListener("change", (e) => { state.level = e.target.value; render(); });
$("all-problems").addEventListener("change", (e) => { state.allProblems = e.target.checked; renderList(); });
$("lang").addEventListener("click", () => { ui.lang = ui.lang === "zh" ? "en" : "zh"; render(); });
start();

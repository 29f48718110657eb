// One card per indicator: the district's value against its target (green passes, red misses, grey no data).
import { t, ui } from "./i18n.js";

export const fmt = (v) => (v === null || v === undefined ? t("noData") : Number(v).toFixed(2).replace(/\.?0+$/, ""));

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

export function renderCards(box, indicators, fc, selected, onPick) {
  const district = new Map(fc.features.filter((f) => f.properties.level === "district")
    .map((f) => [f.properties.indicator, f.properties]));
  box.replaceChildren(...indicators.map((ind) => {
    const p = district.get(ind.id);
    const value = p ? p.value : null;
    const state = value === null ? "nodata" : p.passes === false ? "fail" : "pass";
    const card = el("div", `card ${state}${ind.id === selected ? " selected" : ""}`);
    card.dataset.indicator = ind.id;
    card.append(el("div", "name", ui.lang === "zh" ? ind.name_zh : ind.name_en),
      el("div", "value", value === null ? t("noData") : `${fmt(value)} ${ind.unit}`));
    const meta = [];
    if (ind.target !== null) meta.push(`${t("target")} ${ind.direction} ${fmt(ind.target)}`);
    if (p && p.straight_value !== null) meta.push(`${t("straight")} ${fmt(p.straight_value)}`);
    card.append(el("div", "meta", meta.join(" · ")));
    card.addEventListener("click", () => onPick(ind.id));
    return card;
  }));
}

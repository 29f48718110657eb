// Drill-down to a compound: its 15-minute life circle, which facility classes lie within their band's walking
// distance (300 / 500 / 1,000 m), with the walking and straight-line distance to the nearest of each.
import { fmt } from "./cards.js";
import { t } from "./i18n.js";

function cell(tag, text, cls) {
  const td = document.createElement(tag);
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

const metres = (v) => (v === null || v === undefined ? "—" : `${Math.round(v)} m`);

export function renderDrill(box, fc, key) {
  const f = fc.features.find((x) => x.properties.indicator === "life_circle" && x.properties.level === "compound"
    && x.properties.unit_key === key);
  if (!f || !f.properties.details?.classes) {
    box.replaceChildren(cell("p", t("pickCompound"), "hint"));
    box.dataset.compound = "";
    return;
  }
  const p = f.properties;
  const head = cell("p", `${p.unit_name || p.unit_key}: ${fmt(p.value)} % ${t("classesReached")}`, "drill-title");
  const table = document.createElement("table");
  table.className = "drill";
  const hr = document.createElement("tr");
  for (const k of ["colClass", "colRadius", "colWalk", "colStraight", "colWithin"]) hr.append(cell("th", t(k)));
  table.append(hr);
  for (const [name, c] of Object.entries(p.details.classes).sort((a, b) => a[1].radius - b[1].radius)) {
    const tr = document.createElement("tr");
    tr.className = c.within ? "within" : "missing";
    tr.append(cell("td", t(name)), cell("td", `${c.radius} m`), cell("td", metres(c.walking_m)),
      cell("td", metres(c.straight_m)), cell("td", c.within ? "✓" : "✗"));
    table.append(tr);
  }
  box.replaceChildren(head, table);
  box.dataset.compound = key;
}

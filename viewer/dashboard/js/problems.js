// The problem list (the chosen indicator's, or every one's): each unit missing a target, the first objects behind it (the rest counted), and a link
// to each one's place in the 3D viewer.
import { t, ui } from "./i18n.js";

const SHOWN = 3; // objects listed under each unit's problem

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function row(p, names) {
  const tr = document.createElement("tr");
  tr.className = p.severity;
  const place = document.createElement("td");
  if (p.lon !== null && p.lat !== null) {
    const a = document.createElement("a");
    a.href = `/#view=${p.lon.toFixed(6)},${p.lat.toFixed(6)},900,0,-50&lang=${ui.lang}`;
    a.textContent = t("open3d");
    place.append(a);
  }
  tr.append(cell(names.get(p.indicator) ?? p.indicator), cell(p.message), place);
  return tr;
}

// `count`: where the number of units' problems listed goes; `only`: an indicator's id, whose problems
// alone are listed (null: every indicator's).
export function renderProblems(body, count, problems, indicators, only) {
  const names = new Map(indicators.map((i) => [i.id, ui.lang === "zh" ? i.name_zh : i.name_en]));
  problems = only ? problems.filter((p) => p.indicator === only) : problems;
  const units = problems.filter((p) => p.severity !== "info").length;
  count.textContent = `(${units})`;
  if (!problems.length) {
    const tr = document.createElement("tr");
    tr.className = "info";
    tr.append(cell(""), cell(t("noProblems")), cell(""));
    body.replaceChildren(tr);
    return;
  }
  const rows = [];
  let behind = 0;
  const flush = () => {
    if (behind > SHOWN) {
      const tr = document.createElement("tr");
      tr.className = "info";
      tr.append(cell(""), cell(`… +${behind - SHOWN} ${t("more")}`), cell(""));
      rows.push(tr);
    }
    behind = 0;
  };
  for (const p of problems) {
    if (p.severity !== "info") flush();
    else if (++behind > SHOWN) continue;
    rows.push(row(p, names));
  }
  flush();
  body.replaceChildren(...rows);
}

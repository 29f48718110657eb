// The layer panel: a checkbox per tile layer, and under the pipes one per utility (with its CJJ 61
// colour) and one for the nodes. Built from nodes and textContent only: names come from the server.
import { t } from "./i18n.js";
import { $, NODES, PIPES, state } from "./state.js";
import { restyle } from "./style.js";
import { writeHash } from "./url.js";

function swatch(rgb) {
  const span = document.createElement("span");
  span.className = "swatch";
  span.style.background = `rgb(${rgb.map(Number).join(",")})`;
  return span;
}

// A drawn padlock (no emoji: a system without a colour emoji font shows an empty box).
const SVG = "http://www.w3.org/2000/svg";
function lockIcon() {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "lock");
  svg.setAttribute("viewBox", "0 0 12 14");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", t("locked"));
  const shackle = document.createElementNS(SVG, "path");
  shackle.setAttribute("d", "M3 6.5V4.5a3 3 0 0 1 6 0v2");
  shackle.setAttribute("fill", "none");
  shackle.setAttribute("stroke", "currentColor");
  shackle.setAttribute("stroke-width", "1.6");
  const body = document.createElementNS(SVG, "rect");
  for (const [k, v] of Object.entries({ x: 1, y: 6, width: 10, height: 8, rx: 1.5, fill: "currentColor" }))
    body.setAttribute(k, v);
  svg.append(shackle, body);
  return svg;
}

function row(id, label, { sub = false, locked = false, color = null } = {}) {
  const li = document.createElement("li");
  li.className = [sub && "sub", locked && "locked"].filter(Boolean).join(" ");
  const box = document.createElement("input");
  box.type = "checkbox";
  box.dataset.layer = id;
  box.checked = state.visible.has(id) && !locked;
  box.disabled = locked;
  const labelEl = document.createElement("label");
  if (locked) labelEl.title = t("locked");
  labelEl.append(box, " ", ...(color ? [swatch(color)] : []), label, ...(locked ? [" ", lockIcon()] : []));
  li.append(labelEl);
  return li;
}

function pipesGroup(locked) {
  const head = document.createElement("li");
  if (locked) {
    head.className = "locked";
    head.title = t("locked");
  }
  head.replaceChildren(t("pipes"), ...(locked ? [" ", lockIcon()] : []));
  const name = (u) => (state.lang === "zh" ? u.name_zh : u.name_en);
  const utilities = state.utilities.map((u) => row(u.utility, name(u), { sub: true, locked, color: u.color }));
  return [head, ...utilities, row(NODES, t("pipeNodes"), { sub: true, locked })];
}

export function renderLayerPanel() {
  const items = state.layers.flatMap((l) => (l.name === PIPES ? pipesGroup(state.locked.has(PIPES))
    : [row(l.name, t(l.name), { locked: state.locked.has(l.name) })]));
  $("layers").replaceChildren(...items);
}

$("layers").addEventListener("change", (ev) => {
  const id = ev.target.dataset.layer;
  if (!id) return;
  if (ev.target.checked) state.visible.add(id);
  else state.visible.delete(id);
  restyle();
  writeHash();
});

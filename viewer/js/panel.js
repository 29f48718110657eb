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
  labelEl.append(box, " ", ...(color ? [swatch(color)] : []), label + (locked ? " 🔒" : ""));
  li.append(labelEl);
  return li;
}

function pipesGroup(locked) {
  const head = document.createElement("li");
  if (locked) {
    head.className = "locked";
    head.title = t("locked");
  }
  head.textContent = t("pipes") + (locked ? " 🔒" : "");
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

// The storeys of a building in the info panel; a click on one shows that storey alone.
import { api } from "./http.js";
import { t } from "./i18n.js";
import { flyToBox } from "./scene.js";
import { $, setStatus, state } from "./state.js";
import { restyle } from "./style.js";

function element(tag, text) {
  const el = document.createElement(tag);
  if (text !== undefined) el.textContent = text;
  return el;
}

// "<n> elements", unfolding to a count per element class.
function classesDetails(classes) {
  const d = element("details");
  const n = Object.values(classes).reduce((a, c) => a + Number(c), 0);
  d.appendChild(element("summary", `${n} ${t("elements")}`));
  const ul = element("ul");
  for (const [cls, c] of Object.entries(classes)) ul.appendChild(element("li", `${cls}: ${c}`));
  d.appendChild(ul);
  return d;
}

function storeyItem(s, building) {
  const li = element("li");
  const known = s.elevation !== undefined && s.elevation !== null;
  const elevation = known ? ` (${Number(s.elevation).toFixed(2)} m)` : "";
  const btn = element("button", `${s.name || s.id}${elevation}`);
  btn.className = "storey";
  btn.type = "button";
  btn.dataset.storey = s.id;
  btn.addEventListener("click", () => showStorey(s.id, building));
  li.appendChild(btn);
  const classes = s.element_classes || s.classes || {};
  if (Object.keys(classes).length) li.appendChild(classesDetails(classes));
  return li;
}

// The storey tree of a building, while `selectedId` is still the selected object.
export async function openBuilding(buildingId, selectedId) {
  let b;
  try {
    b = await api(`/api/buildings/${encodeURIComponent(buildingId)}`);
  } catch (e) {
    if (e.status === 404) return; // not a building with a BIM record
    throw e;
  }
  if (state.selectedId !== selectedId) return;
  const storeys = b.storeys || [];
  if (!storeys.length) return;
  $("bim-tree").replaceChildren(...storeys.map((s) => storeyItem(s, b)));
  $("bim").hidden = false;
}

function showStorey(storeyId, building) {
  const storey = storeyId === null ? null : building.storeys.find((s) => String(s.id) === String(storeyId));
  state.storey = storey
    ? { id: storey.id, name: storey.name, buildingId: building.id, footprint: building.geometry } : null;
  document.querySelectorAll("#bim-tree button.storey")
    .forEach((b) => b.classList.toggle("active", String(b.dataset.storey) === String(storeyId)));
  if (state.storey) {
    state.visible.add("bim");
    // Steeply from above, so that the neighbours do not stand in front of the storey.
    if (building.bbox) flyToBox(building.bbox, -70, 2.5);
  }
  restyle();
  setStatus(state.storey ? t("storeyShown") + (state.storey.name || state.storey.id) : "");
}

$("show-all-storeys").addEventListener("click", () => showStorey(null, null));

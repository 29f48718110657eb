// Search by name, uid or id: a list of hits; choosing one flies there and opens it.
import { api } from "./http.js";
import { t } from "./i18n.js";
import { openFeature } from "./info.js";
import { flyToBox } from "./scene.js";
import { $, cim, state } from "./state.js";

const MAX_HITS = 20;

function flyToHit(h) {
  const p = h.properties || h;
  const bbox = h.bbox || p.bbox;
  if (bbox) flyToBox(bbox.length === 6 ? [bbox[0], bbox[1], bbox[3], bbox[4]] : bbox);
  openFeature({ ...p, id: h.id ?? p.id });
}

function hitItem(h, list) {
  const p = h.properties || h;
  const li = document.createElement("li");
  li.tabIndex = 0;
  li.textContent = `${p.name || ""} · ${p.ifc_class || p.class || ""} · ${h.id ?? p.id}`;
  li.addEventListener("click", () => {
    list.hidden = true;
    flyToHit(h);
  });
  return li;
}

async function find(q) {
  try {
    const plan = state.scenario ? `&scenario=${encodeURIComponent(state.scenario)}` : ""; // search the model shown
    const r = await api(`/api/search?q=${encodeURIComponent(q)}${plan}`);
    return r.results || r.features || r;
  } catch (e) {
    cim.errors.push(String(e));
    return [];
  }
}

$("search").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const q = $("search-q").value.trim();
  const list = $("search-results");
  list.replaceChildren();
  if (!q) return (list.hidden = true);
  const hits = await find(q);
  list.hidden = false;
  if (!hits.length) {
    const none = document.createElement("li");
    none.textContent = t("noResults");
    list.append(none);
    return;
  }
  list.append(...hits.slice(0, MAX_HITS).map((h) => hitItem(h, list)));
});

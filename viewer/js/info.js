// The info panel of a picked object: its tile properties at once, then its full record from the API.
import { openBuilding } from "./bim.js";
import { api } from "./http.js";
import { t } from "./i18n.js";
import { $, state } from "./state.js";
import { select } from "./style.js";

const isEmpty = (v) => v === null || v === undefined || v === "" ||
  (typeof v === "object" && Object.keys(v).length === 0);
// float32 tile values (53.099998474) read as what was stored (53.1).
const show = (v) => (typeof v === "number" && !Number.isInteger(v) ? String(Number(v.toPrecision(7))) : v);
const isGeometry = (v) => v && typeof v === "object" && "coordinates" in v;
const isBuilding = (rec) => /building/i.test(String((rec.properties || rec).class || ""));

function fillTable(table, entries) {
  table.replaceChildren();
  for (const [k, raw] of entries) {
    if (isEmpty(raw)) continue;
    const v = show(raw);
    const tr = table.insertRow();
    tr.insertCell().textContent = k;
    tr.insertCell().textContent = typeof v === "object" && v !== null ? JSON.stringify(v) : String(v);
  }
}

// Nested objects as dotted keys; geometries left out.
function flatten(obj, prefix = "", out = []) {
  for (const [k, v] of Object.entries(obj)) {
    const nested = v && typeof v === "object" && !Array.isArray(v) && !("type" in v && "coordinates" in v);
    if (nested) flatten(v, `${prefix}${k}.`, out);
    else if (!isGeometry(v)) out.push([prefix + k, v]);
  }
  return out;
}

function showTileProps(props) {
  $("panel-right").hidden = false;
  $("feature-title").textContent = props.name || `#${props.id}`;
  $("feature-sub").textContent = [props.class, `id ${props.id}`].filter(Boolean).join(" · ");
  fillTable($("feature-props"), Object.entries(props));
  $("record-props").replaceChildren();
  $("bim").hidden = true;
  $("record-status").textContent = t("loading");
}

async function showRecord(props) {
  const id = props.id;
  const rec = await api(`/api/objects/${encodeURIComponent(id)}`);
  if (state.selectedId !== id) return;
  $("record-status").textContent = "";
  fillTable($("record-props"), flatten(rec.properties || rec));
  const buildingId = props.building_id ?? (isBuilding(rec) ? id : null);
  if (buildingId !== null && buildingId !== undefined) await openBuilding(buildingId, id);
}

export async function openFeature(props) {
  const id = props.id;
  showTileProps(props);
  select(id);
  try {
    await showRecord(props);
  } catch (e) {
    if (state.selectedId !== id) return;
    const refused = e.status === 401 || e.status === 403;
    $("record-status").textContent = refused ? t("notAllowed") : `${t("loadFailed")} (${e.message})`;
  }
}

export function closePanel() {
  $("panel-right").hidden = true;
  if (state.selectedId !== null) select(null);
}

$("panel-close").addEventListener("click", closePanel);

// The API key box: a key opens the restricted layers its role may read, at once and on later visits.
import { t } from "./i18n.js";
import { discoverAccess, loadLayers } from "./layers.js";
import { renderLayerPanel } from "./panel.js";
import { $, KEY_STORE, PIPES, state } from "./state.js";

export function renderKeyStatus() {
  $("key-status").textContent = state.key ? (state.locked.has(PIPES) ? t("keyRejected") : t("keySet")) : t("keyNone");
}

async function reloadAccess() {
  const known = new Set(state.utilities.map((u) => u.utility));
  await discoverAccess();
  // Utilities a new key opens are shown at once.
  state.utilities.forEach((u) => known.has(u.utility) || state.visible.add(u.utility));
  await loadLayers();
  renderLayerPanel();
  renderKeyStatus();
}

function useKey(key) {
  state.key = key;
  if (key) localStorage.setItem(KEY_STORE, key);
  else localStorage.removeItem(KEY_STORE);
  reloadAccess();
}

$("key-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  useKey($("key").value.trim());
});
$("key-clear").addEventListener("click", () => {
  $("key").value = "";
  useKey("");
});

// The CIM viewer: CesiumJS over the platform's own /tiles and /api, nothing else on the network.
import "./picking.js";
import "./search.js";
import "./underground.js";
import "./tools/underground-tools.js";
import "./tools/underground-findings.js";
import "./tools/drainage.js";
import "./tools/water.js";
import "./tools/view.js";
import "./tools/scenario.js";
import "./tools/measure.js";
import "./tools/views.js";
import { STRINGS, t, translatePage } from "./i18n.js";
import { renderKeyStatus } from "./keys.js";
import { discoverAccess, loadLayers } from "./layers.js";
import { renderLayerPanel } from "./panel.js";
import { brdfLutReady, districtSphere, firstView, flyHome, jumped, scene, setDaylight } from "./scene.js";
import { $, cim, LANG_STORE, mark, NODES, PIPES, setStatus, state } from "./state.js";
import { applyView, readHash, writeHash } from "./url.js";
import { startLive } from "./tools/live.js";

function applyLanguage() {
  translatePage();
  renderLayerPanel();
  renderKeyStatus();
}

$("lang").addEventListener("click", () => {
  state.lang = state.lang === "zh" ? "en" : "zh";
  localStorage.setItem(LANG_STORE, state.lang);
  applyLanguage();
  writeHash();
});

// Every layer, the pipe nodes and every utility with data the caller may read.
function defaultVisible() {
  const layers = state.layers.map((l) => l.name).filter((name) => name !== PIPES);
  return new Set([...layers, NODES, ...state.utilities.map((u) => u.utility)]);
}

// Daylight over the district, the camera where the link says or over the whole district.
function showDistrict(sphere, view) {
  const centre = Cesium.Cartographic.fromCartesian(sphere.center);
  setDaylight(Cesium.Math.toDegrees(centre.longitude));
  if (view) applyView(view);
  else flyHome(0);
  jumped();
  scene.camera.moveEnd.addEventListener(writeHash);
  writeHash();
}

async function start() {
  const fromUrl = readHash();
  if (fromUrl.lang && STRINGS[fromUrl.lang]) state.lang = fromUrl.lang;
  state.scenario = fromUrl.scenario || null;
  $("key").value = state.key;
  applyLanguage();
  setStatus(t("loadingScene"));
  mark("viewer");
  await discoverAccess();
  mark("access");
  // The camera goes to the district before the first tile is asked for, so the globe loads only what it shows.
  const sphere = districtSphere();
  if (!sphere) return setStatus(t("noTiles"));
  showDistrict(sphere, fromUrl.view);
  state.visible = fromUrl.layers || defaultVisible();
  renderLayerPanel();
  renderKeyStatus();
  await brdfLutReady;
  const failed = await loadLayers();
  mark("tilesets");
  await firstView();
  mark("loaded");
  setStatus(failed.length ? t("layerFailed") + failed.join(", ") : t("sceneReady"));
}

cim.started = start().catch((e) => {
  cim.errors.push(String(e));
  setStatus(String(e));
}).finally(() => (cim.ready = true));

// Live monitoring starts once the first view is complete, as the road labels do: its points, labels and asset
// outlines bring six shader programs of their own, which software GL would compile while the city loads.
// It does not need the tiles: without them (an empty globe) it starts all the same.
cim.liveStarted = cim.started.then(startLive).catch((e) => cim.errors.push(`live: ${e}`));

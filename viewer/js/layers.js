// The layers as the server describes them: the tile layers of the root tileset (extras.layers), the
// pipe utilities of the API (names, colours, which the caller may read and which have data), and
// the tilesets loaded from them.
import { api, tileResource } from "./http.js";
import { renderLayerPanel } from "./panel.js";
import { firstViewComplete, lighting, scene, whenLoaded } from "./scene.js";
import { cim, PIPES, state, tilesets } from "./state.js";
import { restyle } from "./style.js";
import { loadRoadLabels } from "./tools/labels.js";

const GREY = [128, 128, 128];

let catalogue = null; // the root tileset, asked once

// The tile layers [{name, restricted}] and the metres the tiles add to stored heights.
async function loadCatalogue() {
  try {
    const root = await api("/tiles/tileset.json");
    const extras = root.extras || {};
    cim.district = root.root?.boundingVolume?.region || null; // [w, s, e, n] radians, then heights
    state.layers = extras.layers || [];
    cim.verticalOffset = extras.vertical_offset ?? 0;
  } catch (e) {
    state.layers = [];
    cim.verticalOffset = 0;
    cim.errors.push(String(e)); // e.g. nothing imported yet: 404
  }
}

async function loadCategories() {
  try {
    return (await api("/api/pipe-categories")).categories;
  } catch (e) {
    cim.errors.push(String(e)); // e.g. an unknown key: 401
    return [];
  }
}

// A restricted layer is tried only when the caller may read it: a missing key shows a lock instead of
// a 401 in the console. The pipes need at least one utility the caller may read.
function mayTry(layer) {
  if (!layer.restricted) return true;
  if (layer.name === PIPES) return state.categories.some((c) => c.readable);
  return Boolean(state.key);
}

// The layers, and which utilities and layers the caller may read, asked before any tile request.
export async function discoverAccess() {
  [state.categories] = await Promise.all([loadCategories(), (catalogue ??= loadCatalogue())]);
  state.utilities = state.categories.filter((c) => c.readable && c.has_data);
  // The root tileset lists only the layers the caller may read; pipe networks it may not read are
  // still named by the API's categories, and show as a locked layer.
  if (!state.layers.some((l) => l.name === PIPES) && state.categories.some((c) => c.restricted && !c.readable))
    state.layers = [...state.layers, { name: PIPES, restricted: true }];
  state.locked = new Set(state.layers.filter((l) => !mayTry(l)).map((l) => l.name));
}

const categoryOf = (utility) =>
  state.categories.find((c) => c.utility === utility) || { utility, name_zh: utility, name_en: utility, color: GREY };

let generation = 0; // of loadLayers: a tileset that comes in after the layers were loaded again is dropped

async function loadTileset(layer, failed, gen = generation) {
  try {
    // Pipes are thin: parents leave out what would be under a pixel or so (geometric error about a
    // diameter), so refine them sooner than the volumes of buildings and BIM elements.
    const ts = await Cesium.Cesium3DTileset.fromUrl(tileResource(layer), {
      maximumScreenSpaceError: layer === PIPES ? 2 : 16,
      show: false, // until restyle() says: hidden layers (the pipes above ground) ask for no tile meanwhile
      ...lighting(),
    });
    if (gen !== generation) return ts.destroy();
    ts.tileFailed.addEventListener((e) => cim.errors.push(`${layer}: ${e.url}: ${e.message}`));
    tilesets[layer] = scene.primitives.add(ts);
  } catch (e) {
    if (e.statusCode === 401 || e.statusCode === 403) state.locked.add(layer); // the key lacks the role
    else {
      failed.push(layer);
      cim.errors.push(`${layer}: ${e.message || e}`);
    }
  }
}

// The pipes, hidden above ground, once the first view is complete: at scale 30 their tileset JSON is 3 MB, and
// parsing it and making its tile tree cost the page's main thread a second or more.
async function loadPipes(gen) {
  await firstViewComplete;
  if (gen !== generation) return;
  await loadTileset(PIPES, [], gen);
  if (gen !== generation) return;
  if (tilesets[PIPES]) collectUtilities(tilesets[PIPES]);
  renderLayerPanel(); // a key without the pipes' role shows their lock
  restyle();
}

// (Re)load the tilesets of every layer the caller may read; resolves to the layers that failed (the pipes'
// failure, later, goes to cim.errors).
export async function loadLayers() {
  const gen = ++generation;
  for (const ts of Object.values(tilesets)) scene.primitives.remove(ts);
  for (const k of Object.keys(tilesets)) delete tilesets[k];
  const failed = [];
  const names = state.layers.map((l) => l.name).filter((l) => !state.locked.has(l));
  await Promise.all(names.filter((l) => l !== PIPES).map((layer) => loadTileset(layer, failed)));
  if (names.includes(PIPES)) loadPipes(gen);
  restyle();
  // Names on the ground map once the first view is complete and the tiles are in: their glyphs and shader
  // programs would hold up the first view.
  cim.labelsReady = firstViewComplete.then(() => whenLoaded()).then(loadRoadLabels).then(restyle);
  return failed;
}

function newUtilities(content) {
  const found = new Set();
  for (let i = 0; i < content.featuresLength; i++) {
    const u = content.getFeature(i).getProperty("utility");
    if (u && !state.utilities.some((x) => x.utility === u)) found.add(u);
  }
  return [...found];
}

// Utilities found in the pipe tiles that the API did not list join the panel.
function collectUtilities(ts) {
  ts.tileLoad.addEventListener((tile) => {
    const found = newUtilities(tile.content);
    for (const u of found) {
      state.utilities.push(categoryOf(u));
      state.visible.add(u);
    }
    if (found.length) {
      renderLayerPanel();
      restyle();
    }
  });
}

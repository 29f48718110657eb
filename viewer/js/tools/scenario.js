// Renewal scenarios: which model the scene shows (现状 as-is, or a plan), and a split-screen swipe that shows
// both: the as-is model left of a draggable divider, the plan right of it (Cesium's splitDirection on the
// tilesets of the layers a plan changes; the pipes stay as they are).
import { api, tileResource } from "../http.js";
import { STRINGS, t } from "../i18n.js";
import { loadLayers } from "../layers.js";
import { lighting, scene } from "../scene.js";
import { $, cim, setStatus, state, tilesets } from "../state.js";
import { writeHash } from "../url.js";

Object.assign(STRINGS.zh, { scenario: "方案", asIs: "现状", swipe: "卷帘对比", swipeNeedsPlan: "没有可对比的规划方案" });
Object.assign(STRINGS.en, { scenario: "Scenario", asIs: "As-is", swipe: "Swipe compare",
  swipeNeedsPlan: "no plan to compare" });

const SPLIT_LAYERS = ["buildings", "bim", "ground"];
const planSets = {}; // layer -> the plan's tileset while swiping
let plans = []; // [{name, title}] of /api/scenarios, without as-is

const titleOf = (name) => (name ? (plans.find((p) => p.name === name) || { title: name }).title || name : t("asIs"));

function renderSelect() {
  const sel = $("scenario");
  sel.replaceChildren(...[{ name: "", title: t("asIs") }, ...plans].map((p) => {
    const o = document.createElement("option");
    o.value = p.name;
    o.textContent = p.title || p.name;
    return o;
  }));
  sel.value = state.scenario || "";
  sel.title = t("scenario");
  sel.hidden = !plans.length;
  $("swipe").hidden = !plans.length;
}

async function listPlans() {
  try {
    plans = (await api("/api/scenarios")).scenarios.filter((s) => s.name !== "as-is");
  } catch (e) {
    cim.errors.push(`scenarios: ${e}`);
    plans = [];
  }
  renderSelect();
}

// The scene shows the model of `name` (null: as-is); the swipe, if on, compares as-is with it.
async function setScenario(name) {
  const swiping = Boolean(Object.keys(planSets).length);
  if (swiping) await setSwipe(false);
  state.scenario = name || null;
  renderSelect();
  await loadLayers();
  if (swiping && name) await setSwipe(true);
  writeHash();
}

// The plan's tileset follows the as-is one's visibility and style, frame by frame.
function follow() {
  for (const [layer, ts] of Object.entries(planSets)) {
    const base = tilesets[layer];
    if (!base) continue;
    ts.show = base.show;
    if (ts.style !== base.style) ts.style = base.style;
  }
}

function placeDivider() {
  const d = $("swipe-divider");
  d.style.left = `${scene.splitPosition * scene.canvas.clientWidth}px`;
}

async function setSwipe(on) {
  for (const [layer, ts] of Object.entries(planSets)) {
    scene.primitives.remove(ts);
    delete planSets[layer];
    if (tilesets[layer]) tilesets[layer].splitDirection = Cesium.SplitDirection.NONE;
  }
  scene.preRender.removeEventListener(follow);
  $("swipe-divider").hidden = true;
  $("swipe").setAttribute("aria-pressed", "false");
  if (on) {
    const plan = state.scenario || (plans[0] && plans[0].name);
    if (!plan) return setStatus(t("swipeNeedsPlan"));
    if (state.scenario) {
      state.scenario = null; // as-is on the left
      renderSelect();
      await loadLayers();
    }
    $("scenario").value = plan;
    const layers = SPLIT_LAYERS.filter((l) => tilesets[l]);
    await Promise.all(layers.map(async (layer) => {
      const ts = await Cesium.Cesium3DTileset.fromUrl(tileResource(layer, plan),
        { maximumScreenSpaceError: 16, ...lighting() });
      ts.splitDirection = Cesium.SplitDirection.RIGHT;
      planSets[layer] = scene.primitives.add(ts);
      tilesets[layer].splitDirection = Cesium.SplitDirection.LEFT;
    }));
    scene.preRender.addEventListener(follow);
    scene.splitPosition = 0.5;
    $("swipe-left").textContent = t("asIs");
    $("swipe-right").textContent = titleOf(plan);
    $("swipe-divider").hidden = false;
    $("swipe").setAttribute("aria-pressed", "true");
    cim.swipePlan = plan;
    placeDivider();
  }
  scene.requestRender();
}

function dragDivider() {
  const d = $("swipe-divider");
  let dragging = false;
  d.addEventListener("pointerdown", (e) => {
    dragging = true;
    d.setPointerCapture(e.pointerId);
  });
  d.addEventListener("pointermove", (e) => {
    if (!dragging) return;
    const rect = scene.canvas.getBoundingClientRect();
    scene.splitPosition = Math.min(0.98, Math.max(0.02, (e.clientX - rect.left) / rect.width));
    placeDivider();
    scene.requestRender();
  });
  d.addEventListener("pointerup", () => (dragging = false));
}

$("scenario").addEventListener("change", (e) => setScenario(e.target.value));
$("swipe").addEventListener("click", () => setSwipe(!Object.keys(planSets).length));
dragDivider();
$("lang").addEventListener("click", () => setTimeout(renderSelect)); // after main.js switched the language
window.addEventListener("resize", placeDivider);
cim.planTilesets = planSets;
cim.setScenario = setScenario;
cim.setSwipe = setSwipe;
cim.scenariosListed = listPlans();

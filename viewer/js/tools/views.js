// Saved views: a view is the URL hash the viewer writes (camera, ticked layers, language, scenario), so a
// link is the view; named views are kept in localStorage, and "copy link" gives the link to share.
import { STRINGS, t } from "../i18n.js";
import { restyle } from "../style.js";
import { $, cim, state } from "../state.js";
import { applyView, readHash, writeHash } from "../url.js";

Object.assign(STRINGS.zh, { viewName: "视图名称", saveView: "保存视图", copyLink: "复制链接", linkCopied: "链接已复制",
  deleteView: "删除" });
Object.assign(STRINGS.en, { viewName: "view name", saveView: "Save view", copyLink: "Copy link", linkCopied: "link copied",
  deleteView: "delete" });

export const VIEWS_STORE = "cim.views";

const load = () => {
  try {
    return JSON.parse(localStorage.getItem(VIEWS_STORE) || "[]").filter((v) => v && v.name && v.hash);
  } catch {
    return [];
  }
};
const store = (views) => localStorage.setItem(VIEWS_STORE, JSON.stringify(views));

// Go to a saved view: camera, layers, language and scenario as its hash says.
async function open(hash) {
  history.replaceState(null, "", hash);
  const v = readHash();
  if (v.layers) state.visible = v.layers;
  if ((v.scenario || null) !== state.scenario && cim.setScenario) await cim.setScenario(v.scenario);
  restyle();
  if (v.view) applyView(v.view);
  writeHash();
}

function render() {
  const list = $("views");
  list.replaceChildren(...load().map((v, i) => {
    const li = document.createElement("li");
    const go = document.createElement("button");
    go.type = "button";
    go.className = "go";
    go.textContent = v.name; // the user's own text, as text
    go.addEventListener("click", () => open(v.hash));
    const del = document.createElement("button");
    del.type = "button";
    del.textContent = "×";
    del.title = t("deleteView");
    del.addEventListener("click", () => {
      store(load().filter((_, k) => k !== i));
      render();
    });
    li.append(go, del);
    return li;
  }));
}

function save(name) {
  writeHash();
  const views = load().filter((v) => v.name !== name);
  views.push({ name, hash: location.hash, saved: new Date().toISOString() });
  store(views);
  render();
}

async function copyLink() {
  writeHash();
  const link = $("view-link");
  link.value = location.href;
  link.hidden = false;
  link.select();
  try {
    await navigator.clipboard.writeText(location.href);
    $("measure-result").textContent = t("linkCopied");
  } catch {
    // no clipboard (insecure origin, headless): the link stays selected in the box for the user to copy
  }
}

$("view-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const name = $("view-name").value.trim();
  if (name) save(name);
  $("view-name").value = "";
});
$("view-copy").addEventListener("click", copyLink);
render();
cim.views = { save, open, load };

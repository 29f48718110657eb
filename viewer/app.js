// The CIM viewer: CesiumJS over the platform's own /tiles and /api, nothing else on the network.
"use strict";

(() => {
  const I18N = window.CIM_I18N;
  const LAYERS = ["buildings", "bim", "pipes"];
  const KEY_STORE = "cim.apiKey";
  const LANG_STORE = "cim.lang";
  const $ = (id) => document.getElementById(id);

  const state = {
    lang: localStorage.getItem(LANG_STORE) || "zh",
    key: localStorage.getItem(KEY_STORE) || "",
    visible: new Set(["buildings", "bim", "nodes"]), // + pipe utilities once known
    utilities: [], // [{utility, name_zh, name_en, color: [r,g,b]}]
    locked: new Set(),
    selectedId: null,
    storey: null, // {id, name, buildingId, footprint}
  };
  const tilesets = {};
  const cim = (window.cim = { state, tilesets, viewer: null, errors: [], marks: {}, flying: false });
  const mark = (what) => (cim.marks[what] = Math.round(performance.now())); // ms since navigation

  // ------------------------------------------------------------------ text
  const t = (k) => (I18N[state.lang] && I18N[state.lang][k]) || I18N.zh[k] || k;
  function applyLanguage() {
    document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
    document.title = t("title");
    document.querySelectorAll("[data-i18n]").forEach((el) => (el.textContent = t(el.dataset.i18n)));
    document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => (el.placeholder = t(el.dataset.i18nPlaceholder)));
    $("lang").textContent = state.lang === "zh" ? "English" : "中文";
    renderLayerPanel();
    renderKeyStatus();
  }
  const setStatus = (msg) => ($("status").textContent = msg);

  // ------------------------------------------------------------------ HTTP (same origin only)
  const authHeaders = () => (state.key ? { "X-API-Key": state.key } : {});
  async function api(path) {
    const res = await fetch(path, { headers: authHeaders() });
    if (!res.ok) {
      const err = new Error(`${path}: HTTP ${res.status}`);
      err.status = res.status;
      throw err;
    }
    return res.json();
  }
  // Tile requests carry the key as a header; Cesium copies headers to every derived content request.
  const tileResource = (layer) => new Cesium.Resource({ url: `/tiles/${layer}/tileset.json`, headers: authHeaders() });

  // CJJ 61-2017 names and colours of the pipe utilities (as in the pipe_categories table); the API says
  // which utilities exist and which the caller may read.
  const CJJ61 = {
    water: ["给水", "water supply", [0, 255, 255]], rain: ["雨水", "storm water", [76, 57, 38]],
    sewage: ["污水", "sewage", [76, 57, 38]], combined: ["排水", "combined drainage", [76, 57, 38]],
    gas: ["燃气", "gas", [255, 0, 255]], heat: ["热力", "heat", [255, 128, 0]], power: ["电力", "power", [255, 0, 0]],
    telecom: ["通信", "telecom", [0, 255, 0]], unknown: ["不明", "unknown", [102, 0, 204]],
  };
  const utilityEntry = (u, title) => {
    const [zh, en, color] = CJJ61[u] || [u, title || u, [128, 128, 128]];
    return { utility: u, name_zh: zh, name_en: en, color };
  };
  const WORLD = [-180, -90, 180, 90];

  // Which layers the caller may read, asked of the API before any tile request, so that a missing key
  // shows a lock instead of a 401 in the console. /api/collections lists only what the caller may read.
  async function discoverAccess() {
    state.locked = new Set(["pipes"]);
    let cols = [];
    try {
      cols = (await api("/api/collections")).collections || [];
    } catch (e) {
      cim.errors.push(String(e));
    }
    const pipes = cols.filter((c) => c.id.startsWith("pipes_"));
    // Utilities with data: a collection without features has no extent (the whole world).
    const present = pipes.filter((c) => {
      const bbox = c.extent && c.extent.spatial && c.extent.spatial.bbox[0];
      return bbox && bbox.some((v, i) => v !== WORLD[i]);
    });
    state.utilities = present.map((c) => utilityEntry(c.id.slice("pipes_".length), c.title));
    if (pipes.length) state.locked.delete("pipes");
  }

  // ------------------------------------------------------------------ viewer
  Cesium.Ion.defaultAccessToken = undefined;
  const viewer = new Cesium.Viewer("scene", {
    baseLayer: false,
    baseLayerPicker: false,
    geocoder: false,
    terrainProvider: new Cesium.EllipsoidTerrainProvider(),
    animation: false,
    timeline: false,
    homeButton: false,
    sceneModePicker: false,
    navigationHelpButton: false,
    fullscreenButton: false,
    infoBox: false,
    selectionIndicator: false,
    requestRenderMode: true,
    maximumRenderTimeChange: Infinity,
    contextOptions: { webgl: { preserveDrawingBuffer: true } },
  });
  cim.viewer = viewer;
  const scene = viewer.scene;
  const globe = scene.globe;
  globe.baseColor = Cesium.Color.fromCssColorString("#7d8a6e");
  globe.showGroundAtmosphere = false;
  globe.depthTestAgainstTerrain = true; // pipes stay hidden under an opaque ground
  globe.undergroundColor = Cesium.Color.fromCssColorString("#2a2f36");
  globe.translucency.frontFaceAlpha = 0.4;
  globe.translucency.backFaceAlpha = 0.4;
  scene.fog.enabled = false;
  // Software WebGL (headless, no GPU) cannot afford multisampling.
  const gl = scene.context._gl;
  const info = gl.getExtension("WEBGL_debug_renderer_info");
  cim.renderer = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
  if (/swiftshader|llvmpipe|software/i.test(cim.renderer)) scene.msaaSamples = 1;
  scene.renderError.addEventListener((_, e) => cim.errors.push(String(e)));

  function setDaylight(lon) {
    // Local solar noon at the district's longitude, today.
    const now = new Date();
    const noonUtc = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), 12) - (lon / 15) * 3600e3;
    viewer.clock.currentTime = Cesium.JulianDate.fromDate(new Date(noonUtc));
    viewer.clock.shouldAnimate = false;
  }

  // ------------------------------------------------------------------ URL state
  function readHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    const view = p.get("view") ? p.get("view").split(",").map(Number) : null;
    return {
      view: view && view.length === 5 && view.every(Number.isFinite) ? view : null,
      layers: p.has("layers") ? new Set(p.get("layers").split(",").filter(Boolean)) : null,
      lang: p.get("lang"),
    };
  }
  function writeHash() {
    const c = Cesium.Cartographic.fromCartesian(scene.camera.positionWC);
    if (!c) return;
    const deg = Cesium.Math.toDegrees;
    const view = [deg(c.longitude).toFixed(6), deg(c.latitude).toFixed(6), c.height.toFixed(1),
      deg(scene.camera.heading).toFixed(1), deg(scene.camera.pitch).toFixed(1)].join(",");
    const p = new URLSearchParams({ view, layers: [...state.visible].join(","), lang: state.lang });
    history.replaceState(null, "", "#" + p.toString().replace(/%2C/g, ","));
  }
  function applyView(v) {
    scene.camera.setView({
      destination: Cesium.Cartesian3.fromDegrees(v[0], v[1], v[2]),
      orientation: { heading: Cesium.Math.toRadians(v[3]), pitch: Cesium.Math.toRadians(v[4]), roll: 0 },
    });
  }

  // ------------------------------------------------------------------ styles
  const lit = (v) => (typeof v === "number" || typeof v === "bigint" ? String(v) : JSON.stringify(String(v)));
  function colorRule() {
    if (state.selectedId === null) return undefined;
    return { conditions: [[`\${id} === ${lit(state.selectedId)}`, "color('#ffd54a')"], ["true", "color('white')"]] };
  }
  function styleFor(layer) {
    const show = [];
    if (layer === "buildings" && state.storey) show.push(`\${id} !== ${lit(state.storey.buildingId)}`);
    if (layer === "bim" && state.storey) show.push(`\${storey_id} === ${lit(state.storey.id)}`);
    if (layer === "pipes") {
      const segs = state.utilities.map((u) => u.utility).filter((u) => state.visible.has(u));
      const segShow = segs.length ? segs.map((u) => `\${utility} === ${lit(u)}`).join(" || ") : "false";
      const nodeShow = state.visible.has("nodes") ? "true" : "false";
      show.push(`(\${class} === 'pipe_node' ? ${nodeShow} : (${segShow}))`);
    }
    const style = {};
    if (show.length) style.show = show.map((s) => `(${s})`).join(" && ");
    const color = colorRule();
    if (color) style.color = color;
    return new Cesium.Cesium3DTileStyle(style);
  }
  function restyle() {
    for (const [layer, ts] of Object.entries(tilesets)) {
      ts.show = layerShown(layer);
      ts.style = styleFor(layer);
      // An isolated storey: cut away every block standing on that building's footprint.
      if (layer === "buildings" && ts.clippedFor !== state.storey) {
        ts.clippingPolygons = clippingFor(state.storey);
        ts.clippedFor = state.storey;
      }
    }
    scene.requestRender();
  }
  cim.restyle = restyle;
  function layerShown(layer) {
    if (state.locked.has(layer)) return false;
    if (layer === "pipes") return state.utilities.some((u) => state.visible.has(u.utility)) || state.visible.has("nodes");
    return state.visible.has(layer);
  }
  function clippingFor(storey) {
    if (!storey || !storey.footprint) return undefined;
    const rings = footprintRings(storey.footprint);
    if (!rings.length) return undefined;
    return new Cesium.ClippingPolygonCollection({
      polygons: rings.map((r) => new Cesium.ClippingPolygon({ positions: Cesium.Cartesian3.fromDegreesArray(r.flat()) })),
    });
  }
  function footprintRings(geom, grow = 1.0) {
    // Outer rings of a GeoJSON (Multi)Polygon in lon/lat without the closing vertex, grown by `grow`
    // metres away from their centre: blocks drawn from a slightly different footprint go too.
    const polys = geom.type === "Polygon" ? [geom.coordinates] : geom.type === "MultiPolygon" ? geom.coordinates : [];
    return polys.map((p) => {
      const ring = p[0].slice(0, -1);
      const cx = ring.reduce((a, c) => a + c[0], 0) / ring.length;
      const cy = ring.reduce((a, c) => a + c[1], 0) / ring.length;
      const mPerDegLat = 111320, mPerDegLon = 111320 * Math.cos(Cesium.Math.toRadians(cy));
      return ring.map(([x, y]) => {
        const dx = (x - cx) * mPerDegLon, dy = (y - cy) * mPerDegLat, d = Math.hypot(dx, dy) || 1;
        return [cx + (dx * (1 + grow / d)) / mPerDegLon, cy + (dy * (1 + grow / d)) / mPerDegLat];
      });
    });
  }

  // ------------------------------------------------------------------ layer panel
  function swatch(rgb) {
    return `<span class="swatch" style="background:rgb(${rgb.join(",")})"></span>`;
  }
  function renderLayerPanel() {
    const ul = $("layers");
    const row = (id, label, cls = "", extra = "") => {
      const locked = cls.includes("locked");
      return `<li class="${cls}"><label${locked ? ` title="${t("locked")}"` : ""}><input type="checkbox" data-layer="${id}"
        ${state.visible.has(id) && !locked ? "checked" : ""} ${locked ? "disabled" : ""}> ${extra}${label}${locked ? " 🔒" : ""}</label></li>`;
    };
    const pipesLocked = state.locked.has("pipes") ? " locked" : "";
    let html = row("buildings", t("buildings")) + row("bim", t("bim"));
    html += `<li class="${pipesLocked}"${pipesLocked ? ` title="${t("locked")}"` : ""}>${t("pipes")}${pipesLocked ? " 🔒" : ""}</li>`;
    for (const u of state.utilities) {
      html += row(u.utility, state.lang === "zh" ? u.name_zh : u.name_en, "sub" + pipesLocked, swatch(u.color));
    }
    html += row("nodes", t("pipeNodes"), "sub" + pipesLocked);
    ul.innerHTML = html;
  }
  $("layers").addEventListener("change", (ev) => {
    const id = ev.target.dataset.layer;
    if (!id) return;
    if (ev.target.checked) state.visible.add(id);
    else state.visible.delete(id);
    restyle();
    writeHash();
  });

  // ------------------------------------------------------------------ tilesets
  async function loadLayers() {
    for (const ts of Object.values(tilesets)) scene.primitives.remove(ts);
    for (const k of Object.keys(tilesets)) delete tilesets[k];
    const failed = [];
    await Promise.all(LAYERS.filter((l) => !state.locked.has(l)).map(async (layer) => {
      try {
        // Pipes are thin: parents leave out what would be under a pixel or so (geometric error about a
        // diameter), so refine them sooner than the volumes of buildings and BIM elements.
        const ts = await Cesium.Cesium3DTileset.fromUrl(tileResource(layer), {
          maximumScreenSpaceError: layer === "pipes" ? 2 : 16,
        });
        ts.tileFailed.addEventListener((e) => cim.errors.push(`${layer}: ${e.url}: ${e.message}`));
        tilesets[layer] = scene.primitives.add(ts);
      } catch (e) {
        if (e.statusCode === 401 || e.statusCode === 403) state.locked.add(layer); // the key lacks the role
        else {
          failed.push(layer);
          cim.errors.push(`${layer}: ${e.message || e}`);
        }
      }
    }));
    if (tilesets.pipes) collectUtilities(tilesets.pipes);
    restyle();
    return failed;
  }
  // Utilities present in the pipe tiles, when the API did not list the categories.
  function collectUtilities(ts) {
    ts.tileLoad.addEventListener((tile) => {
      const content = tile.content;
      let added = false;
      for (let i = 0; i < content.featuresLength; i++) {
        const f = content.getFeature(i);
        const u = f.getProperty("utility");
        if (u && !state.utilities.some((x) => x.utility === u)) {
          state.utilities.push(utilityEntry(u));
          state.visible.add(u);
          added = true;
        }
      }
      if (added) {
        renderLayerPanel();
        restyle();
      }
    });
  }
  function districtSphere() {
    const spheres = Object.values(tilesets).map((ts) => ts.boundingSphere);
    return spheres.length ? Cesium.BoundingSphere.fromBoundingSpheres(spheres) : null;
  }
  cim.districtSphere = districtSphere;
  function flyHome(duration = 0) {
    const sphere = districtSphere();
    if (!sphere) return;
    scene.camera.flyToBoundingSphere(sphere, {
      duration,
      offset: new Cesium.HeadingPitchRange(0, Cesium.Math.toRadians(-40), sphere.radius * 2.0),
    });
  }
  // Resolves once every shown tileset and the globe have loaded what the current view needs.
  cim.whenLoaded = () => new Promise((resolve) => {
    let quiet = 0;
    const check = () => {
      const done = globe.tilesLoaded && Object.values(tilesets).every((ts) => !ts.show || ts.tilesLoaded);
      quiet = done ? quiet + 1 : 0;
      if (quiet >= 3) {
        scene.postRender.removeEventListener(check);
        resolve();
      } else scene.requestRender();
    };
    scene.postRender.addEventListener(check);
    scene.requestRender();
  });

  // ------------------------------------------------------------------ underground
  function setUnderground(on) {
    globe.translucency.enabled = on;
    scene.screenSpaceCameraController.enableCollisionDetection = !on;
    // Through the ground one would see the stars: a neutral backdrop reads better under a street.
    scene.skyBox.show = !on;
    scene.backgroundColor = on ? Cesium.Color.fromCssColorString("#59626b") : Cesium.Color.BLACK;
    $("underground").checked = on;
    scene.requestRender();
  }
  function setOpacity(a) {
    globe.translucency.frontFaceAlpha = a;
    globe.translucency.backFaceAlpha = a;
    $("opacity").value = a;
    $("opacity-value").textContent = a.toFixed(2);
    scene.requestRender();
  }
  $("underground").addEventListener("change", (e) => setUnderground(e.target.checked));
  $("opacity").addEventListener("input", (e) => setOpacity(Number(e.target.value)));
  cim.setUnderground = setUnderground;
  cim.setOpacity = setOpacity;

  // ------------------------------------------------------------------ picking and the side panel
  const isEmpty = (v) => v === null || v === undefined || v === "" ||
    (typeof v === "object" && Object.keys(v).length === 0);
  // float32 tile values (53.099998474) read as what was stored (53.1).
  const show = (v) => (typeof v === "number" && !Number.isInteger(v) ? String(Number(v.toPrecision(7))) : v);
  function fillTable(table, entries) {
    table.innerHTML = "";
    for (const [k, raw] of entries) {
      if (isEmpty(raw)) continue;
      const v = show(raw);
      const tr = table.insertRow();
      tr.insertCell().textContent = k;
      tr.insertCell().textContent = typeof v === "object" && v !== null ? JSON.stringify(v) : String(v);
    }
  }
  function flatten(obj, prefix = "", out = []) {
    for (const [k, v] of Object.entries(obj)) {
      if (v && typeof v === "object" && !Array.isArray(v) && !("type" in v && "coordinates" in v)) flatten(v, `${prefix}${k}.`, out);
      else if (!(v && typeof v === "object" && "coordinates" in v)) out.push([prefix + k, v]);
    }
    return out;
  }
  function select(id) {
    state.selectedId = id;
    restyle();
  }
  async function openFeature(props) {
    const id = props.id;
    $("panel-right").hidden = false;
    $("feature-title").textContent = props.name || `#${id}`;
    $("feature-sub").textContent = [props.class, `id ${id}`].filter(Boolean).join(" · ");
    fillTable($("feature-props"), Object.entries(props));
    $("record-props").innerHTML = "";
    $("bim").hidden = true;
    $("record-status").textContent = t("loading");
    select(id);
    try {
      const rec = await api(`/api/objects/${encodeURIComponent(id)}`);
      if (state.selectedId !== id) return;
      $("record-status").textContent = "";
      fillTable($("record-props"), flatten(rec.properties || rec));
      const buildingId = props.building_id ?? (isBuilding(rec) ? id : null);
      if (buildingId !== null && buildingId !== undefined) await openBuilding(buildingId, id);
    } catch (e) {
      if (state.selectedId !== id) return;
      $("record-status").textContent = e.status === 401 || e.status === 403 ? t("notAllowed") : `${t("loadFailed")} (${e.message})`;
    }
  }
  const isBuilding = (rec) => /building/i.test(String((rec.properties || rec).class || ""));
  async function openBuilding(buildingId, selectedId) {
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
    const tree = $("bim-tree");
    tree.innerHTML = "";
    for (const s of storeys) {
      const li = document.createElement("li");
      const btn = document.createElement("button");
      btn.className = "storey";
      btn.type = "button";
      btn.dataset.storey = s.id;
      btn.textContent = `${s.name || s.id}${s.elevation !== undefined && s.elevation !== null ? ` (${Number(s.elevation).toFixed(2)} m)` : ""}`;
      btn.addEventListener("click", () => showStorey(s.id, b));
      li.appendChild(btn);
      const classes = s.element_classes || s.classes || {};
      if (Object.keys(classes).length) {
        const d = document.createElement("details");
        const sum = document.createElement("summary");
        const n = Object.values(classes).reduce((a, c) => a + Number(c), 0);
        sum.textContent = `${n} ${t("elements")}`;
        d.appendChild(sum);
        const ul = document.createElement("ul");
        for (const [cls, c] of Object.entries(classes)) {
          const e = document.createElement("li");
          e.textContent = `${cls}: ${c}`;
          ul.appendChild(e);
        }
        d.appendChild(ul);
        li.appendChild(d);
      }
      tree.appendChild(li);
    }
    $("bim").hidden = false;
  }
  function showStorey(storeyId, building) {
    const storey = storeyId === null ? null : building.storeys.find((s) => String(s.id) === String(storeyId));
    state.storey = storey ? { id: storey.id, name: storey.name, buildingId: building.id, footprint: building.geometry } : null;
    document.querySelectorAll("#bim-tree button.storey").forEach((b) => b.classList.toggle("active", String(b.dataset.storey) === String(storeyId)));
    if (state.storey) {
      state.visible.add("bim");
      // Steeply from above, so that the neighbours do not stand in front of the storey.
      if (building.bbox) flyToBox(building.bbox, -70, 2.5);
    }
    restyle();
    setStatus(state.storey ? t("storeyShown") + (state.storey.name || state.storey.id) : "");
  }
  $("show-all-storeys").addEventListener("click", () => showStorey(null, null));

  function featureProps(feature) {
    const out = {};
    for (const k of feature.getPropertyIds()) {
      const v = feature.getProperty(k);
      out[k] = typeof v === "bigint" ? Number(v) : v;
    }
    return out;
  }
  function pickAt(position) {
    const picked = scene.pick(position);
    if (picked instanceof Cesium.Cesium3DTileFeature) return featureProps(picked);
    return null;
  }
  cim.pickAt = (x, y) => pickAt(new Cesium.Cartesian2(x, y));
  new Cesium.ScreenSpaceEventHandler(scene.canvas).setInputAction((click) => {
    const props = pickAt(click.position);
    if (props && props.id !== undefined) openFeature(props);
    else closePanel();
  }, Cesium.ScreenSpaceEventType.LEFT_CLICK);
  function closePanel() {
    $("panel-right").hidden = true;
    if (state.selectedId !== null) select(null);
  }
  $("panel-close").addEventListener("click", closePanel);

  // ------------------------------------------------------------------ search
  $("search").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const q = $("search-q").value.trim();
    const list = $("search-results");
    list.innerHTML = "";
    if (!q) return (list.hidden = true);
    let hits = [];
    try {
      const r = await api(`/api/search?q=${encodeURIComponent(q)}`);
      hits = r.results || r.features || r;
    } catch (e) {
      cim.errors.push(String(e));
    }
    list.hidden = false;
    if (!hits.length) {
      list.innerHTML = `<li>${t("noResults")}</li>`;
      return;
    }
    for (const h of hits.slice(0, 20)) {
      const p = h.properties || h;
      const li = document.createElement("li");
      li.tabIndex = 0;
      li.textContent = `${p.name || ""} · ${p.ifc_class || p.class || ""} · ${h.id ?? p.id}`;
      li.addEventListener("click", () => {
        list.hidden = true;
        flyToHit(h);
      });
      list.appendChild(li);
    }
  });
  // Fly to a lon/lat box from the south, `pitch` degrees down, framing it with its surroundings.
  function flyToBox([w, s, e, n], pitch = -35, zoom = 4) {
    const sphere = Cesium.BoundingSphere.fromPoints(Cesium.Cartesian3.fromDegreesArray([w, s, e, n]));
    cim.flying = true;
    scene.camera.flyToBoundingSphere(sphere, {
      duration: 1.5,
      complete: () => (cim.flying = false),
      cancel: () => (cim.flying = false),
      offset: new Cesium.HeadingPitchRange(0, Cesium.Math.toRadians(pitch), Math.max(sphere.radius * zoom, 120)),
    });
  }
  function flyToHit(h) {
    const p = h.properties || h;
    const bbox = h.bbox || p.bbox;
    if (bbox) flyToBox(bbox.length === 6 ? [bbox[0], bbox[1], bbox[3], bbox[4]] : bbox);
    openFeature({ ...p, id: h.id ?? p.id });
  }

  // ------------------------------------------------------------------ keys and language
  function renderKeyStatus() {
    $("key-status").textContent = state.key ? (state.locked.has("pipes") ? t("keyRejected") : t("keySet")) : t("keyNone");
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
  $("key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.key = $("key").value.trim();
    if (state.key) localStorage.setItem(KEY_STORE, state.key);
    else localStorage.removeItem(KEY_STORE);
    reloadAccess();
  });
  $("key-clear").addEventListener("click", () => {
    $("key").value = "";
    state.key = "";
    localStorage.removeItem(KEY_STORE);
    reloadAccess();
  });
  $("lang").addEventListener("click", () => {
    state.lang = state.lang === "zh" ? "en" : "zh";
    localStorage.setItem(LANG_STORE, state.lang);
    applyLanguage();
    writeHash();
  });

  // ------------------------------------------------------------------ start
  async function start() {
    const fromUrl = readHash();
    if (fromUrl.lang && I18N[fromUrl.lang]) state.lang = fromUrl.lang;
    $("key").value = state.key;
    applyLanguage();
    setStatus(t("loadingScene"));
    mark("viewer");
    await discoverAccess();
    mark("access");
    if (fromUrl.layers) state.visible = fromUrl.layers;
    else state.utilities.forEach((u) => state.visible.add(u.utility));
    renderLayerPanel();
    renderKeyStatus();
    const failed = await loadLayers();
    mark("tilesets");
    // Metres the tiles add to stored heights (so the district stands on the ellipsoid).
    const extras = Object.values(tilesets).map((ts) => ts.extras).find((e) => e && e.vertical_offset !== undefined);
    cim.verticalOffset = extras ? extras.vertical_offset : 0;
    const sphere = districtSphere();
    if (!sphere) {
      setStatus(t("noTiles"));
      cim.ready = true;
      return;
    }
    const centre = Cesium.Cartographic.fromCartesian(sphere.center);
    setDaylight(Cesium.Math.toDegrees(centre.longitude));
    if (fromUrl.view) applyView(fromUrl.view);
    else flyHome(0);
    scene.camera.moveEnd.addEventListener(writeHash);
    writeHash();
    await cim.whenLoaded();
    mark("loaded");
    setStatus(failed.length ? t("layerFailed") + failed.join(", ") : t("sceneReady"));
    cim.ready = true;
  }
  cim.started = start().catch((e) => {
    cim.errors.push(String(e));
    setStatus(String(e));
    cim.ready = true;
  });
})();

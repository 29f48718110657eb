// The viewer's shared state, and window.cim: what tests and benchmarks read of a running viewer.
export const KEY_STORE = "cim.apiKey";
export const LANG_STORE = "cim.lang";
export const PIPES = "pipes"; // the tile layer of every utility's segments and nodes
export const NODES = "nodes"; // the checkbox of the pipe nodes inside PIPES
export const GROUND = "ground"; // the tile layer of the city's map on the ground (roads, water, land use)

export const state = {
  lang: localStorage.getItem(LANG_STORE) || "zh",
  key: localStorage.getItem(KEY_STORE) || "",
  layers: [], // the root tileset's extras.layers: [{name, restricted}]
  categories: [], // GET /api/pipe-categories: [{utility, name_zh, name_en, color: [r,g,b], readable, has_data}]
  visible: new Set(), // layer names, utilities and NODES the user has ticked
  utilities: [], // the categories listed in the layer panel
  locked: new Set(), // layers the caller may not read
  selectedId: null,
  highlighted: [], // object ids the underground tools highlight (what a pit reaches)
  storey: null, // {id, name, buildingId, footprint}
  underground: false, // underground mode: the ground layer is as translucent as the globe
  groundAlpha: 1, // the globe's opacity while underground
  scenario: null, // the renewal plan the scene shows (tools/scenario.js); null: the as-is model (现状)
};
export const tilesets = {};
export const cim = (window.cim = { state, tilesets, viewer: null, errors: [], marks: {}, flying: false });

export const $ = (id) => document.getElementById(id);
export const mark = (what) => (cim.marks[what] = Math.round(performance.now())); // ms since navigation
export const setStatus = (msg) => ($("status").textContent = msg);

// The page's first requests, sent while Cesium.js loads and compiles (a second or more on software GL, before any
// module runs): the catalogue of tile layers and the pipe categories. http.js takes each answer once, if the
// page still has the key they were asked with. A classic script: it runs before Cesium.js.
// Once the catalogue is in, the tileset JSON of each layer it lists (a restricted one only with a key), but the
// pipes', which layers.js loads after the first view: it takes them instead of asking while the viewer's first
// frames keep the page busy.
window.cimEarly = (() => {
  const key = localStorage.getItem("cim.apiKey") || ""; // state.js: KEY_STORE
  const headers = key ? { "X-API-Key": key } : {};
  const paths = ["/tiles/tileset.json", "/api/pipe-categories"];
  const responses = new Map(paths.map((p) => [p, fetch(p, { headers })]));
  responses.get("/tiles/tileset.json").then((r) => (r.ok ? r.clone().json() : null)).then((root) => {
    for (const layer of root?.extras?.layers || [])
      if ((!layer.restricted || key) && layer.name !== "pipes") { // state.js: PIPES
        const path = `/tiles/${layer.name}/tileset.json`;
        responses.set(path, fetch(path, { headers }));
      }
  }).catch(() => {}); // the viewer asks again, and reports what fails
  return { key, responses };
})();

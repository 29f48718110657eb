// The page's first two requests, sent while Cesium.js loads and compiles (a second or more on software GL,
// before any module runs): the catalogue of tile layers and the pipe categories. http.js takes each answer
// once, if the page still has the key they were asked with. A classic script: it runs before Cesium.js.
window.cimEarly = (() => {
  const key = localStorage.getItem("cim.apiKey") || ""; // state.js: KEY_STORE
  const headers = key ? { "X-API-Key": key } : {};
  const paths = ["/tiles/tileset.json", "/api/pipe-categories"];
  return { key, responses: new Map(paths.map((p) => [p, fetch(p, { headers })])) };
})();

// HTTP to the platform only (same origin), with the API key of the key box.
import { state } from "./state.js";

const authHeaders = () => (state.key ? { "X-API-Key": state.key } : {});

// The answer prefetch.js asked for before the modules ran: once, and only with the key the page still has.
function early(path) {
  const e = window.cimEarly;
  const res = e && e.key === state.key ? e.responses.get(path) : undefined;
  if (res) e.responses.delete(path);
  return res;
}

export async function api(path) {
  const res = await (early(path) || fetch(path, { headers: authHeaders() }));
  if (!res.ok) {
    const err = new Error(`${path}: HTTP ${res.status}`);
    err.status = res.status;
    throw err;
  }
  return res.json();
}

// A layer's tileset: its JSON from prefetch.js's answer when there is one (a failed answer is asked again, for
// CesiumJS's own error), its content as CesiumJS asks for it. CesiumJS works on clones: they keep the class.
class TilesetResource extends Cesium.Resource {
  clone(result) {
    return super.clone(result ?? new TilesetResource({ url: this.url }));
  }

  fetchJson() {
    const res = early(new URL(this.url, location.href).pathname);
    return res ? res.then((r) => (r.ok ? r.json() : super.fetchJson())) : super.fetchJson();
  }
}

// Tile requests carry the key as a header; Cesium copies headers to every derived content request.
// A renewal plan's model has tiles of its own (/tiles/scenarios/NAME/...); null: the as-is model.
export const tileResource = (layer, scenario = state.scenario) =>
  new TilesetResource({ url: `${scenarioTiles(scenario)}/${layer}/tileset.json`, headers: authHeaders() });
export const scenarioTiles = (scenario) => (scenario ? `/tiles/scenarios/${encodeURIComponent(scenario)}` : "/tiles");

// Run an OGC API process synchronously; a problem's detail becomes the error message.
export async function runProcess(id, inputs) {
  const res = await fetch(`/api/processes/${id}/execution`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...authHeaders() },
    body: JSON.stringify({ inputs }),
  });
  const body = await res.json();
  if (!res.ok) throw new Error(body.detail || `HTTP ${res.status}`);
  return body;
}

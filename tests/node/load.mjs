// A real 3D Tiles client: loaders.gl parses a tileset and every content of it, decoding
// EXT_mesh_features / EXT_structural_metadata (and EXT_meshopt_compression) itself.
// Prints {tiles, features: [{id, name, class}]}: the features picked by feature id from each content.
// Usage: node load.mjs TILESET.json
import { parse } from "@loaders.gl/core";
import { readFile } from "node:fs/promises";
import { Tiles3DLoader } from "@loaders.gl/3d-tiles";
import path from "node:path";

const tilesetPath = path.resolve(process.argv[2]);
// local files: read them ourselves and let loaders.gl parse (its fetch wants URLs)
const load = async (file, options = {}) => parse((await readFile(file)).buffer, Tiles3DLoader, options);
const tileset = await parse((await readFile(tilesetPath)).buffer, Tiles3DLoader, { "3d-tiles": { isTileset: true } },
  { url: tilesetPath, baseUrl: path.dirname(tilesetPath) });
const features = [];
let tiles = 0;

async function visit(tile, base) {
  tiles += 1;
  const uri = tile.contentUrl || tile.content?.uri;
  if (uri) {
    const url = uri.startsWith("/") ? uri : path.resolve(base, uri);
    const content = await load(url, { "3d-tiles": { loadGLTF: true }, gltf: { loadBuffers: true } });
    const gltf = content.gltf;
    const meta = gltf.extensions.EXT_structural_metadata;
    const table = meta.propertyTables[0];
    const props = table.properties;
    for (const mesh of gltf.meshes) {
      for (const prim of mesh.primitives) {
        const fids = prim.extensions.EXT_mesh_features.featureIds[0].data;
        // "pick" the feature under the first and the last vertex of the primitive
        for (const v of [0, fids.length - 1]) {
          const row = fids[v];
          // a column without any value is left out of the table
          const value = (name) => (props[name] ? props[name].data[row] : null);
          features.push({ id: Number(value("id")), name: value("name"), class: value("class") });
        }
      }
    }
  }
  for (const child of tile.children || []) await visit(child, base);
}

await visit(tileset.root, path.dirname(tilesetPath));
console.log(JSON.stringify({ tiles, features }));

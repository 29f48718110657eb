"""3D Tiles 1.1: structure of every tileset, valid glb content, metadata, heights, the tile service."""
from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pyproj import Transformer

from cim_core import crs
from cim_core.model import CityObject, DatasetInfo, Mesh, PipeNode, PipeSegment
from cim_core.store import write_dataset
from services.tiles import TreeOptions, build
from services.tiles.glb import decode_positions, read_glb

NODE_DIR = Path(__file__).parent / "node"
GROUND = 52.0  # orthometric ground height of the synthetic district
SMALL = TreeOptions(leaf_features=8, leaf_triangles=2_000, parent_features=30, parent_triangles=600)


def origin():
    x, y = crs.transform(4326, 4547, np.array([114.02]), np.array([32.98]))
    return float(x[0]), float(y[0])


def box(x0, y0, z0, dx, dy, dz):
    v = np.array([[x0 + i * dx, y0 + j * dy, z0 + k * dz] for k in (0, 1) for j in (0, 1) for i in (0, 1)], float)
    f = np.array([[0, 2, 1], [1, 2, 3], [4, 5, 6], [5, 7, 6], [0, 1, 4], [1, 5, 4],
                  [2, 6, 3], [3, 6, 7], [0, 4, 2], [2, 4, 6], [1, 3, 5], [3, 7, 5]])
    return v, f


def buildings(n=40, shift=0.0, name="gis_buildings", engine=None):
    ox, oy = origin()
    objs = []
    for i in range(n):
        x, y = ox + (i % 8) * 40 + shift, oy + (i // 8) * 40
        h = 6.0 + (i * 7) % 30 + (20 if i == 3 else 0)
        w = 8.0 + (i % 5) * 3
        v, f = box(x, y, GROUND, w, 12.0, h)
        objs.append(CityObject(key=f"b{i}", cls="building", name=f"Building {i}", lod=1, mesh=Mesh(v, f),
                               footprint=shapely.box(x, y, x + w, y + 12),
                               attributes={"height": h, "floors": int(h // 3), "use": "residential",
                                           "build_year": 1980 + i}))
    return write_dataset(DatasetInfo(name, "gis", f"{name}.gpkg", name), objs, engine=engine)


def bim(engine=None):
    """One IFC building: footprint + heights, a storey, a wall, a glass window, a space."""
    ox, oy = origin()
    x, y = ox - 60, oy - 60
    wall_v, wall_f = box(x, y, GROUND, 20, 0.3, 3)
    win_v, win_f = box(x + 5, y - 0.05, GROUND + 1, 2, 0.4, 1.2)
    objs = [
        CityObject(key="bld", cls="building", name="IFC House", uid="2O2Fr$t4X7Zf8NOew3FLOH",
                   footprint=shapely.box(x, y, x + 20, y + 10), zmin=GROUND, zmax=GROUND + 6),
        CityObject(key="st0", cls="storey", name="Ground floor", parent="bld", zmin=GROUND, zmax=GROUND + 3),
        CityObject(key="wall", cls="element", ifc_class="IfcWall", uid="1wall0000000000000000A", name="Wall",
                   parent="st0", mesh=Mesh(wall_v, wall_f, np.zeros(12), [{"name": "brick",
                                                                         "color": [0.7, 0.3, 0.2, 1.0]}])),
        CityObject(key="win", cls="element", ifc_class="IfcWindow", uid="1win00000000000000000A", name="Window",
                   parent="st0", mesh=Mesh(win_v, win_f, np.r_[np.zeros(6), np.ones(6)],
                                           [{"name": "frame", "color": [1, 1, 1, 1]},
                                            {"name": "glass", "color": [0.6, 0.8, 0.9, 0.3]}])),
        CityObject(key="sp", cls="space", name="Living", parent="st0", mesh=Mesh(*box(x, y, GROUND, 20, 10, 3))),
    ]
    return write_dataset(DatasetInfo("house.ifc", "ifc", "house.ifc", "house"), objs, engine=engine)


def pipes(engine=None):
    """A water main laid 2 m below ground (axis) between two manholes, and a small gas pipe."""
    ox, oy = origin()
    line = np.array([[ox - 20, oy + 20, GROUND - 2.0], [ox + 300, oy + 20, GROUND - 2.0]])
    gas = np.array([[ox - 20, oy + 25, GROUND - 1.0], [ox + 100, oy + 25, GROUND - 1.0]])
    objs = [
        CityObject(key="m1", cls="pipe_node", name="MH1",
                   node=PipeNode("water", "manhole", (ox - 20, oy + 20, GROUND), depth=2.5, ground_z=GROUND)),
        CityObject(key="m2", cls="pipe_node", name="MH2",
                   node=PipeNode("water", "manhole", (ox + 300, oy + 20, GROUND), depth=2.5, ground_z=GROUND)),
        CityObject(key="w1", cls="pipe_segment", name="DN600 main",
                   pipe=PipeSegment("water", line, diameter_mm=600, material="ductile iron", install_year=1995,
                                    start_depth=2.0, end_depth=2.0, from_node="m1", to_node="m2")),
        CityObject(key="g1", cls="pipe_segment", name="DN100 gas",
                   pipe=PipeSegment("gas", gas, diameter_mm=100, material="PE", install_year=2010,
                                    start_depth=1.0, end_depth=1.0)),
    ]
    return write_dataset(DatasetInfo("pipes", "pipes", "pipes.gpkg", "pipes"), objs, engine=engine)


def district(db):
    buildings(engine=db)
    bim(engine=db)
    pipes(engine=db)


# ---------------------------------------------------------------- checks on a written tileset
def world_of(transform, parent):
    return parent @ (np.array(transform).reshape(4, 4).T if transform else np.eye(4))


def geodetic(ecef):
    t = Transformer.from_crs(4978, 4979, always_xy=True)
    lon, lat, h = t.transform(ecef[:, 0], ecef[:, 1], ecef[:, 2])
    return np.radians(lon), np.radians(lat), h


def inside(region, outer, tol=1e-9):
    return (region[0] >= outer[0] - tol and region[1] >= outer[1] - tol and region[2] <= outer[2] + tol
            and region[3] <= outer[3] + tol and region[4] >= outer[4] - 1e-6 and region[5] <= outer[5] + 1e-6)


def check_tileset(path: Path, parent=None) -> dict:
    """Walk one tileset (and its external ones); returns {content uri: (tile, world matrix)} of glb content."""
    ts = json.loads(path.read_text())
    assert ts["asset"]["version"] == "1.1"
    assert ts["geometricError"] >= ts["root"]["geometricError"]
    found = {}

    def walk(tile, world, parent_tile):
        world = world_of(tile.get("transform"), world)
        region = tile["boundingVolume"]["region"]
        if parent_tile is not None:
            assert tile["geometricError"] <= parent_tile["geometricError"]
            assert inside(region, parent_tile["boundingVolume"]["region"])
        uri = tile.get("content", {}).get("uri")
        if uri and uri.endswith(".json"):
            found.update({f"{Path(uri).parent}/{k}": v for k, v in check_tileset(path.parent / uri, world).items()})
        elif uri:
            found[uri] = (tile, world, path.parent / uri)
        for c in tile.get("children", []):
            walk(c, world, tile)
        if not tile.get("children"):
            assert tile["geometricError"] == 0 or uri.endswith(".json")

    walk(ts["root"], np.eye(4) if parent is None else parent, None)
    return found


def check_content(tile, world, file: Path) -> dict:
    """Content inside its tile's region, one property-table row per feature id; returns the table rows."""
    gltf, binary = read_glb(file.read_bytes())
    meta = gltf["extensions"]["EXT_structural_metadata"]
    table = meta["propertyTables"][0]
    # The CesiumGS 3d-tiles-validator (0.6.1) stops on a table that leaves out a property of its class.
    assert set(table["properties"]) == set(meta["schema"]["classes"][table["class"]]["properties"]), file
    region = tile["boundingVolume"]["region"]
    ids_seen = set()
    for enu, fid in decode_positions(gltf, binary):
        ecef = (np.column_stack([enu, np.ones(len(enu))]) @ world.T)[:, :3]
        lon, lat, h = geodetic(ecef)
        assert (lon >= region[0]).all() and (lon <= region[2]).all()
        assert (lat >= region[1]).all() and (lat <= region[3]).all()
        assert (h >= region[4]).all() and (h <= region[5]).all()
        ids_seen |= set(fid.tolist())
    assert ids_seen == set(range(table["count"]))
    for prim in gltf["meshes"][0]["primitives"]:
        assert prim["extensions"]["EXT_mesh_features"]["featureIds"][0]["featureCount"] == table["count"]
    return read_table(gltf, binary)


def read_table(gltf, binary) -> list[dict]:
    meta = gltf["extensions"]["EXT_structural_metadata"]
    table = meta["propertyTables"][0]
    schema = meta["schema"]["classes"][table["class"]]["properties"]
    views = gltf["bufferViews"]
    n = table["count"]
    cols = {}
    for name, col in table["properties"].items():
        v = views[col["values"]]
        raw = binary[v["byteOffset"]:v["byteOffset"] + v["byteLength"]]
        if schema[name]["type"] == "STRING":
            o = views[col["stringOffsets"]]
            assert o["byteLength"] == 4 * (n + 1)  # CesiumJS counts values by the view's length
            offs = np.frombuffer(binary, "<u4", n + 1, o["byteOffset"])
            cols[name] = [raw[offs[i]:offs[i + 1]].decode() for i in range(n)]
        else:
            dt = {"UINT32": "<u4", "UINT16": "<u2", "INT16": "<i2", "FLOAT32": "<f4", "FLOAT64": "<f8"}
            assert len(raw) == n * np.dtype(dt[schema[name]["componentType"]]).itemsize, name
            arr = np.frombuffer(raw, dt[schema[name]["componentType"]], n)
            nodata = schema[name].get("noData")
            cols[name] = [None if nodata is not None and x == nodata else x.item() for x in arr]
    return [{k: cols[k][i] if k in cols else None for k in schema} for i in range(n)]


def node(script: str, *args) -> dict:
    """Run one of tests/node's scripts (installing its packages on first use); its JSON output."""
    if not (NODE_DIR / "node_modules" / "@loaders.gl" / "3d-tiles").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, capture_output=True)
    out = subprocess.run(["node", str(NODE_DIR / script), *map(str, args)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def gltf_validate(files: list[Path]) -> dict:
    return node("validate.mjs", *files)


# ---------------------------------------------------------------- tests
def test_tilesets_structure_content_and_metadata(db, tmp_path):
    district(db)
    report = build(tmp_path, engine=db, opts=SMALL)
    assert {r.layer: r.features for r in report.layers} == {"buildings": 41, "bim": 2, "pipes": 4, "ground": 0}
    contents = check_tileset(tmp_path / "tileset.json")
    with db.connect() as c:
        names = dict(c.execute(sa.text("select id, name from city_objects")).all())
    layers_of = {}
    for uri, (tile, world, file) in contents.items():
        rows = check_content(tile, world, file)
        for r in rows:
            if r["class"] == "block":  # merged mass of many buildings: no single object
                assert r["id"] is None and "children" in tile
            else:
                assert names[r["id"]] == r["name"]  # the feature's id is the database id
        layers_of.setdefault(uri.split("/")[0], []).append((tile, rows))
    # buildings: a tree whose parents draw merged mass; the root alone shows every building as part of a block
    b = json.loads((tmp_path / "buildings" / "tileset.json").read_text())
    assert b["root"]["children"] and b["root"]["geometricError"] > 0
    root_tile, root_rows = next((t, rows) for t, rows in layers_of["buildings"] if t["extras"]["quad"] == "0/0/0")
    assert root_rows and len(root_rows) <= 41  # a house alone is itself (its id), houses merged are a block
    # the tallest (Building 3, 47 m) keeps its height within the root's error
    assert max(r["height"] for r in root_rows) >= 47 - root_tile["geometricError"]
    leaf_rows = [r for tile, rows in layers_of["buildings"] if "children" not in tile for r in rows]
    assert len(leaf_rows) == 41  # every building once at full detail, the IFC house as an LOD1 block
    house = next(r for r in leaf_rows if r["name"] == "IFC House")
    assert house["height"] == pytest.approx(6.0)
    b3 = next(r for r in leaf_rows if r["name"] == "Building 3")
    assert (b3["floors"], b3["use"], b3["build_year"]) == (15, "residential", 1983)
    # bim: elements with storey and building, spaces left out; glass is blended
    bim_rows = [r for tile, rows in layers_of["bim"] for r in rows]
    assert {r["ifc_class"] for r in bim_rows} == {"IfcWall", "IfcWindow"}
    assert all(r["storey_name"] == "Ground floor" and r["building_id"] for r in bim_rows)
    bim_file = next(f for u, (t, w, f) in contents.items() if u.startswith("bim"))
    mats = read_glb(bim_file.read_bytes())[0]["materials"]
    glass = [m for m in mats if m["pbrMetallicRoughness"]["baseColorFactor"][3] < 1]
    assert glass and all(m["alphaMode"] == "BLEND" for m in glass)
    # pipes: CJJ 61 colours
    pipe_file = next(f for u, (t, w, f) in contents.items() if u.startswith("pipes"))
    colors = {tuple(round(c * 255) for c in m["pbrMetallicRoughness"]["baseColorFactor"][:3])
              for m in read_glb(pipe_file.read_bytes())[0]["materials"]}
    assert {(0, 255, 255), (255, 0, 255)} <= colors
    # every content file passes the Khronos validator
    result = gltf_validate([f for _, _, f in contents.values()])
    assert result["files"] == len(contents)
    assert result["errors"] == [], result["errors"][:3]


def test_pipe_two_metres_below_ground_lies_two_metres_below_the_ellipsoid(db, tmp_path):
    district(db)
    report = build(tmp_path, ["pipes"], engine=db)
    assert report.vertical_offset == pytest.approx(-GROUND)
    contents = check_tileset(tmp_path / "pipes" / "tileset.json")
    (_, world, file), = contents.values()
    gltf, binary = read_glb(file.read_bytes())
    rows = read_table(gltf, binary)
    main = next(i for i, r in enumerate(rows) if r["name"] == "DN600 main")
    pts = np.vstack([enu[fid == main] for enu, fid in decode_positions(gltf, binary)])
    _, _, h = geodetic((np.column_stack([pts, np.ones(len(pts))]) @ world.T)[:, :3])
    # the tube of 0.6 m around an axis 2 m deep
    assert (h.min() + h.max()) / 2 == pytest.approx(-2.0, abs=0.05)
    assert h.max() == pytest.approx(-1.7, abs=0.05)
    assert rows[main]["depth"] == pytest.approx(2.0) and rows[main]["utility"] == "water"


def test_loaders_gl_loads_buildings_and_ids_match_database(db, tmp_path):
    district(db)
    build(tmp_path, ["buildings"], engine=db, opts=SMALL)
    loaded = node("load.mjs", tmp_path / "buildings" / "tileset.json")
    with db.connect() as c:
        ids = {r.name: r.id for r in c.execute(sa.text("select id, name from city_objects where class='building'"))}
    assert loaded["tiles"] >= 2
    assert loaded["features"], "no feature read through EXT_structural_metadata"
    for f in loaded["features"]:
        assert ids[f["name"]] == f["id"]


def test_building_one_layer_keeps_the_others(db, tmp_path):
    """`cim tiles build --layer bim` rebuilds BIM and leaves the other layers in the root; the next incremental
    build still sees a change made before that partial build."""
    district(db)
    build(tmp_path, engine=db, opts=SMALL)
    buildings(2, shift=1000.0, name="late", engine=db)  # changed after the full build
    report = build(tmp_path, ["bim"], engine=db, opts=SMALL)
    assert [r.layer for r in report.layers] == ["bim"]
    root = json.loads((tmp_path / "tileset.json").read_text())
    assert [la["name"] for la in root["extras"]["layers"]] == ["buildings", "bim", "pipes"]  # ground: empty
    check_tileset(tmp_path / "tileset.json")
    again = {r.layer: r for r in build(tmp_path, engine=db, opts=SMALL, incremental=True).layers}
    assert again["buildings"].features == 43 and again["buildings"].rebuilt > 0


def test_bad_layer_is_refused(db, tmp_path):
    from cim_core.errors import InputError
    with pytest.raises(InputError, match="unknown tile layer 'roads'"):
        build(tmp_path, ["roads"], engine=db)


# ---------------------------------------------------------------- the service
@pytest.fixture
def client(db, tmp_path, monkeypatch):
    monkeypatch.setenv("CIM_HOME", str(tmp_path / "home"))
    from cim_core.settings import get_settings
    get_settings.cache_clear()
    from services.tiles import service
    service.reset()
    app = FastAPI()
    app.include_router(service.router)
    with TestClient(app) as c:
        yield c
    service.reset()


def test_service_etag_gzip_and_incremental_rebuild(db, client, monkeypatch):
    buildings(n=64, engine=db)
    pipes(engine=db)
    from services.tiles import service
    monkeypatch.setattr(service, "OPTIONS", SMALL)
    r = client.get("/tiles/tileset.json", headers={"accept-encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert r.json()["asset"]["version"] == "1.1"
    assert r.headers["cache-control"] == "public, no-cache"
    assert client.get("/tiles/tileset.json", headers={"if-none-match": r.headers["etag"]}).status_code == 304
    ts = client.get("/tiles/buildings/tileset.json").json()
    tiles = {}

    def walk(t):
        if "content" in t:
            tiles[t["extras"]["quad"]] = t["content"]["uri"]
        for c in t.get("children", []):
            walk(c)

    walk(ts["root"])
    assert len(tiles) > 4
    etags = {}
    for key, uri in tiles.items():
        resp = client.get(f"/tiles/buildings/{uri}")
        assert resp.status_code == 200 and resp.content[:4] == b"glTF"
        assert resp.headers["content-type"] == "model/gltf-binary" and "max-age" in resp.headers["cache-control"]
        etags[key] = resp.headers["etag"]
    assert client.get(f"/tiles/buildings/{tiles['0/0/0']}",
                      headers={"if-none-match": etags["0/0/0"]}).status_code == 304
    pipe_etag = client.get("/tiles/pipes/tileset.json").headers["etag"]
    # re-import one small dataset in a corner: only the tiles over that corner change
    ox, oy = origin()
    v, f = box(ox + 1, oy + 1, GROUND, 5, 5, 40)
    write_dataset(DatasetInfo("kiosk", "gis", "kiosk.gpkg", "kiosk"),
                  [CityObject(key="k", cls="building", name="Kiosk", mesh=Mesh(v, f), attributes={"height": 40})],
                  engine=db)
    service.reset_clock()
    ts2 = client.get("/tiles/buildings/tileset.json").json()
    report = service.last_report()
    layer = next(la for la in report.layers if la.layer == "buildings")
    assert 0 < layer.rebuilt < layer.tiles and layer.reused > 0
    assert next(la for la in report.layers if la.layer == "pipes").skipped
    assert client.get("/tiles/pipes/tileset.json").headers["etag"] == pipe_etag
    tiles2 = {}

    def walk2(t):
        if "content" in t:
            tiles2[t["extras"]["quad"]] = t["content"]["uri"]
        for c in t.get("children", []):
            walk2(c)

    walk2(ts2["root"])
    changed = unchanged = 0
    far_quad = None
    for key, uri in tiles2.items():
        etag = client.get(f"/tiles/buildings/{uri}").headers["etag"]
        if key in etags and etags[key] == etag:
            unchanged += 1
            far_quad = key
        else:
            changed += 1
    assert changed >= 2 and unchanged >= 2  # the kiosk's leaf and root changed, far tiles kept their ETag
    assert etags["0/0/0"] != client.get(f"/tiles/buildings/{tiles2['0/0/0']}").headers["etag"]
    assert far_quad is not None


def test_service_unknown_layer_and_file(client, db):
    buildings(n=3, engine=db)
    assert client.get("/tiles/roads/tileset.json").status_code == 404
    assert client.get("/tiles/buildings/9/9/9.glb").status_code == 404
    assert client.get("/tiles/buildings/..%2F..%2Fstate.json").status_code == 404


def test_cli_tiles_build(db, cli_env, tmp_path):
    district(db)
    cli_env = {**cli_env, "COLUMNS": "200"}
    cim = str(Path(__file__).parent.parent / ".venv" / "bin" / "cim")
    r = subprocess.run([cim, "tiles", "build", "--layer", "buildings", "--layer", "pipes", "--out", str(tmp_path)],
                       env=cli_env, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert "buildings" in r.stdout and "pipes" in r.stdout and "vertical offset -52.00 m" in r.stdout
    root = json.loads((tmp_path / "tileset.json").read_text())
    assert [c["content"]["uri"] for c in root["root"]["children"]] == ["buildings/tileset.json", "pipes/tileset.json"]
    assert root["extras"]["vertical_offset"] == -52.0
    bad = subprocess.run([cim, "tiles", "build", "--layer", "roads", "--out", str(tmp_path)], env=cli_env,
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 1 and bad.stderr.strip().startswith("error: unknown tile layer 'roads'")


def test_sample_district_export_is_valid(db, cli_env, tmp_path):
    """The sample district, imported as a user would (the manifest's `cim import` commands), exports valid tiles."""
    cim = str(Path(__file__).parent.parent / ".venv" / "bin" / "cim")
    district_dir = tmp_path / "district"
    subprocess.run([cim, "sample", "generate", "--out", str(district_dir), "--scale", "0.1"], env=cli_env,
                   check=True, capture_output=True)
    manifest = json.loads((district_dir / "manifest.json").read_text())
    commands = [la["command"] for f in manifest["files"] for la in f.get("layers", [])]
    commands += [f["command"] for f in manifest["files"] if "command" in f]
    for cmd in filter(None, commands):  # files without an import command carry null
        r = subprocess.run([cim, *shlex.split(cmd)[1:], "--force"], cwd=district_dir, env=cli_env,
                           capture_output=True, text=True, check=False)
        assert r.returncode == 0, f"{cmd}: {r.stderr[-500:]}"
    report = build(tmp_path / "tiles", engine=db)
    counts = {r.layer: r.features for r in report.layers}
    assert counts["buildings"] > 100 and counts["bim"] > 100 and counts["pipes"] > 100, counts
    contents = check_tileset(tmp_path / "tiles" / "tileset.json")
    for tile, world, file in contents.values():
        check_content(tile, world, file)
    result = gltf_validate([f for _, _, f in contents.values()])
    assert result["files"] == len(contents) and result["errors"] == [], result["errors"][:3]


def test_glb_quantised_and_meshopt_decode_to_the_same_vertices(tmp_path):
    from services.tiles.glb import Primitive, write_glb

    vs, fs, fid = [], [], []
    for i in range(50):
        v, f = box(i * 15.0, (i % 7) * 20.0, 0.0, 10 + i % 3, 12, 20 + i % 5)
        fs.append(f + 8 * i)
        vs.append(v)
        fid.append(np.full(8, i))
    v = np.vstack(vs) - np.vstack(vs).mean(axis=0)
    props = {"id": ("UINT32", list(range(1, 51))), "name": ("STRING", [f"B{i}" for i in range(50)])}
    files, decoded = [], []
    for meshopt in (False, True):
        data = write_glb([Primitive(v, np.vstack(fs), np.concatenate(fid), (1, 1, 1, 1))], "building", props, 50,
                         meshopt=meshopt)
        files.append(tmp_path / f"t{meshopt}.glb")
        files[-1].write_bytes(data)
        gltf, binary = read_glb(data)
        assert ("EXT_meshopt_compression" in gltf["extensionsRequired"]) == meshopt
        (pos, ids), = decode_positions(gltf, binary)
        decoded.append({(tuple(np.round(p, 2)), int(i)) for p, i in zip(pos, ids)})
        assert np.abs(pos).max() <= np.abs(v).max() + 0.01  # dequantised within a centimetre
        assert [r["name"] for r in read_table(gltf, binary)] == [f"B{i}" for i in range(50)]
    assert decoded[0] == decoded[1]
    assert len(files[1].read_bytes()) < len(files[0].read_bytes()) / 2
    assert gltf_validate(files)["errors"] == []


def test_vertex_colours_batch_primitives_per_render_state(tmp_path):
    from services.tiles.glb import Primitive, decode_vertices, write_glb

    v, f = box(0.0, 0.0, 0.0, 10, 10, 10)
    colours = [(1.0, 0.0, 0.0, 1.0), (0.0, 0.4, 0.0, 1.0), (0.2, 0.6, 1.0, 0.5)]  # two opaque, one glass
    prims = [Primitive(v + 20 * i, f, np.full(8, i), c) for i, c in enumerate(colours)]
    props = {"id": ("UINT32", [1, 2, 3])}
    files = []
    for meshopt in (False, True):
        data = write_glb(prims, "building", props, 3, meshopt=meshopt, vertex_colors=True)
        files.append(tmp_path / f"c{meshopt}.glb")
        files[-1].write_bytes(data)
        gltf, binary = read_glb(data)
        # the two opaque colours are one primitive, the translucent one another (it blends, double-sided)
        mats = [gltf["materials"][p["material"]] for p in gltf["meshes"][0]["primitives"]]
        assert [m.get("alphaMode", "OPAQUE") for m in mats] == ["OPAQUE", "BLEND"]
        assert all(m["pbrMetallicRoughness"]["baseColorFactor"] == [1.0, 1.0, 1.0, 1.0] for m in mats)
        opaque, glass = decode_vertices(gltf, binary)
        by_feature = {int(i): tuple(int(x) for x in c) for i, c in zip(opaque["f"], opaque["c"])}
        # linear, as glTF wants them: sRGB 0.4 is 0.133 (34/255), 0.2 is 0.033 and 0.6 is 0.319; alpha as it is
        assert by_feature == {0: (255, 0, 0, 255), 1: (0, 34, 0, 255)}
        assert {tuple(int(x) for x in c) for c in glass["c"]} == {(8, 81, 255, 128)}
        assert set(glass["f"].tolist()) == {2}
    assert gltf_validate(files)["errors"] == []


def test_merged_mass_joins_what_lies_closer_than_the_tolerance():
    """A quad of 4,096 m merges within 4 m: two houses 2 m apart become one mass, a third 30 m away and a tower
    beside them (another height band) stay apart; the error covers the roofs' difference from the mass top."""
    from services.tiles.mass import block_masses
    from services.tiles.source import Feature

    def house(x, w, h):
        fp = shapely.box(x, 0, x + w, 10)
        v, f = box(x, 0, 0, w, 10, h)
        return Feature(id=int(x), cls="building", name=None, vertices=v, faces=f, face_colors=np.zeros(12, int),
                       colors=[(1, 1, 1, 1)], props={"use": "residential", "height": h}, footprint=fp, zmin=0.0,
                       zmax=h)

    masses, error = block_masses([house(0, 20, 9), house(22, 20, 10), house(72, 20, 9), house(-30, 20, 60)], 4096)
    rows = sorted(((r["height"], r["class"], r["id"], r["use"]) for r, v, fc, part in masses), key=lambda r: r[0])
    # alone, a house is its own feature (id, attributes); merged, the houses are a block without an id
    assert [r[:3] for r in rows] == [(9, "building", 72), (pytest.approx(9.5), "block", None), (60, "building", -30)]
    assert {r[3] for r in rows} == {"residential"}
    assert error == pytest.approx(4.0)  # the tolerance; the roofs differ from their mass top by 0.5 m
    merged = next(v for r, v, fc, part in masses if r["height"] == pytest.approx(9.5))
    assert np.ptp(merged[:, 0]) == pytest.approx(42, abs=2.1)  # both houses and the gap between them

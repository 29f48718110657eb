"""The `ground` tile layer: roads (widened centre lines and given ribbons), water, green and land use by
GB 50137 class, compounds as a boundary band, flat at their ground height, coloured from the data table."""
from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from test_tiles import SMALL, check_content, check_tileset
from test_tiles import origin as tile_origin

from cim_core.model import CityObject, DatasetInfo
from cim_core.store import write_dataset
from services.tiles import build
from services.tiles.glb import decode_vertices, linear, read_glb
from services.tiles.ground import GROUND_LIFT_M, LINE_WIDTH_M, ROAD_WIDTH, landuse_code, styles


def ground_objects(x0: float, y0: float):
    box = shapely.box
    return [
        CityObject(key="road-a", cls="road", name="驿城大道", attributes={"road_class": "arterial"},
                   footprint=shapely.LineString([(x0, y0), (x0 + 300, y0)]), zmin=50.0, zmax=50.0),
        CityObject(key="road-w", cls="road", name="Lane", attributes={"road_class": "local", "width_m": 6.0},
                   footprint=shapely.LineString([(x0, y0 + 100), (x0 + 300, y0 + 100)]), zmin=50.0, zmax=50.0),
        CityObject(key="river", cls="water", name="练江河", footprint=box(x0, y0 - 80, x0 + 300, y0 - 50), zmin=49.0),
        CityObject(key="bank", cls="water", name="Bank", attributes={"kind": "water"},
                   footprint=shapely.LineString([(x0, y0 - 50), (x0 + 100, y0 - 50)]), zmin=49.5),
        CityObject(key="park", cls="green", name="Park", attributes={"kind": "park"},
                   footprint=box(x0 + 10, y0 + 30, x0 + 60, y0 + 80), zmin=50.0),
        CityObject(key="lu-r", cls="landuse", name="R parcel", attributes={"landuse": "residential"},
                   footprint=box(x0 + 100, y0 + 30, x0 + 200, y0 + 90), zmin=50.0),
        CityObject(key="lu-b", cls="landuse", name="B parcel", attributes={"landuse": "B1"},
                   footprint=box(x0 + 210, y0 + 30, x0 + 290, y0 + 90), zmin=50.0),
        CityObject(key="compound", cls="landuse", name="幸福小区", attributes={"households": 320},
                   footprint=box(x0 + 100, y0 + 30, x0 + 200, y0 + 90), zmin=50.0),
    ]


def test_landuse_codes():
    assert [landuse_code(v) for v in ("R2", "a33", "B", "residential", "Education", "G1", "meadow", None)] == \
        ["R", "A", "B", "R", "A", "G", "", ""]


@pytest.fixture
def ground(db):
    x0, y0 = tile_origin()
    write_dataset(DatasetInfo("ground", "gis", "/data/ground.gpkg", "ground-sha", "EPSG:4547"),
                  ground_objects(x0, y0), engine=db)
    return db


def test_ground_layer_is_flat_coloured_and_pickable(ground, tmp_path):
    report = build(tmp_path, ["ground"], engine=ground, opts=SMALL)
    assert [(r.layer, r.features) for r in report.layers] == [("ground", 8)]
    root = json.loads((tmp_path / "tileset.json").read_text())
    assert root["extras"]["layers"] == [{"name": "ground", "restricted": False}]
    contents = check_tileset(tmp_path / "tileset.json")
    leaves = {}
    colors = set()
    for tile, world, file in contents.values():
        rows = check_content(tile, world, file)
        if not tile.get("children"):
            leaves.update({r["name"]: r for r in rows})
        gltf, binary = read_glb(file.read_bytes())
        # one primitive per tile, the colours in its vertices (COLOR_0), the material white
        assert len(gltf["meshes"][0]["primitives"]) == 1
        assert gltf["materials"][0]["pbrMetallicRoughness"]["baseColorFactor"] == [1.0, 1.0, 1.0, 1.0]
        colors |= {tuple(int(c) for c in rgba[:3]) for v in decode_vertices(gltf, binary) for rgba in v["c"]}
    assert set(leaves) == {"驿城大道", "Lane", "练江河", "Bank", "Park", "R parcel", "B parcel", "幸福小区"}
    # an arterial without a width is drawn at its class's width; a given width wins
    assert leaves["驿城大道"]["area_m2"] == pytest.approx(300 * ROAD_WIDTH["arterial"], rel=1e-3)
    assert leaves["Lane"]["area_m2"] == pytest.approx(300 * 6.0, rel=1e-3)
    assert leaves["Bank"]["area_m2"] == pytest.approx(100 * LINE_WIDTH_M, rel=1e-3)  # a line of no width
    assert (leaves["R parcel"]["kind"], leaves["B parcel"]["kind"], leaves["驿城大道"]["kind"]) == ("R", "B", "arterial")
    # the compound is a band along its boundary, not a second fill over its parcel
    assert leaves["幸福小区"]["kind"] == "compound"
    assert leaves["幸福小区"]["area_m2"] == pytest.approx(2 * (100 + 60) * 1.5, rel=0.02)
    # the style table's sRGB colours, linear as glTF wants them, drawn without light
    want = [linear(styles()[k][0][:3]) * 255 for k in ("road", "water", "green", "landuse:R", "landuse:B", "compound")]
    assert all(any(np.abs(np.subtract(c, w)).max() <= 1 for c in colors) for w in want), (want, colors)
    assert all(m["extensions"] == {"KHR_materials_unlit": {}} for m in gltf["materials"])
    assert "KHR_materials_unlit" in gltf["extensionsUsed"]


def test_a_ground_surface_without_height_lies_at_the_median_ground_of_the_buildings(ground):
    from services.tiles.ground import load_ground

    x0, y0 = tile_origin()
    write_dataset(DatasetInfo("flat", "gis", "/data/flat.gpkg", "flat-sha", "EPSG:4547"), [
        CityObject(key="no-z", cls="road", name="No height", footprint=shapely.LineString([(x0, y0), (x0, y0 + 50)]),
                   zmin=0.0),
        *[CityObject(key=f"b{i}", cls="building", footprint=shapely.box(x0 + 20 * i, y0, x0 + 20 * i + 5, y0 + 5),
                     zmin=50.0 + i, zmax=60.0) for i in range(3)]], engine=ground)
    with ground.connect() as c:
        f = next(f for f in load_ground(c) if f.name == "No height")
    assert np.allclose(f.vertices[:, 2], 51.0 + styles()["road"][1] + GROUND_LIFT_M)


def test_ground_lies_at_its_height_plus_its_lift(ground, tmp_path):
    from services.tiles.ground import load_ground

    with ground.connect() as c:
        feats = {f.name: f for f in load_ground(c)}
    for name, key, z in (("练江河", "water", 49.0), ("驿城大道", "road", 50.0), ("R parcel", "landuse:R", 50.0)):
        f = feats[name]
        assert np.allclose(f.vertices[:, 2], z + styles()[key][1] + GROUND_LIFT_M)
        assert np.ptp(f.vertices[:, 2]) == 0 and len(f.faces) >= 2

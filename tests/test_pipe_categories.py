"""What the viewer reads from the server instead of keeping a copy: the CJJ 61 pipe utilities
(GET /api/pipe-categories) and the tile layers of the root tileset (extras.layers)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient

from cim_core.model import CityObject, DatasetInfo, PipeNode, PipeSegment
from cim_core.store import write_dataset
from services import auth
from services.app import create_app
from services.tiles import build

X0, Y0 = 501800.0, 3649500.0  # near 114.02E 32.98N in EPSG:4547
UTILITIES = {"water", "rain", "sewage", "combined", "gas", "heat", "power", "telecom", "unknown"}


def network(utility: str, dy: float) -> list[CityObject]:
    """Two nodes and the segment between them, along y = Y0 + dy."""
    p = utility[0]
    ends = [(X0 + 100 * i, Y0 + dy, 0.0) for i in range(2)]
    nodes = [CityObject(key=f"{p}{i}", cls="pipe_node", node=PipeNode(utility, "valve", xyz))
             for i, xyz in enumerate(ends)]
    line = np.array([[X0, Y0 + dy, -1.5], [X0 + 100, Y0 + dy, -1.6]])
    seg = CityObject(key=f"{p}s", cls="pipe_segment", name=f"{utility} main",
                     pipe=PipeSegment(utility, line, diameter_mm=200, from_node=f"{p}0", to_node=f"{p}1"))
    return [*nodes, seg]


def info(name: str) -> DatasetInfo:
    return DatasetInfo(name=name, kind="test", source_path=f"/data/{name}", sha256=name,
                       source_crs="EPSG:4547")


@pytest.fixture
def city(db):
    write_dataset(info("network"), network("water", 0) + network("gas", 10), engine=db)
    block = CityObject(key="b0", cls="building", name="Block", attributes={"height": 12.0},
                       footprint=shapely.box(X0, Y0 + 50, X0 + 10, Y0 + 60), zmin=0.0, zmax=12.0)
    write_dataset(info("blocks"), [block], engine=db)
    return db


@pytest.fixture
def client(city):
    with TestClient(create_app()) as c:
        yield c


def categories(client, key: str | None = None) -> dict[str, dict]:
    r = client.get("/api/pipe-categories", headers={"X-API-Key": key} if key else {})
    assert r.status_code == 200, r.text
    return {c["utility"]: c for c in r.json()["categories"]}


def test_names_and_colours_for_all_access_and_data_per_caller(client, city):
    anonymous = categories(client)
    assert set(anonymous) == UTILITIES
    water = anonymous["water"]
    assert (water["name_zh"], water["name_en"], water["cjj_code"]) == ("给水", "water supply", "JS")
    assert water["color"] == [0, 255, 255]
    assert anonymous["gas"]["color"] == [255, 0, 255] and anonymous["rain"]["color"] == [76, 57, 38]
    assert water["collection"] == "pipes_water"
    # Every utility is restricted: an anonymous caller may read none, nor learn which have data.
    assert all(c["restricted"] and not c["readable"] and c["has_data"] is None for c in anonymous.values())

    _, water_key = auth.create_key("water", engine=city)
    by_water = categories(client, water_key)
    assert {u for u, c in by_water.items() if c["readable"]} == {"water"}
    assert by_water["water"]["has_data"] is True and by_water["gas"]["has_data"] is None

    _, utilities_key = auth.create_key("utilities", engine=city)
    by_utilities = categories(client, utilities_key)
    assert all(c["readable"] for c in by_utilities.values())
    assert {u for u, c in by_utilities.items() if c["has_data"]} == {"water", "gas"}
    assert all(c["has_data"] is False for u, c in by_utilities.items() if u not in ("water", "gas"))
    # Names and colours are the same for every caller.
    assert all(by_utilities[u]["name_zh"] == c["name_zh"] and by_utilities[u]["color"] == c["color"]
               for u, c in anonymous.items())

    bad = client.get("/api/pipe-categories", headers={"X-API-Key": "cim_not-a-key"})
    assert bad.status_code == 401 and bad.headers["content-type"].startswith("application/problem+json")


def test_pipe_categories_in_the_openapi(client):
    spec = client.get("/api/openapi.json").json()
    ok = spec["paths"]["/api/pipe-categories"]["get"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"]["$ref"].endswith("/PipeCategories")
    schema = spec["components"]["schemas"]["PipeCategory"]
    assert {"utility", "name_zh", "name_en", "color", "readable", "has_data"} <= set(schema["properties"])
    assert spec["components"]["schemas"]["PipeCategories"]["examples"][0]["categories"]


def test_root_tileset_lists_its_layers_and_which_are_restricted(city, tmp_path):
    build(tmp_path, engine=city)
    root = json.loads((tmp_path / "tileset.json").read_text())
    assert root["extras"]["layers"] == [{"name": "buildings", "restricted": False},
                                        {"name": "pipes", "restricted": True}]

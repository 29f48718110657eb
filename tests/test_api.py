"""Features and BIM API: OGC API - Features items, CRS, CQL2, paging, BIM detail, access control, errors."""
from __future__ import annotations

import datetime as dt
import subprocess
from urllib.parse import quote

import numpy as np
import orjson
import pytest
import shapely
import sqlalchemy as sa
from conftest import DATA
from fastapi.testclient import TestClient

from cim_core.crs import transform
from cim_core.model import CityObject, DatasetInfo, Mesh, PipeNode, PipeSegment
from cim_core.store import write_dataset
from services import auth
from services.app import create_app

X0, Y0 = 501800.0, 3649500.0  # easting, northing near 114.02E 32.98N in EPSG:4547
GRID = 100  # buildings per row, 20 m apart


def lonlat(x, y):
    lon, lat = transform(4547, 4326, [x], [y])
    return float(lon[0]), float(lat[0])


def buildings(n: int, prefix: str = "b"):
    """n box buildings on a 20 m grid; every 10th has no name, years cycle 1980..1999."""
    for i in range(n):
        x, y = X0 + (i % GRID) * 20, Y0 + (i // GRID) * 20
        attrs = {"height": float(10 + i % 7), "floors": 3 + i % 4, "year": 1980 + i % 20,
                 "roof": "flat" if i % 2 else "gable", "heritage": i % 50 == 0}
        yield CityObject(key=f"{prefix}{i}", cls="building", uid=f"{prefix}-uid-{i}",
                         name=None if i % 10 == 9 else f"Block {i:05d}", attributes=attrs,
                         footprint=shapely.box(x, y, x + 10, y + 10), zmin=0.0, zmax=attrs["height"],
                         valid_from=dt.date(2000 + i % 20, 1, 1), valid_to=dt.date(2030, 1, 1) if i % 3 == 0 else None)


def info(name: str) -> DatasetInfo:
    return DatasetInfo(name=name, kind="test", source_path=f"/data/{name}", sha256=name, source_crs="EPSG:4547")


def pipes():
    """Two utilities: water w0-w1-w2 (segments ws0, ws1) and gas g0-g1 (segment gs0), along y = Y0 - 50."""
    y = Y0 - 50
    objs = []
    for u, n in (("water", 3), ("gas", 2)):
        p = u[0]
        for i in range(n):
            objs.append(CityObject(key=f"{p}{i}", cls="pipe_node", name=f"{u} node {i}",
                                   node=PipeNode(u, "valve" if i else "hydrant", (X0 + 100 * i, y + (5 if p == "g" else 0), 0.0),
                                                 depth=1.5)))
        for i in range(n - 1):
            line = np.array([[X0 + 100 * i, y + (5 if p == "g" else 0), -1.5], [X0 + 100 * (i + 1), y + (5 if p == "g" else 0), -1.6]])
            objs.append(CityObject(key=f"{p}s{i}", cls="pipe_segment", name=f"{u} main {i}", uid=f"{p}s-uid-{i}",
                                   attributes={"status": "in service"},
                                   pipe=PipeSegment(u, line, diameter_mm=300 if p == "w" else 160, material="PE",
                                                    install_year=1995, from_node=f"{p}{i}", to_node=f"{p}{i + 1}")))
    return objs


def bim_tree():
    """A building with 2 storeys; each storey has 2 spaces, and walls/slabs/doors with property sets."""
    x, y = X0 - 200, Y0
    v = np.array([[x, y, 0], [x + 20, y, 0], [x + 20, y + 20, 0], [x, y + 20, 0]], float)
    mesh = Mesh(np.vstack([v, v + [0, 0, 7]]), np.array([[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7]]))
    objs = [CityObject(key="H", cls="building", uid="2O2Fr$t4X7Zf8NOew3FLOH", name="Haus", ifc_class="IfcBuilding",
                       attributes={"Pset_BuildingCommon": {"YearOfConstruction": 1998}, "address": "1 Main St"},
                       footprint=shapely.box(x, y, x + 20, y + 20), mesh=mesh)]
    for s in range(2):
        objs.append(CityObject(key=f"S{s}", cls="storey", parent="H", uid=f"storey-{s}", name=f"Floor {s}",
                               ifc_class="IfcBuildingStorey", zmin=3.5 * s, zmax=3.5 * (s + 1)))
        for r in range(2):
            objs.append(CityObject(key=f"R{s}{r}", cls="space", parent=f"S{s}", uid=f"space-{s}{r}",
                                   name=f"Room {s}.{r}", ifc_class="IfcSpace",
                                   footprint=shapely.box(x + 10 * r, y, x + 10 * (r + 1), y + 20)))
            objs.append(CityObject(key=f"D{s}{r}", cls="element", parent=f"R{s}{r}", uid=f"door-{s}{r}",
                                   name="Door", ifc_class="IfcDoor",
                                   attributes={"Pset_DoorCommon": {"FireRating": "EI30"}},
                                   footprint=shapely.box(x + 10 * r, y, x + 10 * r + 1, y + 0.2)))
        for w in range(4):
            objs.append(CityObject(key=f"W{s}{w}", cls="element", parent=f"S{s}", uid=f"wall-{s}{w}", name="Wall",
                                   ifc_class="IfcWall", attributes={"Pset_WallCommon": {"IsExternal": True}},
                                   footprint=shapely.box(x + 5 * w, y, x + 5 * w + 0.3, y + 20)))
        objs.append(CityObject(key=f"F{s}", cls="element", parent=f"S{s}", uid=f"slab-{s}", name="Slab",
                               ifc_class="IfcSlab", footprint=shapely.box(x, y, x + 20, y + 20)))
    return objs


@pytest.fixture
def city(db):
    write_dataset(info("blocks"), buildings(300), engine=db)
    write_dataset(info("network"), pipes(), engine=db)
    write_dataset(info("haus.ifc"), bim_tree(), engine=db)
    return db


@pytest.fixture
def client(city):
    with TestClient(create_app()) as c:
        yield c


def ids_of(engine, keys) -> dict[str, int]:
    with engine.connect() as c:
        return dict(c.execute(sa.text("select key, id from city_objects where key = any(:k)"), {"k": list(keys)}).all())


def names(resp) -> set:
    assert resp.status_code == 200, resp.text
    return {f["properties"].get("name") for f in resp.json()["features"]}


def problem(resp, status: int) -> str:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["status"] == status and body["detail"]
    return body["detail"]


# ---------------------------------------------------------------- core, CRS
def test_landing_conformance_and_collections(client):
    landing = client.get("/api").json()
    assert {"service-desc", "conformance", "data"} <= {link["rel"] for link in landing["links"]}
    conf = client.get("/api/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter" in conf
    cols = {c["id"]: c for c in client.get("/api/collections").json()["collections"]}
    assert {"buildings", "roads", "storeys", "spaces", "bim_elements"} <= set(cols)
    assert not any(c.startswith("pipe") for c in cols), "anonymous callers must not see pipe collections"
    b = cols["buildings"]
    lon, lat = lonlat(X0, Y0)
    w, s, e, n = b["extent"]["spatial"]["bbox"][0]
    assert w <= lon <= e and s <= lat <= n and e - w < 0.05
    assert "http://www.opengis.net/def/crs/EPSG/0/4490" in b["crs"]
    assert b["storageCrs"] == "http://www.opengis.net/def/crs/EPSG/0/4547"
    assert client.get("/api/openapi.json").json()["paths"]["/api/collections/{collectionId}/items"]


def test_items_in_bbox_and_crs(client):
    # buildings 0..2 of the first row: x in [X0, X0 + 50], y in [Y0, Y0 + 10]
    (w, s), (e, n) = lonlat(X0 - 1, Y0 + 1), lonlat(X0 + 51, Y0 + 9)
    r = client.get(f"/api/collections/buildings/items?bbox={w},{s},{e},{n}")
    assert r.headers["content-type"] == "application/geo+json"
    assert r.headers["content-crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    fc = r.json()
    assert names(r) == {"Block 00000", "Block 00001", "Block 00002"}
    assert fc["numberReturned"] == 3 and "numberMatched" not in fc
    f = next(f for f in fc["features"] if f["properties"]["name"] == "Block 00000")
    assert f["properties"]["dataset"] == "blocks" and f["properties"]["floors"] == 3
    assert f["properties"]["height"] == 10.0 and f["properties"]["uid"] == "b-uid-0"
    lon0, lat0 = f["geometry"]["coordinates"][0][0]
    assert abs(lon0 - 114.0) < 0.1 and abs(lat0 - 32.98) < 0.1
    # CGCS2000 and the storage CRS answer in their axis order (latitude / northing first)
    cg = client.get(f"/api/collections/buildings/items/{f['id']}?crs=http://www.opengis.net/def/crs/EPSG/0/4490")
    assert cg.headers["content-crs"] == "<http://www.opengis.net/def/crs/EPSG/0/4490>"
    lat1, lon1 = cg.json()["geometry"]["coordinates"][0][0]
    assert abs(lat1 - lat0) < 1e-5 and abs(lon1 - lon0) < 1e-5
    st = client.get(f"/api/collections/buildings/items/{f['id']}?crs=EPSG:4547").json()
    ring = np.array(st["geometry"]["coordinates"][0])
    assert ring[:, 0].min() == pytest.approx(Y0) and ring[:, 1].min() == pytest.approx(X0)
    # bbox in the storage CRS (northing, easting) and in CGCS2000 (lat, lon) select the same buildings
    r2 = client.get(f"/api/collections/buildings/items?bbox={Y0 + 1},{X0 - 1},{Y0 + 9},{X0 + 51}"
                    "&bbox-crs=http://www.opengis.net/def/crs/EPSG/0/4547")
    r3 = client.get(f"/api/collections/buildings/items?bbox={s},{w},{n},{e}&bbox-crs=[EPSG:4490]")
    assert names(r2) == names(r3) == names(r)
    counted = client.get(f"/api/collections/buildings/items?bbox={w},{s},{e},{n}&count=true&limit=1").json()
    assert counted["numberMatched"] == 3 and counted["numberReturned"] == 1


def test_properties_sortby_datetime(client):
    r = client.get("/api/collections/buildings/items?properties=name,height&limit=5&sortby=-name"
                   "&filter=dataset='blocks'").json()
    assert [set(f["properties"]) for f in r["features"]] == [{"name", "height"}] * 5
    assert r["features"][0]["properties"]["name"] == "Block 00298"
    # valid_from = 2000 + i % 20, valid_to = 2030 for every third: in 2035 only those without an end
    # remain; the IFC building has no validity dates and is valid at any time
    early = client.get("/api/collections/buildings/items?datetime=2000-06-01&limit=1000").json()
    assert early["numberReturned"] == 15 + 1  # i % 20 == 0
    late = client.get("/api/collections/buildings/items?datetime=2035-01-01T00:00:00Z&limit=1000").json()
    assert late["numberReturned"] == 200 + 1
    span = client.get("/api/collections/buildings/items?datetime=../2001-12-31&limit=1000").json()
    assert span["numberReturned"] == 30 + 1


# ---------------------------------------------------------------- CQL2
CQL = [
    # (cql2-text, cql2-json, expected number of buildings among the 300)
    ("floors = 3", {"op": "=", "args": [{"property": "floors"}, 3]}, 75),
    ("floors <> 3", {"op": "<>", "args": [{"property": "floors"}, 3]}, 225),
    ("height > 15", {"op": ">", "args": [{"property": "height"}, 15]}, 42),
    ("height >= 15", {"op": ">=", "args": [{"property": "height"}, 15]}, 85),
    ("year < 1982", {"op": "<", "args": [{"property": "year"}, 1982]}, 30),
    ("year <= 1981", {"op": "<=", "args": [{"property": "year"}, 1981]}, 30),
    ("roof = 'flat' AND floors = 4", {"op": "and", "args": [{"op": "=", "args": [{"property": "roof"}, "flat"]},
                                                            {"op": "=", "args": [{"property": "floors"}, 4]}]}, 75),
    ("year = 1980 OR year = 1999", {"op": "or", "args": [{"op": "=", "args": [{"property": "year"}, 1980]},
                                                        {"op": "=", "args": [{"property": "year"}, 1999]}]}, 30),
    ("NOT (roof = 'flat')", {"op": "not", "args": [{"op": "=", "args": [{"property": "roof"}, "flat"]}]}, 150),
    ("name LIKE 'Block 001%'", {"op": "like", "args": [{"property": "name"}, "Block 001%"]}, 90),
    ("name NOT LIKE 'Block 0%'", {"op": "not", "args": [{"op": "like", "args": [{"property": "name"}, "Block 0%"]}]},
     1),  # the IFC building, Haus
    ("year BETWEEN 1990 AND 1994", {"op": "between", "args": [{"property": "year"}, 1990, 1994]}, 75),
    ("floors IN (3, 6)", {"op": "in", "args": [{"property": "floors"}, [3, 6]]}, 150),
    ("uid IN ('b-uid-1', 'b-uid-2', 'nope')", {"op": "in", "args": [{"property": "uid"}, ["b-uid-1", "b-uid-2", "nope"]]}, 2),
    ("name IS NULL", {"op": "isNull", "args": [{"property": "name"}]}, 30),
    ("name IS NOT NULL", {"op": "not", "args": [{"op": "isNull", "args": [{"property": "name"}]}]}, 270 + 1),
    ("heritage = TRUE", {"op": "=", "args": [{"property": "heritage"}, True]}, 6),
    ("valid_from >= DATE('2019-01-01')", {"op": ">=", "args": [{"property": "valid_from"}, {"date": "2019-01-01"}]}, 15),
    ("zmax > 15.5 AND dataset = 'blocks'", {"op": "and", "args": [{"op": ">", "args": [{"property": "zmax"}, 15.5]},
                                                                   {"op": "=", "args": [{"property": "dataset"}, "blocks"]}]}, 42),
]


def test_cql2_text_and_json_per_operator(client):
    base = "/api/collections/buildings/items?limit=1000&filter="
    for text, js, expected in CQL:
        t = client.get(base + quote(text))
        j = client.get(base + quote(orjson.dumps(js).decode()) + "&filter-lang=cql2-json")
        assert t.status_code == 200, (text, t.text)
        assert j.status_code == 200, (js, j.text)
        assert t.json()["numberReturned"] == expected, text
        assert {f["id"] for f in t.json()["features"]} == {f["id"] for f in j.json()["features"]}, text


def test_cql2_spatial(client):
    # a polygon over buildings 0..1 (lon/lat), a BBOX over the first row's first 5, and in CGCS2000 (lat, lon)
    (w, s), (e, n) = lonlat(X0 + 2, Y0 + 2), lonlat(X0 + 25, Y0 + 8)
    poly = f"POLYGON(({w} {s}, {e} {s}, {e} {n}, {w} {n}, {w} {s}))"
    assert names(client.get("/api/collections/buildings/items?filter=" + quote(f"S_INTERSECTS(geometry, {poly})"))) \
        == {"Block 00000", "Block 00001"}
    gj = {"op": "s_intersects", "args": [{"property": "geometry"}, shapely.geometry.mapping(shapely.box(w, s, e, n))]}
    r = client.get("/api/collections/buildings/items?filter-lang=cql2-json&filter=" + quote(orjson.dumps(gj).decode()))
    assert names(r) == {"Block 00000", "Block 00001"}
    (w2, s2), (e2, n2) = lonlat(X0 + 2, Y0 + 2), lonlat(X0 + 85, Y0 + 8)
    r = client.get("/api/collections/buildings/items?filter=" + quote(f"S_INTERSECTS(geometry, BBOX({s2},{w2},{n2},{e2}))")
                   + "&filter-crs=http://www.opengis.net/def/crs/EPSG/0/4490")
    assert names(r) == {f"Block 0000{i}" for i in range(5)}
    # combined with attributes: S_INTERSECTS AND floors = 4 leaves building 1
    both = f"S_INTERSECTS(geometry, {poly}) AND floors = 4"
    assert names(client.get("/api/collections/buildings/items?filter=" + quote(both))) == {"Block 00001"}


def test_queryables(client):
    q = client.get("/api/collections/buildings/queryables")
    assert q.headers["content-type"].startswith("application/schema+json")
    props = q.json()["properties"]
    assert props["height"]["type"] == "number" and props["roof"]["type"] == "string"
    assert props["zmin"]["type"] == "number" and props["valid_from"]["format"] == "date"
    assert "geometry" in props
    detail = problem(client.get("/api/collections/buildings/items?filter=" + quote("colour = 'red'")), 400)
    assert "colour" in detail and "queryables" in detail


# ---------------------------------------------------------------- paging
def test_paging_over_ten_thousand_returns_each_once(db):
    write_dataset(info("many"), buildings(10_500, "m"), engine=db)
    with TestClient(create_app()) as client:
        for sortby, limit in ((None, 3000), ("-name", 2500)):
            seen, url, pages = [], f"/api/collections/buildings/items?limit={limit}", 0
            if sortby:
                url += f"&sortby={sortby}"
            while url:
                page = client.get(url)
                assert page.status_code == 200, page.text
                body = page.json()
                seen += [f["id"] for f in body["features"]]
                url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
                pages += 1
            assert len(seen) == len(set(seen)) == 10_500
            assert pages == -(-10_500 // limit)
        names_desc = [f["properties"].get("name") for f in client.get(
            "/api/collections/buildings/items?limit=10000&sortby=-name").json()["features"]]
        named = [n for n in names_desc if n is not None]
        assert named == sorted(named, reverse=True) and names_desc[-1] is None  # nulls last


# ---------------------------------------------------------------- errors and hostile input
ERRORS = [
    ("/api/collections/nowhere/items", 404, "nowhere"),
    ("/api/collections/buildings/items?limit=0", 400, "limit"),
    ("/api/collections/buildings/items?limit=10001", 400, "limit"),
    ("/api/collections/buildings/items?bbox=1,2,3", 400, "bbox"),
    ("/api/collections/buildings/items?bbox=10,20,5,30", 400, "bbox"),
    ("/api/collections/buildings/items?bbox=200,0,210,10", 400, "longitude"),
    ("/api/collections/buildings/items?crs=EPSG:3857", 400, "crs"),
    ("/api/collections/buildings/items?filter=height%20%3E", 400, "CQL2"),
    ("/api/collections/buildings/items?filter=heritage%20%3E%20TRUE", 400, "booleans"),
    ("/api/collections/buildings/items?filter=zmin%20%3D%20'x'", 400, "number"),
    ("/api/collections/buildings/items?filter={}&filter-lang=cql2-json", 400, "CQL2 JSON"),
    ("/api/collections/buildings/items?filter=S_INTERSECTS(geometry,POLYGON((0 0,1 1,1 0,0 1,0 0)))", 400, "invalid"),
    ("/api/collections/buildings/items?filter=x&filter-lang=sql", 400, "filter-lang"),
    ("/api/collections/buildings/items?sortby=height", 400, "sortby"),
    ("/api/collections/buildings/items?cursor=bm9wZQ", 400, "cursor"),
    ("/api/collections/buildings/items?datetime=yesterday", 400, "datetime"),
    ("/api/collections/buildings/items/999999999", 404, "999999999"),
    ("/api/buildings/1x", 404, "building"),
]


def test_errors_are_problem_details(client):
    for url, status, words in ERRORS:
        assert words in problem(client.get(url), status), url


HOSTILE = ["'; drop table city_objects; --", "1 OR 1=1", "\" OR \"\"=\"", "1; select pg_sleep(10)",
           "Robert'); DELETE FROM datasets;--", "%' OR '1'='1", "\\", "name = 'x' UNION SELECT * FROM api_keys",
           "nul\x00byte"]


def hostile_urls(bad: str) -> list[str]:
    quoted = "'" + bad.replace("'", "''") + "'"  # a well-formed CQL2 string holding the hostile text
    return [f"/api/collections/buildings/items?filter={quote(bad)}",
            f"/api/collections/buildings/items?filter={quote('name = ' + quoted)}",
            f"/api/collections/buildings/items?filter={quote('name LIKE ' + quoted)}",
            f"/api/collections/buildings/items/{quote(bad, safe='')}",
            f"/api/collections/{quote(bad, safe='')}/items",
            f"/api/objects/{quote(bad, safe='')}",
            f"/api/search?q={quote(bad)}",
            f"/api/collections/buildings/items?sortby={quote(bad)}",
            f"/api/collections/buildings/items?properties={quote(bad)}"]


def test_hostile_strings_give_400_or_nothing(client, city):
    for url in (u for bad in HOSTILE for u in hostile_urls(bad)):
        r = client.get(url)
        assert r.status_code in (200, 400, 404), (url, r.status_code, r.text)
        if r.status_code == 200 and "features" in r.json():
            assert r.json()["features"] == [], url
    with city.connect() as c:
        assert c.scalar(sa.text("select count(*) from city_objects where class = 'building'")) == 301


# ---------------------------------------------------------------- BIM detail, objects, search
def test_building_tree(client, city):
    hid = ids_of(city, ["H"])["H"]
    doc = client.get(f"/api/buildings/{hid}").json()
    assert doc["globalId"] == "2O2Fr$t4X7Zf8NOew3FLOH" and doc["dataset"]["name"] == "haus.ifc"
    assert doc["property_sets"] == {"Pset_BuildingCommon": {"YearOfConstruction": 1998}}
    assert doc["attributes"] == {"address": "1 Main St"}
    assert doc["height_range"] == {"zmin": 0.0, "zmax": 7.0}
    assert doc["counts"] == {"storeys": 2, "spaces": 4, "elements": 14}
    assert [s["name"] for s in doc["storeys"]] == ["Floor 0", "Floor 1"]
    s0 = doc["storeys"][0]
    assert s0["element_classes"] == {"IfcDoor": 2, "IfcSlab": 1, "IfcWall": 4} and s0["element_count"] == 7
    assert [sp["element_count"] for sp in s0["spaces"]] == [1, 1] and "elements" not in s0
    assert doc["geometry"]["type"] == "Polygon" and doc["ifc_global_ids"]["storeys"] == ["storey-0", "storey-1"]
    full = client.get(f"/api/buildings/{hid}?expand=elements,psets").json()["storeys"][1]
    walls = [e for e in full["elements"] if e["ifc_class"] == "IfcWall"]
    assert len(walls) == 4 and walls[0]["property_sets"] == {"Pset_WallCommon": {"IsExternal": True}}
    storey = ids_of(city, ["S0"])["S0"]
    assert "storey" in problem(client.get(f"/api/buildings/{storey}"), 404)
    assert "expand" in problem(client.get(f"/api/buildings/{hid}?expand=everything"), 400)


def test_objects_and_search(client, city):
    door = ids_of(city, ["D01"])["D01"]
    doc = client.get(f"/api/objects/{door}").json()
    assert [a["class"] for a in doc["ancestors"]] == ["space", "storey", "building"]
    assert doc["property_sets"]["Pset_DoorCommon"]["FireRating"] == "EI30"
    hits = client.get("/api/search?q=Block 0012").json()["results"]
    assert [h["name"] for h in hits][:1] == ["Block 00120"] and len(hits) == 9  # 129 has no name
    lon, lat = lonlat(X0 + 20 * 20, Y0 + 20)
    bb = hits[0]["bbox"]
    assert bb[0] <= lon + 1e-4 and bb[1] <= lat + 1e-4 and bb[2] >= lon - 1e-3
    assert client.get("/api/search?q=2O2Fr$t4X7Zf8NOew3FLOH").json()["results"][0]["name"] == "Haus"
    assert client.get(f"/api/search?q={door}").json()["results"][0]["id"] == door
    # pipes stay hidden from anonymous search
    assert client.get("/api/search?q=water main").json()["results"] == []


# ---------------------------------------------------------------- access control
def audit_rows(engine):
    with engine.connect() as c:
        return c.execute(sa.text("select key_id, role, layer, object_id, status from audit_log order by id")).all()


def test_pipe_access_401_403_200_and_audit(client, city):
    water_id, water = auth.create_key("water", "water utility", engine=city)
    _, viewer = auth.create_key("public", "a viewer", engine=city)
    _, utilities = auth.create_key("utilities", engine=city)
    url = "/api/collections/pipes_gas/items"
    assert "restricted" in problem(client.get(url), 401)
    assert client.get(url).headers["www-authenticate"].startswith("ApiKey")
    assert "water" in problem(client.get(url, headers={"X-API-Key": water}), 403)
    problem(client.get(url, headers={"X-API-Key": viewer}), 403)
    r = client.get(url, headers={"X-API-Key": utilities})
    assert names(r) == {"gas main 0"}
    assert r.json()["features"][0]["geometry"]["type"] == "LineString"
    assert len(r.json()["features"][0]["geometry"]["coordinates"][0]) == 3  # 3D centreline
    assert names(client.get(f"/api/collections/pipes_water/items?key={water}")) == {"water main 0", "water main 1"}
    # the water role sees only water nodes; utilities see both
    assert len(client.get(f"/api/collections/pipe_nodes/items?key={water}").json()["features"]) == 3
    assert len(client.get(f"/api/collections/pipe_nodes/items?key={utilities}").json()["features"]) == 5
    listed = {c["id"] for c in client.get("/api/collections", headers={"X-API-Key": water}).json()["collections"]}
    assert {"pipes_water", "pipe_nodes", "buildings"} <= listed and "pipes_gas" not in listed
    problem(client.get(url, headers={"X-API-Key": "cim_not-a-key"}), 401)
    # the segment with its nodes and neighbours, for the right role only
    ws0 = ids_of(city, ["ws0"])["ws0"]
    problem(client.get(f"/api/objects/{ws0}"), 401)
    seg = client.get(f"/api/objects/{ws0}", headers={"X-API-Key": water}).json()
    assert seg["pipe"]["diameter_mm"] == 300 and seg["nodes"]["from"]["node_type"] == "hydrant"
    assert [n["name"] for n in seg["neighbours"]] == ["water main 1"]
    assert client.get("/api/search?q=water main", headers={"X-API-Key": water}).json()["results"]
    rows = audit_rows(city)
    assert (None, "public", "pipes_gas", None, 401) in rows
    assert (water_id, "water", "pipes_gas", None, 403) in rows
    assert (water_id, "water", "pipes_water", None, 200) in rows
    assert (water_id, "water", "pipes_water", ws0, 200) in rows
    with city.connect() as c:
        assert c.scalar(sa.text("select count(*) from audit_log where path like '%cim\\_%'")) == 0, "keys logged"
    auth.revoke_key(water_id, engine=city)
    problem(client.get("/api/collections/pipes_water/items", headers={"X-API-Key": water}), 401)


def test_pipe_tiles_need_a_role(client, city):
    _, water = auth.create_key("water", engine=city)
    _, utilities = auth.create_key("utilities", engine=city)
    url = "/tiles/pipes/tileset.json"
    problem(client.get(url), 401)
    problem(client.get(url, headers={"X-API-Key": water}), 403)
    ok = client.get(f"{url}?key={utilities}")
    assert ok.status_code == 200, ok.text
    assert ok.json()["asset"]["version"] == "1.1"
    assert any(r[2] == "pipes" and r[4] == 401 for r in audit_rows(city))


def test_keys_cli(cli_env, db):
    def cim(*args):
        return subprocess.run([".venv/bin/cim", "keys", *args], capture_output=True, text=True,
                              env={**cli_env, "COLUMNS": "200"}, check=False,
                              cwd=str(__import__("pathlib").Path(__file__).parent.parent))
    made = cim("create", "--role", "water", "--name", "field crew")
    assert made.returncode == 0, made.stderr
    token = next(w for w in made.stdout.split() if w.startswith("cim_"))
    listed = cim("list")
    assert "field crew" in listed.stdout and "water" in listed.stdout and token not in listed.stdout
    bad = cim("create", "--role", "mayor")
    assert bad.returncode == 1 and "mayor" in bad.stderr and "Traceback" not in bad.stderr
    with db.connect() as c:
        key_id = c.scalar(sa.text("select id from api_keys"))
    assert cim("revoke", str(key_id)).returncode == 0
    assert "revoked 20" in cim("list").stdout
    assert cim("revoke", "9999").returncode == 1


def test_real_ifc_duplex_through_the_api(make_db):
    """The buildingSMART Duplex (4 storeys, 21 spaces) imported by importers.ifc, read back over HTTP."""
    from importers.ifc import import_file

    engine = make_db(26916)  # NAD83 / UTM 16N: Chicago, where its IfcSite reference lies
    import_file(DATA / "duplex.ifc", engine=engine)
    with TestClient(create_app()) as client:
        cols = {c["id"]: c for c in client.get("/api/collections").json()["collections"]}
        assert cols["storeys"]["storageCrs"].endswith("/26916")
        w, s, e, n = cols["bim_elements"]["extent"]["spatial"]["bbox"][0]
        assert -88.5 < w < e < -87 and 41 < s < n < 43  # Chicago, in lon/lat
        hit = client.get("/api/search?q=IfcBuilding").json()["results"] or \
            client.get("/api/collections/buildings/items?limit=1").json()["features"]
        bid = hit[0]["id"]
        doc = client.get(f"/api/buildings/{bid}").json()
        assert doc["counts"]["storeys"] == 4 and doc["counts"]["spaces"] == 21
        assert len(doc["ifc_global_ids"]["storeys"]) == 4 and doc["globalId"]
        elevations = [st["elevation"] for st in doc["storeys"]]
        assert elevations == sorted(elevations)
        assert sum(st["element_count"] for st in doc["storeys"]) + sum(doc["elements_outside_storeys"].values()) \
            == doc["counts"]["elements"] > 100
        walls = client.get("/api/collections/bim_elements/items?limit=1000&filter=ifc_class LIKE 'IfcWall%'").json()
        assert walls["numberReturned"] > 10
        assert {f["properties"]["ifc_class"][:7] for f in walls["features"]} == {"IfcWall"}

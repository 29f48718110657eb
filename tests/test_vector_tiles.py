"""Vector tiles (OGC API - Tiles, Mapbox Vector Tiles from PostGIS): GDAL's MVT driver reads a roads tile
over HTTP and finds the database's roads in it; tile matrix sets and tilesets; bad addresses as problems;
restricted collections; ETag, gzip and the cache following imports."""
from __future__ import annotations

import gzip
import math
import re
import subprocess

import httpx
import numpy as np
import orjson
import pytest
import shapely
import sqlalchemy as sa
from fastapi.testclient import TestClient
from test_api import X0, Y0, info, lonlat, pipes, problem
from test_api_clients import server  # noqa: F401  (the uvicorn fixture, used by name)

from cim_core.crs import transform
from cim_core.model import CityObject
from cim_core.store import write_dataset
from services import auth
from services.app import create_app

Z = 16
W = "WebMercatorQuad"
OWN_Z = 15  # the storage quad's matrix of 0.5 m cells (128 m tiles) for EPSG:4547


def roads(prefix: str = "r", n: int = 3):
    """n east-west road centrelines 30 m apart (names, widths and classes as attributes), and one road
    surface polygon crossing them."""
    objs = [CityObject(key=f"{prefix}{i}", cls="road", name=f"{prefix.upper()} Road {i}",
                       attributes={"width_m": 7.0 + i, "road_class": "主干路" if i == 0 else "支路"},
                       footprint=shapely.LineString([(X0, Y0 + 30 * i), (X0 + 200, Y0 + 30 * i)]))
            for i in range(n)]
    objs.append(CityObject(key=f"{prefix}p", cls="road", name=f"{prefix.upper()} Square",
                           attributes={"surface": "paved"}, footprint=shapely.box(X0 + 90, Y0 - 10, X0 + 110, Y0 + 70)))
    return objs


def tile_of(x: float, y: float, z: int = Z) -> tuple[int, int]:
    """(column, row) of the WebMercatorQuad tile holding a point of the storage CRS."""
    lon, lat = lonlat(x, y)
    n = 2 ** z
    col = int((lon + 180) / 360 * n)
    row = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return col, row


def tile_url(collection: str, col: int, row: int, z: int = Z) -> str:
    return f"/api/collections/{collection}/tiles/WebMercatorQuad/{z}/{row}/{col}"


def own_tile(client, x: float, y: float, z: int = OWN_Z, base: str = "") -> tuple[tuple[int, int, int], dict]:
    """(matrix, row, column) of the storage quad's tile holding a point, worked out from the tile matrix set's
    document (corner in the CRS's axis order: northing first for EPSG:4547), and that document."""
    doc = client.get(f"{base}/api/tileMatrixSets/EPSG4547Quad").json()
    m = doc["tileMatrices"][z]
    assert m["cellSize"] == 0.5
    top, left = m["pointOfOrigin"]
    size = m["cellSize"] * m["tileWidth"]
    return (z, int((top - y) // size), int((x - left) // size)), doc


def in_tile(engine, cls: str, col: int, row: int, z: int = Z) -> dict[int, str]:
    """The database's answer: {id: name} of the current objects of a class that touch the tile."""
    with engine.connect() as c:
        return dict(c.execute(sa.text(
            "select id, name from city_objects where class = :cls and "
            "st_intersects(st_transform(footprint, 3857), st_tileenvelope(:z, :x, :y))"),
            {"cls": cls, "z": z, "x": col, "y": row}).all())


@pytest.fixture
def city(db):
    write_dataset(info("roads"), roads(), engine=db)
    write_dataset(info("network"), pipes(), engine=db)
    return db


@pytest.fixture
def client(city):
    with TestClient(create_app()) as c:
        yield c


def gdal_features(target: str, *opts: str) -> list[dict]:
    """ogrinfo's reading of a tile: one dict per feature (its MVT id, which GDAL gives as the field mvt_id;
    its fields; WKT geometry)."""
    run = subprocess.run(["ogrinfo", "-ro", "-al", *opts, target], capture_output=True, text=True, timeout=120,
                         check=False)
    assert run.returncode == 0, run.stderr
    out = []
    for block in run.stdout.split("OGRFeature(")[1:]:
        fields = dict(re.findall(r"^\s+(\w+) \(\w+\) = (.*)$", block, re.MULTILINE))
        fid = int(fields.pop("mvt_id"))
        wkt = re.search(r"^\s+((?:MULTI)?(?:POINT|LINESTRING|POLYGON).*)$", block, re.MULTILINE).group(1)
        out.append({"fid": fid, "fields": fields, "geometry": shapely.from_wkt(wkt)})
    return out


def test_gdal_reads_a_roads_tile_over_http(server, db):  # noqa: F811
    write_dataset(info("roads"), roads(), engine=db)
    col, row = tile_of(X0 + 100, Y0 + 30)
    expected = in_tile(db, "road", col, row)
    assert len(expected) == 4
    url = f"{server}{tile_url('roads', col, row)}?f=mvt"  # GDAL takes a URL ending in a number for a folder
    feats = gdal_features(f"MVT:{url}", "-oo", f"Z={Z}", "-oo", f"X={col}", "-oo", f"Y={row}")
    assert {f["fid"]: f["fields"]["name"] for f in feats} == expected
    with db.connect() as c:
        rows = c.execute(sa.text("select id, attributes->>'road_class', (attributes->>'width_m')::float, "
                                 "st_astext(st_transform(footprint, 3857)) from city_objects where class = 'road'"
                                 " and attributes ? 'width_m'")).all()
    by_id = {f["fid"]: f for f in feats}
    pixel = 2 * 20037508.34 / 2 ** Z / 4096  # metres per MVT grid unit at this zoom
    for oid, road_class, width, wkt in rows:
        f = by_id[oid]
        assert f["fields"]["road_class"] == road_class and float(f["fields"]["width_m"]) == width
        # the tile clips the line to its buffered square: what GDAL reads lies on the database's line
        line = shapely.from_wkt(wkt)
        coords = shapely.get_coordinates(f["geometry"])
        assert shapely.distance(shapely.points(coords), line).max() < 2 * pixel
    # nested attributes (IFC property sets) travel as JSON text
    col, row = tile_of(X0 - 190, Y0 + 10)
    haus = gdal_features(f"MVT:{server}{tile_url('buildings', col, row)}?f=mvt", "-oo", f"Z={Z}", "-oo",
                         f"X={col}", "-oo", f"Y={row}")
    found = [f for f in haus if f["fields"].get("name") == "Haus"]
    assert len(found) == 1 and '"YearOfConstruction": 1998' in found[0]["fields"]["Pset_BuildingCommon"]


def test_gdal_reads_a_storage_crs_tile(server, db, tmp_path):  # noqa: F811
    """A tile of the storage CRS's quad, georeferenced by GDAL's MVT driver from the tile matrix set's corner and
    side (GDAL's metadata.json keys): the database's roads of that tile, on their stored lines, no reprojection."""
    write_dataset(info("roads"), roads(), engine=db)
    (z, row, col), doc = own_tile(httpx, X0 + 100, Y0 + 30, base=server)
    top, left = doc["tileMatrices"][0]["pointOfOrigin"]
    size = doc["tileMatrices"][z]["cellSize"] * 256
    with db.connect() as c:
        expected = dict(c.execute(sa.text(
            "select id, name from city_objects where class = 'road' and st_intersects(footprint, "
            "st_makeenvelope(:x0, :y1 - :s, :x0 + :s, :y1, 4547))"),
            {"x0": left + col * size, "y1": top - row * size, "s": size}).all())
    assert len(expected) == 4
    data = httpx.get(f"{server}/api/collections/roads/tiles/EPSG4547Quad/{z}/{row}/{col}").content
    path = tmp_path / f"{z}" / f"{col}" / f"{row}.pbf"
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    (tmp_path / "metadata.json").write_text(orjson.dumps({
        "format": "pbf", "minzoom": z, "maxzoom": z, "crs": "EPSG:4547", "tile_origin_upper_left_x": left,
        "tile_origin_upper_left_y": top, "tile_dimension_zoom_0": doc["tileMatrices"][0]["cellSize"] * 256,
    }).decode())
    feats = gdal_features(str(path))
    assert {f["fid"]: f["fields"]["name"] for f in feats} == expected
    with db.connect() as c:
        lines = dict(c.execute(sa.text("select id, st_astext(footprint) from city_objects where class = 'road'")).all())
    for f in feats:  # within two MVT grid units (size / 4096) of the stored geometry, in its own CRS
        coords = shapely.get_coordinates(f["geometry"])
        assert shapely.distance(shapely.points(coords), shapely.from_wkt(lines[f["fid"]])).max() < 2 * size / 4096


def test_tile_matrix_sets_tilesets_and_links(client, city):
    sets = client.get("/api/tileMatrixSets").json()["tileMatrixSets"]
    assert [s["id"] for s in sets] == ["WebMercatorQuad", "EPSG4547Quad"]
    tms = client.get("/api/tileMatrixSets/WebMercatorQuad").json()
    assert len(tms["tileMatrices"]) == 25 and tms["tileMatrices"][16]["matrixWidth"] == 65536
    assert tms["tileMatrices"][0]["pointOfOrigin"] == [-20037508.3427892, 20037508.3427892]
    own = client.get("/api/tileMatrixSets/EPSG4547Quad").json()
    assert own["crs"].endswith("/EPSG/0/4547") and own["orderedAxes"] == ["X", "Y"]  # northing, easting
    top, left = own["tileMatrices"][0]["pointOfOrigin"]
    side = own["tileMatrices"][0]["cellSize"] * 256
    # it covers EPSG:4547's area of use (112.5-115.5E, 21.52-45.45N, EPSG's), and has 1 m cells at matrix 14
    corners = [transform(4326, 4547, [lon], [lat]) for lon in (112.5, 115.5) for lat in (21.52, 45.45)]
    assert all(left <= x[0] <= left + side and top - side <= y[0] <= top for x, y in corners)
    assert own["tileMatrices"][14]["cellSize"] == 1.0
    conf = client.get("/api/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt" in conf
    links = client.get("/api/collections/roads").json()["links"]
    href = next(link["href"] for link in links if link["rel"].endswith("tilesets-vector"))
    listed = client.get(href).json()["tilesets"]
    assert listed[0]["dataType"] == "vector"
    doc = client.get(listed[0]["links"][0]["href"]).json()
    assert [t["links"][0]["href"].rsplit("/", 1)[1] for t in listed] == ["WebMercatorQuad", "EPSG4547Quad"]
    template = next(link["href"] for link in doc["links"] if link["rel"] == "item")
    assert template.endswith("/roads/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}?f=mvt")
    w, s = doc["boundingBox"]["lowerLeft"]
    assert (w, s) == pytest.approx(lonlat(X0, Y0 - 10), abs=1e-6)
    col, row = tile_of(X0 + 100, Y0 + 30)
    r = client.get(template.format(tileMatrix=Z, tileRow=row, tileCol=col))
    assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert len(r.content) > 100


@pytest.mark.parametrize("path,status,words", [
    ("/api/collections/roads/tiles/WorldCRS84Quad/3/1/1", 404, "tile matrix set"),
    ("/api/collections/roads/tiles/WorldCRS84Quad", 404, "tile matrix set"),
    ("/api/tileMatrixSets/Nope", 404, "tile matrix set"),
    ("/api/collections/nope/tiles/WebMercatorQuad/3/1/1", 404, "no collection"),
    ("/api/collections/nope/tiles", 404, "no collection"),
    ("/api/collections/roads/tiles/WebMercatorQuad/25/0/0", 400, "out of range"),
    ("/api/collections/roads/tiles/WebMercatorQuad/-1/0/0", 400, "out of range"),
    ("/api/collections/roads/tiles/WebMercatorQuad/3/8/0", 400, "outside matrix 3"),
    ("/api/collections/roads/tiles/WebMercatorQuad/3/0/8", 400, "outside matrix 3"),
    ("/api/collections/roads/tiles/WebMercatorQuad/3/0/-1", 400, "outside matrix 3"),
    ("/api/collections/roads/tiles/WebMercatorQuad/3/0/x", 400, "tileCol"),
    ("/api/collections/roads/tiles/WebMercatorQuad/3/0/0?f=png", 400, "f=mvt"),
    ("/api/collections/roads/tiles/EPSG4547Quad/21/0/0", 400, "EPSG4547Quad has matrices 0 to 20"),
    ("/api/collections/roads/tiles/EPSG4547Quad/2/4/0", 400, "outside matrix 2"),
    ("/api/collections/roads/tiles/EPSG4490Quad/2/0/0", 404, "tile matrix set"),
    ("/api/collections/roads/tiles/WebMercatorQuad/99999999999999999999999/0/0", 400, "out of range"),
])
def test_bad_tile_addresses_are_problems(client, path, status, words):
    assert words in problem(client.get(path), status)


def test_restricted_collections_need_a_grant_and_are_private(client, city):
    col, row = tile_of(X0 + 50, Y0 - 50)
    url = tile_url("pipes_water", col, row)
    assert "restricted" in problem(client.get(url), 401)
    problem(client.get("/api/collections/pipes_water/tiles"), 401)
    _, gas = auth.create_key("public", engine=city)
    problem(client.get(url, headers={"X-API-Key": gas}), 403)
    _, water = auth.create_key("water", engine=city)
    r = client.get(url, headers={"X-API-Key": water})
    assert r.status_code == 200 and r.headers["cache-control"].startswith("private")
    assert "X-API-Key" in r.headers["vary"] and len(r.content) > 20
    public = client.get(tile_url("roads", *tile_of(X0 + 100, Y0 + 30)))
    assert public.headers["cache-control"].startswith("public")
    with city.connect() as c:
        audited = c.execute(sa.text("select layer, status from audit_log order by id")).all()
    assert ("pipes_water", 200) in audited and ("pipes_water", 401) in audited
    # nodes of the utilities the caller may read: the water key's node tile has the 3 water nodes only
    nodes_water = client.get(tile_url("pipe_nodes", col, row), headers={"X-API-Key": water}).content
    _, utilities = auth.create_key("utilities", engine=city)
    nodes_all = client.get(tile_url("pipe_nodes", col, row), headers={"X-API-Key": utilities}).content
    assert nodes_water.count(b"water node") == 3 and b"gas node" not in nodes_water
    assert nodes_all.count(b"gas node") == 2


def test_etag_gzip_and_the_cache_follows_imports(client, city, tmp_path):
    col, row = tile_of(X0 + 100, Y0 + 30)
    url = tile_url("roads", col, row)
    first = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert first.headers["content-encoding"] == "gzip" and first.headers["etag"].startswith('"')
    raw = client.get(url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers and raw.headers["etag"] == first.headers["etag"]
    assert gzip.compress(raw.content) and len(first.content) > 0  # httpx decoded the gzip body already
    assert first.content == raw.content
    assert client.get(url, headers={"If-None-Match": first.headers["etag"]}).status_code == 304
    # a new import of roads changes the tile (its roads' names), after the registry's next check
    write_dataset(info("more roads"), roads("q", 1), engine=city)
    from services.api import collections
    collections.registry(auth.current_engine()).checked = -1e9
    second = client.get(url)
    assert second.headers["etag"] != first.headers["etag"] and b"Q Road 0" in second.content
    path = tmp_path / f"{Z}" / f"{col}" / f"{row}.pbf"  # a Z/X/Y file name: GDAL georeferences it
    path.parent.mkdir(parents=True)
    path.write_bytes(second.content)
    read = gdal_features(str(path))
    assert {f["fid"] for f in read} == set(in_tile(city, "road", col, row))
    assert all(np.isfinite(shapely.get_coordinates(f["geometry"])).all() for f in read)


def test_an_import_drops_only_the_cached_tiles_it_touches(client, city):
    """The cache follows change_log: a tile is dropped when a change's classes and region touch it, in every
    model; a plan's removals drop that plan's tiles only; the others stay."""
    from cim_core import scenarios
    from cim_core.model import DatasetInfo
    from services.api import collections, vector_tiles

    scenarios.define("plan-r", engine=city)
    col, row = tile_of(X0 + 100, Y0 + 30)
    far = (col + 6, row)
    urls = {"near": tile_url("roads", col, row), "far": tile_url("roads", *far),
            "buildings": tile_url("buildings", col, row)}
    for url in urls.values():
        assert client.get(url).status_code == 200
    assert client.get(urls["near"], params={"scenario": "plan-r"}).status_code == 200
    store = vector_tiles.cache(auth.current_engine())
    with city.connect() as c:
        sid = scenarios.resolve(c, "plan-r")
    keys = {"near": ("roads", W, Z, row, col, (), None), "far": ("roads", W, Z, far[1], far[0], (), None),
            "buildings": ("buildings", W, Z, row, col, (), None), "plan": ("roads", W, Z, row, col, (), sid)}
    # the same places in the storage CRS's quad
    for name, (x, y) in {"near_own": (X0 + 100, Y0 + 30), "far_own": (X0 + 100 + 6 * 611.5, Y0 + 30)}.items():
        (zo, ro, co), doc = own_tile(client, x, y)
        assert client.get(f"/api/collections/roads/tiles/{doc['id']}/{zo}/{ro}/{co}").status_code == 200
        keys[name] = ("roads", doc["id"], zo, ro, co, (), None)
    assert set(keys.values()) <= set(store.tiles)

    def changed(name, objs, scenario=None):
        write_dataset(DatasetInfo(name, "test", f"{name}.gpkg", name, scenario=scenario), objs, engine=city)
        collections.registry(auth.current_engine()).checked = -1e9

    changed("q", roads("q", 1))  # as-is roads near: the near roads tiles of both models go, the others stay
    assert b"Q Road 0" in client.get(urls["near"]).content
    assert keys["far"] in store.tiles and keys["buildings"] in store.tiles and keys["plan"] not in store.tiles
    assert keys["near_own"] not in store.tiles and keys["far_own"] in store.tiles
    changed("p", roads("p", 1), scenario="plan-r")  # the plan's own roads, near
    assert b"P Road 0" in client.get(urls["near"], params={"scenario": "plan-r"}).content
    assert keys["near"] not in store.tiles and keys["far"] in store.tiles
    assert b"P Road 0" not in client.get(urls["near"]).content
    scenarios.define("plan-r", removes=[("q", None)], engine=city)  # a plan's removals: all its tiles
    collections.registry(auth.current_engine()).checked = -1e9
    assert b"Q Road 0" not in client.get(urls["near"], params={"scenario": "plan-r"}).content
    assert keys["near"] in store.tiles and keys["far"] in store.tiles

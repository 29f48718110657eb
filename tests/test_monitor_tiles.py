"""Sensors as a tile layer: the `sensors` collection is served as Mapbox Vector Tiles (OGC API - Tiles,
services/api/vector_tiles.py) and GDAL's MVT driver reads the sensors back from a tile, at their places,
with their code and kind."""
from __future__ import annotations

import shapely
from fastapi.testclient import TestClient
from monitor_helpers import X, Y, make_sensors
from pyproj import Transformer
from test_vector_tiles import Z, gdal_features, tile_of, tile_url

from services.app import create_app


def test_a_sensors_tile_read_by_gdal(db, tmp_path):
    ids = make_sensors(db, 3)  # G1 on MH-1 at (X, Y); P1, P2 at 1 and 2 m east
    col, row = tile_of(X, Y)
    with TestClient(create_app()) as client:
        r = client.get(tile_url("sensors", col, row))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.mapbox-vector-tile")
    path = tmp_path / "sensors.mvt"
    path.write_bytes(r.content)
    feats = gdal_features(str(path), "-oo", f"Z={Z}", "-oo", f"X={col}", "-oo", f"Y={row}")
    assert sorted((f["fid"], f["fields"]["code"], f["fields"]["kind"]) for f in feats) == sorted(
        (ids[c], c, k) for c, k in (("G1", "gas"), ("P1", "pressure"), ("P2", "pressure")))
    to_3857 = Transformer.from_crs(4547, 3857, always_xy=True)
    pixel = 2 * 20037508.34 / 2 ** Z / 4096  # metres per MVT grid unit at this zoom
    for f in feats:
        dx = {"G1": 0.0, "P1": 1.0, "P2": 2.0}[f["fields"]["code"]]
        assert f["geometry"].distance(shapely.Point(*to_3857.transform(X + dx, Y))) <= pixel  # grid rounding

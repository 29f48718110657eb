"""Vector tiles: `cim serve` MVT tiles against tipg's, same table, same tiles, in one run.

The data are the features benchmark's: 100,000 x scale synthetic footprints written with
cim_core.store.write_dataset, and for tipg 1.6.1 (its own venv) a plain table of the same rows with a GiST
index (bench/features.py). Both serve the buildings of 300 tiles of WebMercatorQuad, 100 each at zoom
14, 15 and 16, picked at random inside the data. Three servers run side by side, one uvicorn worker
each: `cim serve` as shipped (tiles cached in memory until the model changes), `cim serve` with the cache
off (CIM_VECTOR_TILE_CACHE_MB=0: every request is an ST_AsMVT query, as tipg's are), and tipg. wrk
rotates over the tiles, 16 connections for 20 s per server, one run. Byte sizes are those of every
tile once, uncompressed, and with gzip for ours (what a browser gets).
"""
from __future__ import annotations

import gzip
import math
import os
import sys
import urllib.request
from pathlib import Path

import numpy as np

from bench._http import free_port, wrk
from bench.features import load_buildings, serve, stop, with_tipg

PER_SCALE = 100_000
ZOOMS = (14, 15, 16)
TILES_PER_ZOOM = 100


def run(scale: float, work: Path) -> dict:
    return with_tipg(scale, work, _measure)


def _tiles(engine, seed: int = 5) -> list[tuple[int, int, int]]:
    """(z, x, y) of TILES_PER_ZOOM random tiles per zoom whose centre lies inside the data's extent."""
    import sqlalchemy as sa

    with engine.connect() as c:
        w, s, e, n = c.execute(sa.text(
            "select st_xmin(b), st_ymin(b), st_xmax(b), st_ymax(b) from "
            "(select st_transform(st_setsrid(st_extent(geom)::geometry, 4547), 4326) b from tipg_buildings) x")).one()
    rng = np.random.default_rng(seed)
    out = []
    for z in ZOOMS:
        lon, lat = rng.uniform(w, e, TILES_PER_ZOOM), rng.uniform(s, n, TILES_PER_ZOOM)
        xs = ((lon + 180) / 360 * 2 ** z).astype(int)
        ys = ((1 - np.arcsinh(np.tan(np.radians(lat))) / math.pi) / 2 * 2 ** z).astype(int)
        out += [(z, int(x), int(y)) for x, y in zip(xs, ys)]
    return out


def _bytes(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as r:
        return r.read()


def _sizes(base: str, paths: list[str], zooms: list[int], gz: bool) -> dict:
    """Mean bytes per tile over every tile, per zoom (and gzip-compressed when asked)."""
    raw = {z: [] for z in ZOOMS}
    packed = {z: [] for z in ZOOMS}
    for z, p in zip(zooms, paths):
        data = _bytes(base + p)
        raw[z].append(len(data))
        if gz:
            packed[z].append(len(gzip.compress(data, 6)))
    out = {f"mean_bytes_z{z}": round(float(np.mean(raw[z]))) for z in ZOOMS}
    if gz:
        out |= {f"mean_gzip_bytes_z{z}": round(float(np.mean(packed[z]))) for z in ZOOMS}
    return out


def _measure(scale: float, work: Path, home: Path, tipg_python: Path) -> dict:
    from sqlalchemy.engine import make_url

    from cim_core import db as cdb

    engine = cdb.get_engine()
    n = load_buildings(engine, scale)
    tiles = _tiles(engine)
    url = make_url(cdb.database_url())
    dsn = f"postgresql://{url.username}@{url.host}:{url.port}/{url.database}"
    env = {**os.environ, "CIM_HOME": str(home)}
    ports = {name: free_port() for name in ("cim_serve", "cim_serve_uncached", "tipg")}
    base = {name: f"http://127.0.0.1:{p}" for name, p in ports.items()}
    paths = {"cim_serve": [f"/api/collections/buildings/tiles/WebMercatorQuad/{z}/{y}/{x}" for z, x, y in tiles],
             "tipg": [f"/collections/public.tipg_buildings/tiles/WebMercatorQuad/{z}/{x}/{y}" for z, x, y in tiles]}
    paths["cim_serve_uncached"] = paths["cim_serve"]
    cim = str(Path(sys.executable).with_name("cim"))
    tenv = {**env, "DATABASE_URL": dsn, "TIPG_DB_TABLES": '["public.tipg_buildings"]', "TIPG_DB_FUNCTIONS": "[]"}
    servers = []
    try:
        servers.append(serve([cim, "serve", "--port", str(ports["cim_serve"]), "--workers", "1"], env,
                             f"{base['cim_serve']}/api/tileMatrixSets", work, "cim-serve"))
        servers.append(serve([cim, "serve", "--port", str(ports["cim_serve_uncached"]), "--workers", "1"],
                             {**env, "CIM_VECTOR_TILE_CACHE_MB": "0"},
                             f"{base['cim_serve_uncached']}/api/tileMatrixSets", work, "cim-serve-uncached"))
        servers.append(serve([str(tipg_python), "-m", "uvicorn", "tipg.main:app", "--port", str(ports["tipg"]),
                              "--workers", "1", "--log-level", "warning"], tenv,
                             f"{base['tipg']}/collections/public.tipg_buildings", work, "tipg"))
        results = {}
        for name in ("tipg", "cim_serve_uncached", "cim_serve"):
            results[name] = {**wrk(base[name], paths[name], work, name),
                             **_sizes(base[name], paths[name], [z for z, _, _ in tiles], gz=name == "cim_serve")}
    finally:
        for proc in servers:
            stop(proc)
    tipg_rate = results["tipg"]["requests_per_s"]
    return {
        "buildings": n,
        "tiles": f"{TILES_PER_ZOOM} random tiles at each of zooms {', '.join(map(str, ZOOMS))} inside the data",
        "load": "16 connections, 20 s per server after a 3 s warm-up, rotating over the tiles, 1 uvicorn worker each, "
                "one run; bytes uncompressed unless named gzip",
        **results,
        "rate_ratio_cached": round(results["cim_serve"]["requests_per_s"] / tipg_rate, 2),
        "rate_ratio_uncached": round(results["cim_serve_uncached"]["requests_per_s"] / tipg_rate, 2),
    }

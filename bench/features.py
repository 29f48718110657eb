"""Features API: `cim serve` against tipg on bbox item requests, in one run on the same data.

100,000 x scale synthetic building footprints (4-8 vertices, EPSG:4547, near Zhumadian; height,
floors, name, year) are written with cim_core.store.write_dataset into an embedded database of the
bench's own (CIM_HOME under the work folder). tipg 1.6.1 (in a venv of its own) serves a plain
table of the same rows (id, name, height, floors, year, geometry in EPSG:4547 with a GiST index),
restricted with TIPG_DB_TABLES; `cim serve` serves its `buildings` collection. Each server runs one
uvicorn worker and gets the same wrk load: 16 connections for 20 s, a Lua script rotating over 500
random 500 m bboxes in lon/lat, limit=100; the runs alternate between the two servers, twice. Both
answer in GeoJSON with CRS84 coordinates.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

from bench._http import free_port, wrk
from bench._synthetic import footprints

TIPG = "tipg==1.6.1"
PER_SCALE = 100_000
BBOXES = 500
BBOX_M = 500.0
ROUNDS = 2



def ensure_tools(work: Path) -> Path:
    """wrk from Debian and tipg in a venv of its own (it pins its own FastAPI); returns that venv's python."""
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True)
    venv = work / "tipg-venv"
    python = venv / "bin" / "python"
    if not (python.exists() and subprocess.run([str(python), "-c", "import tipg, uvicorn"],
                                                               check=False).returncode == 0):
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", TIPG, "uvicorn"], check=True)
    return python


def synthetic_buildings(n: int, seed: int = 7):
    """n synthetic buildings (bench/_synthetic.py) as city objects with a footprint and a height."""
    from cim_core.model import CityObject

    fps, height, _ = footprints(n, seed)
    for j in range(n):
        yield CityObject(key=f"B{j}", cls="building", name=f"Building {j}", footprint=fps[j], zmin=0.0,
                         zmax=float(height[j]),
                         attributes={"height": float(height[j]), "floors": int(height[j] // 3),
                                     "year": int(1960 + j % 60)})


def tipg_table(engine) -> None:
    """The same buildings as a plain table with a geometry column, which is what tipg serves."""
    import sqlalchemy as sa

    with engine.begin() as c:
        c.execute(sa.text("drop table if exists tipg_buildings"))
        c.execute(sa.text("""
            create table tipg_buildings as
            select o.id, o.name, (o.attributes->>'height')::float8 as height,
                   (o.attributes->>'floors')::int as floors, (o.attributes->>'year')::int as year,
                   o.footprint::geometry(Polygon, 4547) as geom
            from city_objects o join datasets d on d.id = o.dataset_id where d.name = 'bench_features'"""))
        c.execute(sa.text("alter table tipg_buildings add primary key (id)"))
        c.execute(sa.text("create index tipg_buildings_geom on tipg_buildings using gist (geom)"))
        c.execute(sa.text("analyze tipg_buildings"))
        c.execute(sa.text("analyze city_objects"))


def _bboxes(engine, n: int, seed: int = 3) -> list[str]:
    """n random BBOX_M x BBOX_M boxes in lon/lat inside the data's extent."""
    import sqlalchemy as sa

    with engine.connect() as c:
        w, s, e, nn = c.execute(sa.text(
            "select st_xmin(b), st_ymin(b), st_xmax(b), st_ymax(b) from "
            "(select st_transform(st_setsrid(st_extent(geom)::geometry, 4547), 4326) b from tipg_buildings) x")).one()
    rng = np.random.default_rng(seed)
    dlat = BBOX_M / 111_320.0
    dlon = dlat / np.cos(np.radians((s + nn) / 2))
    x0 = rng.uniform(w, e - dlon, n)
    y0 = rng.uniform(s, nn - dlat, n)
    return [f"{a:.6f},{b:.6f},{a + dlon:.6f},{b + dlat:.6f}" for a, b in zip(x0, y0)]


def get_json(url: str, timeout: float = 60) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def serve(cmd: list[str], env: dict, probe: str, work: Path, name: str) -> subprocess.Popen:
    log = (work / f"{name}.log").open("w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
    end = time.time() + 180
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited ({proc.returncode}); see {work / f'{name}.log'}")
        try:
            get_json(probe, 30)
            return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"{name} did not answer {probe}")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def with_tipg(scale: float, work: Path, measure) -> dict:
    """measure(scale, work, home, tipg_python) with tipg installed and an embedded cluster of the bench's own
    (CIM_HOME under `work`), stopped again if this run started it."""
    work = work.absolute()
    tipg_python = ensure_tools(work)
    home = work / "home"
    os.environ["CIM_HOME"] = str(home)
    os.environ.pop("CIM_DATABASE_URL", None)

    from cim_core import db as cdb
    from cim_core.settings import get_settings

    get_settings.cache_clear()
    started = cdb.embedded().start()
    try:
        return measure(scale, work, home, tipg_python)
    finally:
        if started:
            cdb.embedded().stop()


def run(scale: float, work: Path) -> dict:
    return with_tipg(scale, work, _measure)


def load_buildings(engine, scale: float) -> int:
    """The synthetic buildings in our model (written once per size) and as tipg's plain table; their count."""
    from cim_core.model import DatasetInfo
    from cim_core.store import find_dataset, write_dataset

    n = max(1000, round(PER_SCALE * scale))
    sha = f"bench-features-{n}"
    if not find_dataset(sha, "synthetic", engine=engine):
        t0 = time.perf_counter()
        write_dataset(DatasetInfo("bench_features", "gis", "synthetic", sha, "EPSG:4547",
                                  report={"options": "synthetic"}), synthetic_buildings(n), engine=engine)
        print(f"wrote {n} buildings in {time.perf_counter() - t0:.1f} s", flush=True)
    tipg_table(engine)
    return n


def _measure(scale: float, work: Path, home: Path, tipg_python: Path) -> dict:
    from sqlalchemy.engine import make_url

    from cim_core import db as cdb

    engine = cdb.get_engine()
    n = load_buildings(engine, scale)
    boxes = _bboxes(engine, BBOXES)
    url = make_url(cdb.database_url())
    dsn = f"postgresql://{url.username}@{url.host}:{url.port}/{url.database}"
    env = {**os.environ, "CIM_HOME": str(home)}

    # Both servers run side by side and the wrk runs alternate, so that other load on the machine
    # weighs on both alike.
    ours_port, tipg_port = free_port(), free_port()
    ours_base, tipg_base = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{tipg_port}"
    tenv = {**env, "DATABASE_URL": dsn, "TIPG_DB_TABLES": '["public.tipg_buildings"]', "TIPG_DB_FUNCTIONS": "[]",
            "TIPG_MAX_FEATURES_PER_QUERY": "10000"}
    servers = [serve([str(Path(sys.executable).with_name("cim")), "serve", "--port", str(ours_port),
                       "--workers", "1"], env, f"{ours_base}/api/collections/buildings/items?limit=1", work,
                      "cim-serve")]
    try:
        servers.append(serve([str(tipg_python), "-m", "uvicorn", "tipg.main:app", "--port", str(tipg_port),
                               "--workers", "1", "--log-level", "warning"], tenv,
                              f"{tipg_base}/collections/public.tipg_buildings/items?limit=1", work, "tipg"))
        targets = {
            "cim_serve": (ours_base, "/api/collections/buildings/items?limit=100&bbox="),
            "tipg": (tipg_base, "/collections/public.tipg_buildings/items?limit=100&bbox="),
        }
        runs: dict[str, list[dict]] = {name: [] for name in targets}
        for _ in range(ROUNDS):
            for name, (base, path) in targets.items():
                runs[name].append(wrk(base, [path + b for b in boxes], work, name))
        results = {}
        for name, (base, path) in targets.items():
            first = get_json(base + path + boxes[0])
            results[name] = {
                **{k: round(float(np.mean([r[k] for r in runs[name]])), 2)
                   for k in ("requests_per_s", "p50_ms", "p99_ms")},
                "non_2xx": sum(r["non_2xx"] for r in runs[name]),
                "runs_requests_per_s": [r["requests_per_s"] for r in runs[name]],
                "features_in_first_bbox": len(first["features"]),
            }
    finally:
        for proc in servers:
            stop(proc)

    return {
        "buildings": n,
        "load": f"16 connections, 20 s x {ROUNDS} alternating runs, 500 random 500 m bboxes in lon/lat, "
                "limit=100, 1 uvicorn worker each; figures are means over the runs",
        **results,
        "rate_ratio": round(results["cim_serve"]["requests_per_s"] / results["tipg"]["requests_per_s"], 2),
    }

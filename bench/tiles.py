"""3D tiles: `cim tiles build` against `py3dtiles export`; `cim serve` and the production layout against nginx.

One run, on the same synthetic buildings (3,000 x scale LOD1 solids with 4-8-vertex footprints near
Zhumadian, in their own CIM_HOME and embedded database under the work folder):
- build: wall time and total bytes of `cim tiles build --layer buildings` and of `py3dtiles export`
  (py3dtiles 12.1.1 in a venv of its own, since it pins numpy < 2.4; its input is a PolyhedralSurfaceZ
  table in EPSG:4978 made from our meshes with the same vertical offset, not timed);
- serve: requests per second of `cim serve` (uvicorn, 1 worker, from its tile cache) and of bare nginx
  (the same cache's files, a config of the bench's own on a free port); then the production layout
  (docs/deploy.md: nginx from `cim deploy nginx` in front of `cim serve --workers 2`) serving the same
  files as a public layer, and again as a restricted layer (nginx's auth_request to the API's key check,
  every request with a key of a granted role). Each under the same wrk load: 16 connections, 20 s, a Lua
  script rotating over the layer's tileset and every tile of it (the per-caller root tileset, which the
  layout proxies to the API once per session, is left out).
py3dtiles' output is not valid 3D Tiles (see ANCHORS.md): it is compared for time and bytes only.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from bench._http import free_port, wrk
from bench._synthetic import footprints

PY3DTILES = "py3dtiles[postgres]==12.1.1"
BUILDINGS_PER_SCALE = 3000
GROUND = 55.0



def _ensure_tools(work: Path) -> Path:
    """wrk and nginx from Debian, py3dtiles in a venv of its own; returns the py3dtiles executable."""
    missing = [pkg for exe, pkg in (("wrk", "wrk"), ("nginx", "nginx")) if not shutil.which(exe)]
    if missing:
        subprocess.run(["apt-get", "install", "-y", *missing], check=True)
    venv = work / "py3dtiles-venv"
    exe = venv / "bin" / "py3dtiles"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", PY3DTILES], check=True)
    return exe


def _buildings(n: int, seed: int = 11):
    """n synthetic buildings (bench/_synthetic.py) as LOD1 solids with the usual attributes."""
    from cim_core.mesh import extrude
    from cim_core.model import CityObject

    fps, height, rng = footprints(n, seed)
    ground = GROUND + rng.uniform(-1.5, 1.5, n).round(2)
    meshes = extrude(fps, ground, ground + height).meshes()
    uses = np.array(["residential", "commercial", "office", "school", "industrial"])
    return [CityObject(key=f"B{j}", cls="building", name=f"Building {j}", lod=1, footprint=fp, mesh=m,
                       attributes={"height": float(h), "floors": int(h // 3), "use": str(uses[j % 5]),
                                   "build_year": int(1960 + j % 60)})
            for j, (fp, m, h) in enumerate(zip(fps, meshes, height))]


def _polyhedral_table(engine, table: str, offset: float) -> int:
    """Our meshes as PolyhedralSurfaceZ in EPSG:4978 (what py3dtiles reads), built as EWKB with numpy."""
    import sqlalchemy as sa

    from cim_core.crs import to_ecef
    from cim_core.db import storage_srid

    srid = storage_srid(engine)
    with engine.connect() as c:
        rows = c.execute(sa.text("select id, mesh_vertices, mesh_faces from city_objects "
                                 "where class = 'building' and mesh_vertices is not null order by id")).all()
    poly = np.dtype([("bo", "u1"), ("t", "<u4"), ("nr", "<u4"), ("np", "<u4"), ("c", "<f8", (4, 3))])
    raw = engine.raw_connection()
    try:
        with raw.driver_connection.cursor() as cur:
            cur.execute(f"drop table if exists {table}")
            cur.execute(f"create table {table} (id bigint primary key, geom geometry(PolyhedralSurfaceZ, 4978))")
            with cur.copy(f"copy {table} (id, geom) from stdin") as cp:
                for r in rows:
                    v = np.frombuffer(r.mesh_vertices, "<f8").reshape(-1, 3).copy()
                    f = np.frombuffer(r.mesh_faces, "<u4").reshape(-1, 3)
                    v[:, 2] += offset
                    e = to_ecef(srid, v)
                    p = np.zeros(len(f), poly)
                    p["bo"], p["t"], p["nr"], p["np"] = 1, 0x80000003, 1, 4  # PolygonZ, one closed ring
                    p["c"] = e[np.column_stack([f, f[:, :1]])]
                    head = np.array([1], "u1").tobytes() + np.array([0xA000000F, 4978, len(f)], "<u4").tobytes()
                    cp.write_row((r.id, (head + p.tobytes()).hex()))
        raw.commit()
    finally:
        raw.close()
    return len(rows)


def _size(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file() and p.name != "state.json"]
    return sum(p.stat().st_size for p in files), len(files)


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}) before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=60) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"no answer from {url}")


def _serve_cim(env: dict, paths: list[str], work: Path) -> dict:
    port = free_port()
    cim = str(Path(sys.executable).with_name("cim"))
    log = (work / "cim-serve.log").open("w")
    proc = subprocess.Popen([cim, "serve", "--port", str(port), "--workers", "1"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        _wait_http(f"http://127.0.0.1:{port}/tiles/tileset.json", proc)  # builds the tile cache
        return wrk(f"http://127.0.0.1:{port}", [f"/tiles/{p}" for p in paths], work, "cim")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _serve_nginx(root: Path, paths: list[str], work: Path, name: str = "nginx") -> dict:
    port = free_port()
    conf = work / "nginx.conf"
    conf.write_text(f"""daemon off;
worker_processes auto;
pid {work / 'nginx.pid'};
error_log {work / 'nginx-error.log'};
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  types {{ application/json json; model/gltf-binary glb; }}
  server {{ listen 127.0.0.1:{port}; root {root}; etag on; }}
}}
""")
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(work)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    try:
        _wait_http(f"http://127.0.0.1:{port}/{paths[0]}", proc, 20)
        return wrk(f"http://127.0.0.1:{port}", [f"/{p}" for p in paths], work, name)
    finally:
        proc.send_signal(signal.SIGQUIT)  # graceful stop of master and workers
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _restrict(engine, layer: str, restricted: bool) -> None:
    import sqlalchemy as sa
    with engine.begin() as c:
        c.execute(sa.text("insert into access_layers values (:l, 'tiles', :r) "
                          "on conflict (name) do update set restricted = :r"), {"l": layer, "r": restricted})


def _nginx_layout(engine, home: Path, api: str, paths: list[str], work: Path, name: str,
                  headers: dict | None = None) -> dict:
    """nginx from `cim deploy nginx` (its standalone configuration) in front of the API at `api`."""
    from services.deploy import write_nginx

    port = free_port()
    layout = write_nginx(work / name, port=port, host="127.0.0.1", api_upstreams=[api], tiles=home / "tiles",
                         engine=engine)
    proc = subprocess.Popen([*layout.command(), "-g", "daemon off;"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{base}/style.css", proc, 20)
        req = urllib.request.Request(f"{base}/tiles/{paths[0]}", headers=headers or {})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 200
        figures = wrk(base, [f"/tiles/{p}" for p in paths], work, name, headers)
        if headers:  # the layer really was checked: without the key, 401
            try:
                urllib.request.urlopen(f"{base}/tiles/{paths[0]}", timeout=30)
                raise RuntimeError("the restricted layer answered without a key")
            except urllib.error.HTTPError as exc:
                figures["without_key_status"] = exc.code
        return {**figures, "restricted": layout.restricted, "warnings": layout.warnings}
    finally:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _serve_layout(env: dict, engine, home: Path, paths: list[str], work: Path, workers: int = 2) -> dict:
    """The production layout with `workers` API processes: the buildings layer public, then restricted."""
    from services import auth

    port = free_port()
    cim = str(Path(sys.executable).with_name("cim"))
    log = (work / "cim-serve-layout.log").open("w")
    api = subprocess.Popen([cim, "serve", "--port", str(port), "--workers", str(workers)], env=env, stdout=log,
                           stderr=subprocess.STDOUT)
    try:
        _wait_http(f"http://127.0.0.1:{port}/tiles/tileset.json", api)
        public = _nginx_layout(engine, home, f"127.0.0.1:{port}", paths, work, "layout-public")
        _restrict(engine, "buildings", True)
        _, key = auth.create_key("admin", "bench", engine=engine)
        restricted = _nginx_layout(engine, home, f"127.0.0.1:{port}", paths, work, "layout-restricted",
                                   {"X-API-Key": key})
    finally:
        _restrict(engine, "buildings", False)
        api.send_signal(signal.SIGINT)
        try:
            api.wait(20)
        except subprocess.TimeoutExpired:
            api.kill()
    return {"api_workers": workers, "public": public, "restricted_auth_request": restricted}


def _content_paths(tileset: Path, prefix: str) -> list[str]:
    uris = []

    def walk(t):
        if "content" in t:
            uris.append(f"{prefix}/{t['content']['uri']}")
        for c in t.get("children", []):
            walk(c)

    walk(json.loads(tileset.read_text())["root"])
    return uris


def _serve_all(env: dict, engine, home: Path, paths: list[str], work: Path) -> dict:
    """`cim serve`, bare nginx, the nginx layout (public, restricted) and bare nginx again on `paths`."""
    load = [os.getloadavg()[0]]
    served_cim = _serve_cim(env, paths, work)  # builds the service's cache: the files every server below serves
    # bare nginx before and after the layout, and the mean as the reference: the machine is shared
    served_nginx = _serve_nginx(home / "tiles", paths, work)
    layout = _serve_layout(env, engine, home, paths, work)
    served_nginx_after = _serve_nginx(home / "tiles", paths, work, "nginx_after")
    load.append(os.getloadavg()[0])
    bare = (served_nginx["requests_per_s"] + served_nginx_after["requests_per_s"]) / 2
    return {
        "cim_serve_1_worker": served_cim,
        "nginx_static": served_nginx,
        "nginx_static_after": served_nginx_after,
        "load_average_1min": load,
        "urls": len(paths),
        "rate_ratio": round(served_cim["requests_per_s"] / bare, 3),
        "nginx_layout": {**layout,
                         "public_ratio": round(layout["public"]["requests_per_s"] / bare, 3),
                         "restricted_ratio": round(layout["restricted_auth_request"]["requests_per_s"] / bare, 3),
                         "goal": "public >= 0.8 and restricted >= 0.3 of bare nginx (the mean of both runs)"},
    }


def run(scale: float, work: Path) -> dict:
    work = work.absolute()
    py3dtiles = _ensure_tools(work)
    home = work / "home"
    env = {**os.environ, "CIM_HOME": str(home), "COLUMNS": "200"}
    env.pop("CIM_DATABASE_URL", None)
    env.pop("CIM_VERTICAL_OFFSET", None)
    os.environ.update({"CIM_HOME": str(home)})
    os.environ.pop("CIM_DATABASE_URL", None)

    from sqlalchemy.engine import make_url

    from cim_core import db as cdb
    from cim_core.model import DatasetInfo
    from cim_core.settings import get_settings
    from cim_core.store import write_dataset

    get_settings.cache_clear()
    engine = cdb.get_engine()
    _restrict(engine, "buildings", False)  # as a run stopped half-way may have left it
    n = max(1, round(BUILDINGS_PER_SCALE * scale))
    write_dataset(DatasetInfo("bench_buildings", "gis", "synthetic", f"bench-{n}"), _buildings(n), engine=engine)
    shutil.rmtree(home / "tiles", ignore_errors=True)  # the service's cache starts empty

    ours = work / "ours"
    shutil.rmtree(ours, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run([str(Path(sys.executable).with_name("cim")), "tiles", "build", "--layer", "buildings",
                    "--out", str(ours)], env=env, check=True, capture_output=True)
    ours_s = time.perf_counter() - t0
    offset = json.loads((ours / "tileset.json").read_text())["extras"]["vertical_offset"]

    _polyhedral_table(engine, "bench_py3dtiles", offset)
    url = make_url(cdb.database_url())
    conninfo = f"host={url.host} port={url.port} dbname={url.database} user={url.username}"
    theirs = work / "py3dtiles"
    shutil.rmtree(theirs, ignore_errors=True)
    t0 = time.perf_counter()
    p3 = subprocess.run([str(py3dtiles), "export", "-D", conninfo, "-t", "bench_py3dtiles", "-c", "geom",
                         "-i", "id", "-s", str(theirs)], capture_output=True, text=True, check=False)
    theirs_s = time.perf_counter() - t0
    if p3.returncode != 0:
        raise RuntimeError(f"py3dtiles export failed: {p3.stderr.strip().splitlines()[-1:]}")

    ours_bytes, ours_files = _size(ours / "buildings")
    theirs_bytes, theirs_files = _size(theirs)
    paths = ["buildings/tileset.json", *_content_paths(ours / "buildings" / "tileset.json", "buildings")]
    try:
        served = _serve_all(env, engine, home, paths, work)
    finally:
        cdb.embedded().stop()
    return {
        "buildings": n,
        "build": {
            "cim_tiles_build": {"seconds": round(ours_s, 2), "bytes": ours_bytes, "files": ours_files,
                                "bytes_per_feature": round(ours_bytes / n, 1),
                                "content": "3D Tiles 1.1 glb, EXT_mesh_features + EXT_structural_metadata "
                                           "(id, class, name, height, floors, use, build_year), "
                                           "KHR_mesh_quantization + EXT_meshopt_compression, generalised parents"},
            "py3dtiles_export": {"seconds": round(theirs_s, 2), "bytes": theirs_bytes, "files": theirs_files,
                                 "bytes_per_feature": round(theirs_bytes / n, 1),
                                 "content": "b3dm (3D Tiles 1.0), id only, no batch ids: NOT VALID "
                                            "(triangles index the first building's vertices; see ANCHORS.md)"},
            "speedup": round(theirs_s / ours_s, 2),
            "bytes_ratio": round(ours_bytes / theirs_bytes, 3),
        },
        "serve": served,
    }

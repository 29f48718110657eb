"""A served API under trouble (issue 12): the database restarted under a running server, and a minute of
mixed load from 16 clients. Real processes: the embedded PostgreSQL, uvicorn, wrk."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from conftest import ARTIFACTS
from test_api import X0, Y0, bim_tree, buildings, info, lonlat, pipes

from cim_core.db import free_port
from cim_core.store import write_dataset
from services import auth

ROOT = Path(__file__).resolve().parent.parent




def start_server(env: dict, home: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "services.app:create_app",
                             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                            cwd=home, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/api", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            pytest.fail("uvicorn exited")
        time.sleep(0.1)
    pytest.fail("uvicorn did not answer")


def stop_server(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()




def test_database_restart_under_a_running_server(own_cluster, tmp_path):
    emb, engine = own_cluster
    write_dataset(info("blocks"), buildings(50), engine=engine)
    env = {**os.environ, "CIM_DATABASE_URL": emb.url(), "CIM_HOME": str(tmp_path / "home")}
    proc, base = start_server(env, tmp_path)
    url = f"{base}/api/collections/buildings/items?limit=5"
    try:
        assert httpx.get(url, timeout=10).status_code == 200
        emb.stop()
        for _ in range(3):  # requests in the gap: 503 problem+json, quickly
            r = httpx.get(url, timeout=10)
            assert r.status_code == 503, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
            assert str(emb.port) not in r.text
        emb.start()
        back = time.monotonic()
        while True:
            status = httpx.get(url, timeout=10).status_code
            if status == 200:
                break
            assert time.monotonic() - back < 5.0, f"still {status} 5 s after the database came back"
            time.sleep(0.1)
        # and it keeps serving, every request
        assert all(httpx.get(url, timeout=10).status_code == 200 for _ in range(20))
    finally:
        stop_server(proc)


def _mixed_urls(engine, base: str, key: str) -> list[str]:
    """Feature pages (bbox, filter, paging), tiles, building detail and search, in a mixed rotation."""
    with engine.connect() as c:
        house = c.scalar(sa.text("select id from city_objects where key = 'H'"))
        ids = c.scalars(sa.text("select id from city_objects where class = 'building' order by id limit 20")).all()
    tiles = httpx.get(f"{base}/tiles/buildings/tileset.json", timeout=60).json()
    glbs = []

    def walk(t):
        if "content" in t and t["content"]["uri"].endswith(".glb"):
            glbs.append(f"/tiles/buildings/{t['content']['uri']}")
        for ch in t.get("children", []):
            walk(ch)
    walk(tiles["root"])
    (w, s), (e, n) = lonlat(X0, Y0), lonlat(X0 + 400, Y0 + 200)
    urls = [f"/api/collections/buildings/items?limit=50&bbox={w},{s},{e},{n}",
            "/api/collections/buildings/items?limit=20&filter=floors%3E4",
            f"/api/collections/pipes_water/items?key={key}",
            f"/api/buildings/{house}?expand=elements", "/api/search?q=Block%2000", "/tiles/tileset.json",
            "/tiles/buildings/tileset.json", *glbs[:5], *(f"/api/objects/{i}" for i in ids[:5])]
    for u in urls:  # every URL of the rotation answers 200 before the load
        assert httpx.get(base + u, timeout=60).status_code == 200, u
    return urls


def test_a_minute_of_mixed_load_has_no_errors(db, tmp_path):
    write_dataset(info("blocks"), buildings(2000), engine=db)
    write_dataset(info("network"), pipes(), engine=db)
    write_dataset(info("haus.ifc"), bim_tree(), engine=db)
    _, key = auth.create_key("utilities", engine=db)
    env = {**os.environ, "CIM_DATABASE_URL": db.url.render_as_string(hide_password=False),
           "CIM_HOME": str(tmp_path / "home")}
    proc, base = start_server(env, tmp_path)
    try:
        urls = _mixed_urls(db, base, key)
        script = tmp_path / "mixed.lua"
        script.write_text("paths = {\n" + ",\n".join(f'  "{u}"' for u in urls) + "\n}\n"
                          "i = 0\nrequest = function()\n  i = i % #paths + 1\n"
                          "  return wrk.format(\"GET\", paths[i])\nend\n")
        out = subprocess.run(["wrk", "-t2", "-c16", "-d60s", "--timeout", "10s", "--latency", "-s", str(script),
                              base], capture_output=True, text=True, timeout=120, check=True).stdout
    finally:
        stop_server(proc)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    assert requests > 1000, out
    assert "Non-2xx" not in out and "Socket errors" not in out, out

    def ms(label):
        m = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out)
        return round(float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)], 1)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "mixed_load.json").write_text(json.dumps(
        {"requests": requests, "seconds": 60, "connections": 16, "p50_ms": ms("50"), "p99_ms": ms("99"),
         "urls": len(urls)}, indent=1))

"""Serving for real (issue 12): the viewer serves only its own files, and the production layout — nginx
(`cim deploy nginx`) in front of `cim serve` workers — serves public tiles statically, restricted tiles
after the API's key check (401/403/200), the API and the viewer. nginx and the workers are real processes."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from test_tiles import buildings, pipes

from cim_core.db import free_port
from cim_core.settings import get_settings
from services import auth
from services.app import CESIUM_BUILD, create_app
from services.deploy import unreadable_by_others, write_nginx

ROOT = Path(__file__).parent.parent
LEAKS = ("/node_modules/cesium/package.json", "/package-lock.json", "/package.json", "/node_modules/.package-lock.json")


def test_viewer_serves_its_page_modules_and_cesium_only(db):
    with TestClient(create_app()) as client:
        for path in LEAKS:
            r = client.get(path)
            assert r.status_code == 404, path
            assert r.headers["content-type"].startswith("application/problem+json")
        page = client.get("/")
        assert page.status_code == 200 and "js/main.js" in page.text
        assert client.get("/index.html").status_code == 200
        assert client.get("/style.css").headers["content-type"].startswith("text/css")
        for module in sorted((ROOT / "viewer" / "js").glob("*.js")):
            r = client.get(f"/js/{module.name}")
            assert r.status_code == 200 and "javascript" in r.headers["content-type"], module.name
        assert client.get("/js/../package.json").status_code == 404
        if (CESIUM_BUILD / "Cesium.js").exists():  # after `npm ci` in viewer/
            assert client.get("/cesium/Cesium.js").status_code == 200


# ---------------------------------------------------------------- the nginx layout


def wait_for(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args[0]} exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=30).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    pytest.fail(f"no answer from {url}: {log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def served(db, monkeypatch):
    """`cim serve --workers 2` on a free port, nginx from `cim deploy nginx` in front of it; the tile cache
    and nginx's files in a world-readable folder (nginx's workers run as nobody)."""
    nginx = shutil.which("nginx")
    assert nginx, "nginx is not installed (.ci/install installs Debian's nginx)"
    home = Path(tempfile.mkdtemp(prefix="cim-deploy-"))
    home.chmod(0o755)
    monkeypatch.setenv("CIM_HOME", str(home))
    get_settings.cache_clear()
    buildings(n=40, engine=db)
    pipes(engine=db)
    api_port, port = free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CIM_HOME": str(home)}
    api_log = home / "serve.log"
    api = subprocess.Popen([sys.executable, "-c", f"from services.serve import run; run(port={api_port}, workers=2)"],
                           env=env, stdout=api_log.open("w"), stderr=subprocess.STDOUT)
    proxy = None
    try:
        wait_for(f"http://127.0.0.1:{api_port}/api", api, api_log)
        layout = write_nginx(home / "nginx", port=port, host="127.0.0.1", api_upstreams=[f"127.0.0.1:{api_port}"],
                             engine=db)
        assert layout.public == ["buildings", "bim", "ground"] and layout.restricted == ["pipes"]
        assert layout.warnings == [], layout.warnings
        check = subprocess.run([*layout.command(), "-t"], capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stderr
        log = home / "nginx" / "logs" / "error.log"
        proxy = subprocess.Popen([*layout.command(), "-g", "daemon off;"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.STDOUT)
        wait_for(f"http://127.0.0.1:{port}/style.css", proxy, log, 30)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            yield client
    finally:
        if proxy is not None:
            stop(proxy, signal.SIGQUIT)
        stop(api, signal.SIGINT)
        get_settings.cache_clear()
        shutil.rmtree(home, ignore_errors=True)


def problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["detail"]
    return body


def contents(tileset: dict) -> list[str]:
    found = []

    def walk(t):
        if "content" in t:
            found.append(t["content"]["uri"])
        for c in t.get("children", []):
            walk(c)

    walk(tileset["root"])
    return found


def test_public_tiles_through_nginx(served, db):
    root = served.get("/tiles/tileset.json")  # from the API: builds the cache, lists what anonymous may read
    assert root.status_code == 200 and root.headers["cache-control"] == "public, no-cache"
    assert [la["name"] for la in root.json()["extras"]["layers"]] == ["buildings"]
    r = served.get("/tiles/buildings/tileset.json", headers={"accept-encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.headers["content-encoding"] == "gzip" and r.headers["cache-control"] == "public, no-cache"
    assert "X-API-Key" in r.headers.get_list("vary") and r.json()["asset"]["version"] == "1.1"
    assert served.get("/tiles/buildings/tileset.json", headers={"if-none-match": r.headers["etag"]}).status_code == 304
    uris = contents(r.json())
    assert uris
    for uri in uris:
        tile = served.get(f"/tiles/buildings/{uri}")
        assert tile.status_code == 200 and tile.content[:4] == b"glTF"
        assert tile.headers["content-type"] == "model/gltf-binary"
        assert tile.headers["cache-control"] == "public, max-age=60" and tile.headers["etag"]
    assert served.get("/tiles/buildings/9/9/9.glb").status_code == 404
    assert served.get("/tiles/state.json").status_code == 404  # the cache's own files are not served


def test_restricted_tiles_through_nginx_auth_request(served, db):
    _, utilities = auth.create_key("utilities", "pipes office", engine=db)
    _, water = auth.create_key("water", "water utility", engine=db)  # pipes_water only: not the pipes tiles
    root = served.get("/tiles/tileset.json", headers={"X-API-Key": utilities})
    assert "pipes" in [la["name"] for la in root.json()["extras"]["layers"]]
    assert root.headers["cache-control"].startswith("private")
    url = "/tiles/pipes/tileset.json"
    problem(served.get(url), 401)
    assert served.get(url).headers["www-authenticate"].startswith("ApiKey")
    problem(served.get(url, headers={"X-API-Key": water}), 403)
    problem(served.get(url, headers={"X-API-Key": "cim_not-a-key"}), 401)
    ok = served.get(url, headers={"X-API-Key": utilities})
    assert ok.status_code == 200 and ok.headers["content-type"] == "application/json"
    assert ok.headers["cache-control"] == "private, no-cache" and "X-API-Key" in ok.headers.get_list("vary")
    assert served.get(f"{url}?key={utilities}").status_code == 200
    problem(served.get(f"{url}?key={water}"), 403)
    for uri in contents(ok.json()):
        tile = f"/tiles/pipes/{uri}"
        problem(served.get(tile), 401)
        r = served.get(tile, params={"key": utilities})
        assert r.status_code == 200 and r.content[:4] == b"glTF" and r.headers["cache-control"] == "private, max-age=60"
    # the key check audits the original path, with the key masked
    with db.connect() as c:
        paths = c.scalars(sa.text("select path from audit_log where layer = 'pipes' and status = 200")).all()
    assert "/tiles/pipes/tileset.json" in paths and not any(utilities in p for p in paths)
    # nginx keeps the check's answers for a few seconds (most tile requests never reach Python)
    assert any(p.is_file() for p in (Path(os.environ["CIM_HOME"]) / "nginx" / "auth-cache").rglob("*"))


def test_api_and_viewer_through_nginx(served, db):
    collections = served.get("/api/collections")
    assert collections.status_code == 200 and "buildings" in {c["id"] for c in collections.json()["collections"]}
    problem(served.get("/api/collections/pipes_gas/items"), 401)
    page = served.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "js/main.js" in page.text
    assert served.get("/js/main.js").headers["content-type"] == "application/javascript"
    assert served.get("/style.css").status_code == 200
    assert served.get("/cesium/Cesium.js").status_code == 200
    for path in LEAKS:
        assert served.get(path).status_code == 404, path


def test_unreadable_folders_are_reported(tmp_path):
    secret = tmp_path / "a" / "tiles"
    secret.mkdir(parents=True)
    (secret / "tileset.json").write_text("{}")
    (tmp_path / "a").chmod(0o700)
    (secret / "tileset.json").chmod(0o600)
    found = unreadable_by_others(secret)
    assert any("may not enter" in w and w.startswith(str(tmp_path / "a")) for w in found)
    assert any("not world-readable" in w for w in found)


def test_cli_deploy_nginx_writes_the_layout_and_nginx_accepts_it(db, cli_env, tmp_path):
    out = subprocess.run([sys.executable, "-m", "services.cli", "deploy", "nginx", "--out", str(tmp_path / "ng"),
                          "--port", "18080", "--api-upstream", "127.0.0.1:18000"], env=cli_env,
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "restricted (checked with auth_request): pipes" in " ".join(out.stdout.split())
    check = subprocess.run(["nginx", "-t", "-c", str(tmp_path / "ng" / "nginx.conf"), "-p", str(tmp_path / "ng")],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr
    bad = subprocess.run([sys.executable, "-m", "services.cli", "deploy", "nginx", "--out", str(tmp_path / "x"),
                          "--port", "70000"], env=cli_env, capture_output=True, text=True, check=False)
    assert bad.returncode == 1 and bad.stderr.strip().startswith("error: port 70000 is out of range")

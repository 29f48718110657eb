"""Real clients against a running `uvicorn services.app:create_app`: GDAL's OGC API - Features driver
and schemathesis (no 5xx for any request the OpenAPI definition allows)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from test_api import X0, Y0, bim_tree, buildings, info, lonlat, pipes

from cim_core.db import free_port
from cim_core.store import write_dataset

ROOT = Path(__file__).resolve().parent.parent




@pytest.fixture
def server(db, cli_env):
    write_dataset(info("blocks"), buildings(300), engine=db)
    write_dataset(info("network"), pipes(), engine=db)
    write_dataset(info("haus.ifc"), bim_tree(), engine=db)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "services.app:create_app",
                             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                            cwd=ROOT, env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/api", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                pytest.fail(f"uvicorn exited: {proc.stdout.read().decode()[-2000:]}")
            time.sleep(0.1)
        yield base
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def test_gdal_lists_collections_and_reads_a_bbox(server):
    listing = subprocess.run(["ogrinfo", "-ro", "-q", f"OAPIF:{server}/api"], capture_output=True, text=True,
                             timeout=120, check=False)
    assert listing.returncode == 0, listing.stderr
    layers = {line.split(":", 1)[1].split("(")[0].strip() for line in listing.stdout.splitlines() if ":" in line}
    assert {"buildings", "bim_elements", "storeys"} <= layers
    assert not any(name.startswith("pipe") for name in layers)
    (w, s), (e, n) = lonlat(X0 - 1, Y0 + 1), lonlat(X0 + 51, Y0 + 9)  # buildings 0, 1 and 2
    read = subprocess.run(["ogrinfo", "-ro", f"OAPIF:{server}/api", "buildings", "-spat", str(w), str(s), str(e),
                           str(n)], capture_output=True, text=True, timeout=120, check=False)
    assert read.returncode == 0, read.stderr
    assert read.stdout.count("OGRFeature(buildings)") == 3
    for name in ("Block 00000", "Block 00001", "Block 00002"):
        assert f"name (String) = {name}" in read.stdout
    assert "height (Real) = 10" in read.stdout and "POLYGON" in read.stdout


def test_schemathesis_finds_no_server_error(server, tmp_path):
    run = subprocess.run(
        [str(Path(sys.executable).parent / "schemathesis"), "run", f"{server}/api/openapi.json",
         "--url", server, "--checks", "not_a_server_error", "--max-examples", "25",
         "--generation-deterministic", "--request-timeout", "20", "--phases", "examples,fuzzing",
         "--suppress-health-check", "all"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    paths = httpx.get(f"{server}/api/openapi.json").json()["paths"]
    operations = sum(len(methods) for methods in paths.values())
    assert f"Tested: {operations}" in run.stdout and " passed" in run.stdout, run.stdout[-2000:]

"""Static tilesets on S3-compatible object storage, against a real local S3 server (moto's server mode)."""
from __future__ import annotations

import gzip
import json
import posixpath
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest
from test_tiles import GROUND, SMALL, bim, box, buildings, origin, pipes

from cim_core.db import free_port
from cim_core.errors import InputError
from cim_core.model import CityObject, DatasetInfo, Mesh
from cim_core.settings import get_settings
from cim_core.store import write_dataset
from services.tiles import build

KEY, SECRET = "cim-test-key", "cim-test-secret"




@pytest.fixture(scope="module")
def s3_server():
    """`moto_server` on a free port for this module; stopped at the end."""
    port = free_port()
    server = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen([str(server), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "moto_server did not start"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def s3(s3_server, monkeypatch):
    """A new bucket; the environment a user would set (AWS credentials and region, CIM_S3_ENDPOINT_URL)."""
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("CIM_S3_ENDPOINT_URL", s3_server)
    get_settings.cache_clear()
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1", aws_access_key_id=KEY,
                          aws_secret_access_key=SECRET)
    bucket = "tiles-" + uuid.uuid4().hex[:10]
    client.create_bucket(Bucket=bucket)
    yield client, bucket
    get_settings.cache_clear()


def objects(client, bucket: str, prefix: str) -> dict[str, dict]:
    """key below prefix -> head_object of it."""
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    return {k[len(prefix) + 1:]: client.head_object(Bucket=bucket, Key=k) for k in keys}


def get_json(client, bucket: str, key: str) -> dict:
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert body[:2] == b"\x1f\x8b", key  # stored gzip-compressed, as its Content-Encoding says
    return json.loads(gzip.decompress(body))


def referenced(client, bucket: str, prefix: str, rel: str = "tileset.json") -> set[str]:
    """Every object a tileset names (external tilesets followed), relative to prefix; each must exist."""
    found = {rel}
    ts = get_json(client, bucket, f"{prefix}/{rel}")
    stack = [ts["root"]]
    while stack:
        tile = stack.pop()
        stack.extend(tile.get("children", []))
        uri = tile.get("content", {}).get("uri")
        if uri:
            target = posixpath.normpath(posixpath.join(posixpath.dirname(rel), uri))
            found |= referenced(client, bucket, prefix, target) if uri.endswith(".json") else {target}
    return found


def stamps(heads: dict[str, dict]) -> dict:
    return {k: h["LastModified"] for k, h in heads.items()}


def check_headers(heads: dict[str, dict]) -> None:
    for rel, h in heads.items():
        if rel.endswith(".json"):
            assert (h["ContentType"], h.get("ContentEncoding"), h["CacheControl"]) == (
                "application/json", "gzip", "no-cache"), rel
        else:
            assert rel.endswith(".glb"), rel
            assert (h["ContentType"], h.get("ContentEncoding"), h["CacheControl"]) == (
                "model/gltf-binary", None, "public, max-age=60"), rel


def test_tiles_on_s3_have_headers_reference_existing_objects_and_match_a_folder_build(db, s3, tmp_path):
    client, bucket = s3
    buildings(engine=db)
    bim(engine=db)
    pipes(engine=db)
    report = build(f"s3://{bucket}/city", engine=db, opts=SMALL)
    assert report.out == f"s3://{bucket}/city"
    assert {r.layer: r.withheld for r in report.layers} == {"buildings": False, "bim": False, "pipes": True,
                                                             "ground": False}
    heads = objects(client, bucket, "city")
    check_headers(heads)
    names = referenced(client, bucket, "city")
    assert names <= set(heads)
    assert set(heads) - names == {"state.json"}  # no orphan content
    assert not any(k.startswith("pipes/") for k in heads)  # restricted: a bucket cannot check keys
    root = get_json(client, bucket, "city/tileset.json")
    assert [la["name"] for la in root["extras"]["layers"]] == ["buildings", "bim"]
    # the same bytes as a build into a local folder (where the restricted layer is written, as before)
    local = tmp_path / "tiles"
    build(local, engine=db, opts=SMALL)
    for rel in heads:
        if rel.endswith(".glb"):
            stored = client.get_object(Bucket=bucket, Key=f"city/{rel}")["Body"].read()
            assert stored == (local / rel).read_bytes(), rel
    assert (local / "pipes" / "tileset.json").exists()
    assert {p.relative_to(local).as_posix() for p in local.glob("b*/**/*.glb")} == {
        k for k in heads if k.endswith(".glb")}


def test_incremental_build_on_s3_uploads_only_changes(db, s3):
    client, bucket = s3
    buildings(n=64, engine=db)
    build(f"s3://{bucket}/inc", engine=db, opts=SMALL, incremental=True)
    first = objects(client, bucket, "inc")
    time.sleep(1.1)  # LastModified has whole seconds
    again = build(f"s3://{bucket}/inc", engine=db, opts=SMALL, incremental=True)
    assert all(r.skipped or r.features == 0 for r in again.layers if not r.withheld)
    second = objects(client, bucket, "inc")
    assert stamps(second) == stamps(first)

    ox, oy = origin()  # a kiosk in one corner: only the tiles over it change
    v, f = box(ox + 1, oy + 1, GROUND, 5, 5, 40)
    write_dataset(DatasetInfo("kiosk", "gis", "kiosk.gpkg", "kiosk"),
                  [CityObject(key="k", cls="building", name="Kiosk", mesh=Mesh(v, f),
                              attributes={"height": 40})],
                  engine=db)
    rep = build(f"s3://{bucket}/inc", engine=db, opts=SMALL, incremental=True)
    b = next(r for r in rep.layers if r.layer == "buildings")
    assert b.features == 65 and 0 < b.rebuilt < b.tiles and b.reused > 0
    third = objects(client, bucket, "inc")
    check_headers(third)
    names = referenced(client, bucket, "inc")
    assert names <= set(third) and set(third) - names == {"state.json"}
    assert get_json(client, bucket, "inc/state.json")["layers"]["buildings"]["features"] == 65
    kept = [k for k in first if k.endswith(".glb") and third.get(k, {}).get("ETag") == first[k]["ETag"]]
    assert kept and all(third[k]["LastModified"] == first[k]["LastModified"] for k in kept)


def test_restricted_layers_only_on_request_and_removed_again(db, s3):
    client, bucket = s3
    buildings(engine=db)
    pipes(engine=db)
    with pytest.raises(InputError, match="pipes: restricted, so not written to object storage"):
        build(f"s3://{bucket}/r", ["pipes"], engine=db, opts=SMALL)
    build(f"s3://{bucket}/r", engine=db, opts=SMALL, include_restricted=True)
    heads = objects(client, bucket, "r")
    assert any(k.startswith("pipes/") for k in heads) and referenced(client, bucket, "r") <= set(heads)
    layers = get_json(client, bucket, "r/tileset.json")["extras"]["layers"]
    assert {"name": "pipes", "restricted": True} in layers
    build(f"s3://{bucket}/r", engine=db, opts=SMALL)  # without the flag, the restricted layer leaves the bucket
    heads = objects(client, bucket, "r")
    assert not any(k.startswith("pipes/") for k in heads)
    assert set(heads) - referenced(client, bucket, "r") == {"state.json"}


def test_storage_errors_are_one_line(db, s3):
    buildings(engine=db)
    with pytest.raises(InputError, match="no such bucket"):
        build("s3://no-such-bucket-here/city", engine=db, opts=SMALL)
    with pytest.raises(InputError, match="local folder or an s3:// URL only"):
        build("gs://somewhere/city", engine=db, opts=SMALL)

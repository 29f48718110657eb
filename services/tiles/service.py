"""The /tiles router: 3D Tiles 1.1 from a tile cache on disk ($CIM_HOME/tiles), kept up to date.

At most once a second a request checks the change_log; when imports landed since the cache's last
build, the cache is brought up to date incrementally (only tiles whose quad a change touched are
re-encoded, so every other tile keeps its bytes and its ETag). One build runs at a time, also across
processes (a file lock). Responses carry a strong ETag (hash of the bytes) and Cache-Control;
If-None-Match answers 304; JSON is gzip-compressed for clients that accept it.
"""
from __future__ import annotations

import fcntl
import gzip
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
from fastapi import APIRouter, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from cim_core.db import get_engine
from cim_core.errors import InputError
from cim_core.settings import get_settings
from services import auth

from .builder import STATE_FORMAT, BuildReport, TreeOptions, build, etag_of, last_change_id, read_json
from .source import LAYERS

router = APIRouter(prefix="/tiles", tags=["3D Tiles"])

CHECK_INTERVAL_S = 1.0
MEMORY_FILES = 20_000
# JSON is revalidated every time (a 304 is cheap, stale trees are not); content URLs are stable per quad and
# revalidate after a minute. Restricted layers' responses are `private`: no shared cache or CDN may hand a
# keyed response to another caller.
JSON_CACHE = "no-cache"
CONTENT_CACHE = "max-age=60"
OPTIONS: TreeOptions | None = None       # tree options of the cache's builds (tests make small trees)


@dataclass
class _Entry:
    data: bytes
    gz: bytes | None
    etag: str


class _Cache:
    """Per process: the files served so far, valid while the cache's state (its build) stays the same."""

    def __init__(self):
        self.lock = threading.Lock()
        self.checked = 0.0
        self.report: BuildReport | None = None
        self.dir = cache_dir()
        self.files: dict[str, _Entry] = {}
        self.build_stamp: tuple | None = None


def cache_dir() -> Path:
    return Path(get_settings().home).absolute() / "tiles"


_cache = _Cache()


def reset() -> None:
    """Forget in-process state (the settings or the database changed)."""
    global _cache
    _cache = _Cache()


def reset_clock() -> None:
    """Make the next request check the change_log at once."""
    _cache.checked = 0.0


def last_report() -> BuildReport | None:
    return _cache.report


def refresh(force: bool = False) -> BuildReport | None:
    """Bring the tile cache up to date with the database; returns the build report, None if it was fresh."""
    out = _cache.dir
    out.mkdir(parents=True, exist_ok=True)
    engine = get_engine()
    with _cache.lock, open(out / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker process may be building the same cache
        state = read_json(out / "state.json")
        with engine.connect() as conn:
            current = last_change_id(conn)
        stale = not state or state["change_id"] < current or state.get("format") != STATE_FORMAT
        if force or stale or not (out / "tileset.json").exists():
            _cache.report = build(out, engine=engine, incremental=True, opts=OPTIONS)
        # files in memory stay valid until a build (of this process or another worker) rewrote the cache
        st = (out / "state.json").stat()
        if _cache.build_stamp != (st.st_mtime_ns, st.st_size):
            _cache.files.clear()
            _cache.build_stamp = (st.st_mtime_ns, st.st_size)
        return _cache.report


async def _fresh() -> None:
    now = time.monotonic()
    if now - _cache.checked < CHECK_INTERVAL_S:
        return
    _cache.checked = now
    try:
        await run_in_threadpool(refresh)
    except InputError as exc:  # nothing to tile yet
        raise HTTPException(404, str(exc)) from None


def _load(rel: str, compress: bool) -> _Entry:
    entry = _cache.files.get(rel)
    if entry is None:
        try:
            data = (_cache.dir / rel).read_bytes()
        except FileNotFoundError:
            raise HTTPException(404, "no such tile") from None
        entry = _Entry(data, gzip.compress(data, 6) if compress else None, f'"{etag_of(data)}"')
        if len(_cache.files) > MEMORY_FILES:  # bounded; beyond it files come from the OS page cache
            _cache.files.clear()
        _cache.files[rel] = entry
    return entry


def _serve(request: Request, rel: str, media_type: str, cache_control: str, is_json: bool,
           private: bool = False, entry: _Entry | None = None) -> Response:
    entry = entry or _load(rel, is_json)
    headers = {"ETag": entry.etag, "Cache-Control": f"{'private' if private else 'public'}, {cache_control}"}
    headers["Vary"] = "Accept-Encoding, X-API-Key" if is_json else "X-API-Key"
    if request.headers.get("if-none-match") in (entry.etag, f"W/{entry.etag}"):
        return Response(status_code=304, headers=headers)
    if entry.gz is not None and "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(entry.gz, media_type=media_type, headers=headers)
    return Response(entry.data, media_type=media_type, headers=headers)


def _check_layer(layer: str) -> None:
    if layer not in LAYERS:
        raise HTTPException(404, f"no tile layer {layer!r}; layers: {', '.join(LAYERS)}")


def _for_caller(request: Request, entry: _Entry) -> tuple[_Entry, bool]:
    """The root tileset as this caller may see it: restricted layers it may not read are left out.
    Returns the entry and whether it is a keyed caller's own (private)."""
    who = auth.caller(request)
    root = orjson.loads(entry.data)
    layers = root.get("extras", {}).get("layers", [])
    hidden = {la["name"] for la in layers if not auth.may_read(who, la["name"])}
    if hidden:
        root["extras"]["layers"] = [la for la in layers if la["name"] not in hidden]
        kids = root["root"]["children"] = [c for c in root["root"]["children"]
                                           if c["content"]["uri"].split("/")[0] not in hidden]
        if not kids:
            raise HTTPException(401 if who.anonymous else 403, "no tile layer you may read")
        data = orjson.dumps(root)
        entry = _Entry(data, gzip.compress(data, 6), f'"{etag_of(data)}"')
    return entry, not who.anonymous


@router.get("/tileset.json", summary="Root tileset: every layer the caller may read, as an external tileset")
async def root_tileset(request: Request) -> Response:
    await _fresh()
    entry, private = _for_caller(request, _load("tileset.json", True))
    return _serve(request, "tileset.json", "application/json", JSON_CACHE, True, private, entry)


@router.get("/{layer}/tileset.json", summary="Tileset of one layer: buildings, bim or pipes")
async def layer_tileset(layer: str, request: Request) -> Response:
    _check_layer(layer)
    await _fresh()
    return _serve(request, f"{layer}/tileset.json", "application/json", JSON_CACHE, True, auth.is_restricted(layer))


@router.get("/{layer}/{level}/{x}/{name}", summary="glb content of one tile")
async def content(layer: str, level: str, x: str, name: str, request: Request) -> Response:
    _check_layer(layer)
    stem, _, ext = name.partition(".")
    if ext != "glb" or not (stem.isdigit() and level.isdigit() and x.isdigit()):  # also keeps paths inside
        raise HTTPException(404, "no such tile")
    await _fresh()
    return _serve(request, f"{layer}/{level}/{x}/{name}", "model/gltf-binary", CONTENT_CACHE, False,
                  auth.is_restricted(layer))

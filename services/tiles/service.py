"""The /tiles router: 3D Tiles 1.1 from a tile cache on disk ($CIM_HOME/tiles), kept up to date.

At most once a second a request checks the change_log; when imports landed since the cache's last
build, the cache is brought up to date incrementally (only tiles whose quad a change touched are
re-encoded, so every other tile keeps its bytes and its ETag). One build runs at a time across all
worker processes (a PostgreSQL advisory lock); while one process builds, the others keep serving the
previous files, which the builder replaces one by one atomically (write a temporary file, rename it over
the old one), so a reader sees the old file or the new one, never half of one. Responses carry a strong ETag (hash of the bytes) and Cache-Control;
If-None-Match answers 304; JSON is gzip-compressed for clients that accept it.
"""
from __future__ import annotations

import gzip
import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import orjson
import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from cim_core import scenarios
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
    """Per process: the files served so far, valid while the cache's state (its build) stays the same.
    One for the as-is model ($CIM_HOME/tiles), one per renewal scenario (tiles/scenarios/<id>)."""

    def __init__(self, scenario_id: int | None = None):
        self.lock = threading.Lock()
        self.checked = 0.0
        self.report: BuildReport | None = None
        self.scenario_id = scenario_id
        self.dir = cache_dir() if scenario_id is None else cache_dir() / "scenarios" / str(scenario_id)
        self.files: dict[str, _Entry] = {}
        self.build_stamp: tuple | None = None


def cache_dir() -> Path:
    return Path(get_settings().home).absolute() / "tiles"


_cache = _Cache()
_scenario_caches: dict[int, _Cache] = {}


def reset() -> None:
    """Forget in-process state (the settings or the database changed)."""
    global _cache
    _cache = _Cache()
    _scenario_caches.clear()


def reset_clock() -> None:
    """Make the next request check the change_log at once."""
    _cache.checked = 0.0


def last_report() -> BuildReport | None:
    return _cache.report


def lock_key(out: Path) -> int:
    """The advisory-lock key of one cache folder: caches in other folders may build side by side."""
    return int.from_bytes(hashlib.blake2b(str(out).encode(), digest_size=8).digest(), "big", signed=True)


@contextmanager
def builder_lock(engine: sa.Engine, out: Path, wait: bool) -> Iterator[bool]:
    """The cache's builder lock (pg_try_advisory_lock, or pg_advisory_lock with `wait`), held on a
    connection of its own for the whole build; yields whether this process holds it.

    The connection is detached from the pool, so closing it releases the lock whatever happened;
    a process that dies releases it with its connection."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.detach()
        key = lock_key(out)
        if wait:
            conn.execute(sa.text("select pg_advisory_lock(:k)"), {"k": key})
        mine = wait or bool(conn.scalar(sa.text("select pg_try_advisory_lock(:k)"), {"k": key}))
        yield mine


def _stale(out: Path, engine: sa.Engine) -> bool:
    state = read_json(out / "state.json")
    with engine.connect() as conn:
        current = last_change_id(conn)
    return (not state or state["change_id"] < current or state.get("format") != STATE_FORMAT
            or not (out / "tileset.json").exists())


def refresh(force: bool = False, cache: _Cache | None = None) -> BuildReport | None:
    """Bring the tile cache (the as-is one unless given) up to date with the database. Returns the report of
    the build this call made; None when the cache was fresh or another thread or process is building it (the
    previous files are served meanwhile). Only a cache that was never built makes the caller wait."""
    cache = cache or _cache
    out = cache.dir
    out.mkdir(parents=True, exist_ok=True)
    engine = get_engine()
    first = not (out / "state.json").exists()
    if not cache.lock.acquire(blocking=first):
        return None
    report = None
    try:
        if force or _stale(out, engine):
            with builder_lock(engine, out, wait=first) as mine:
                if mine and (force or _stale(out, engine)):  # another process may have built it meanwhile
                    report = cache.report = build(out, engine=engine, incremental=True, opts=OPTIONS,
                                                  **_scenario_build(cache))
        _forget_if_rebuilt(out, cache)
    finally:
        cache.lock.release()
    return report


def _scenario_build(cache: _Cache) -> dict:
    """A scenario's build: its model, on the as-is tileset's ground (its vertical offset)."""
    if cache.scenario_id is None:
        return {}
    if not (_cache.dir / "state.json").exists():
        refresh()
    state = read_json(_cache.dir / "state.json") or {}
    return {"scenario_id": cache.scenario_id, "vertical_offset": state.get("vertical_offset")}


def _forget_if_rebuilt(out: Path, cache: _Cache) -> None:
    """Files in memory stay valid until a build (of this process or another) rewrote the cache."""
    try:
        st = (out / "state.json").stat()
    except FileNotFoundError:
        return
    if cache.build_stamp != (st.st_mtime_ns, st.st_size):
        cache.files.clear()
        cache.build_stamp = (st.st_mtime_ns, st.st_size)


async def _fresh(cache: _Cache | None = None) -> _Cache:
    cache = cache or _cache
    now = time.monotonic()
    # a cache never built (a scenario's first requests) makes every request wait for its first build
    if now - cache.checked < CHECK_INTERVAL_S and (cache.dir / "state.json").exists():
        return cache
    cache.checked = now
    try:
        await run_in_threadpool(refresh, False, cache)
    except InputError as exc:  # nothing to tile yet
        raise HTTPException(404, str(exc)) from None
    return cache


def _load(rel: str, compress: bool, cache: _Cache | None = None) -> _Entry:
    cache = cache or _cache
    entry = cache.files.get(rel)
    if entry is None:
        try:
            data = (cache.dir / rel).read_bytes()
        except FileNotFoundError:
            raise HTTPException(404, "no such tile") from None
        entry = _Entry(data, gzip.compress(data, 6) if compress else None, f'"{etag_of(data)}"')
        if len(cache.files) > MEMORY_FILES:  # bounded; beyond it files come from the OS page cache
            cache.files.clear()
        cache.files[rel] = entry
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


# ---------------------------------------------------------------- renewal scenarios (before the routes
# below, whose paths of as many segments would take them)
def _scenario_cache(name: str) -> _Cache:
    """The tile cache of a scenario (404 problem for an unknown one); its tiles are built on first use."""
    with get_engine().connect() as conn:
        sid = scenarios.resolve(conn, name)
    if sid is None:
        return _cache
    return _scenario_caches.setdefault(sid, _Cache(sid))


@router.get("/scenarios/{scenario}/tileset.json", summary="Root tileset of a renewal scenario's model")
async def scenario_root_tileset(scenario: str, request: Request) -> Response:
    cache = await _fresh(_scenario_cache(scenario))
    entry, private = _for_caller(request, _load("tileset.json", True, cache))
    return _serve(request, "tileset.json", "application/json", JSON_CACHE, True, private, entry)


@router.get("/scenarios/{scenario}/{layer}/tileset.json", summary="Tileset of one layer of a scenario's model")
async def scenario_layer_tileset(scenario: str, layer: str, request: Request) -> Response:
    _check_layer(layer)
    cache = await _fresh(_scenario_cache(scenario))
    return _serve(request, f"{layer}/tileset.json", "application/json", JSON_CACHE, True, auth.is_restricted(layer),
                  _load(f"{layer}/tileset.json", True, cache))


@router.get("/scenarios/{scenario}/{layer}/{level}/{x}/{name}", summary="glb content of a scenario's tile")
async def scenario_content(scenario: str, layer: str, level: str, x: str, name: str, request: Request) -> Response:
    rel = _content_path(layer, level, x, name)
    cache = await _fresh(_scenario_cache(scenario))
    return _serve(request, rel, "model/gltf-binary", CONTENT_CACHE, False, auth.is_restricted(layer),
                  _load(rel, False, cache))


@router.get("/tileset.json", summary="Root tileset: every layer the caller may read, as an external tileset; "
            "?scenario=NAME redirects to the tileset of a renewal plan's model")
async def root_tileset(request: Request, scenario: str | None = None) -> Response:
    if not scenarios.is_as_is(scenario):
        _scenario_cache(scenario)  # 404 for an unknown one
        return RedirectResponse(f"{request.scope.get('root_path', '')}/tiles/scenarios/{quote(scenario)}/tileset.json",
                                status_code=307)
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
    rel = _content_path(layer, level, x, name)
    await _fresh()
    return _serve(request, rel, "model/gltf-binary", CONTENT_CACHE, False, auth.is_restricted(layer))


def _content_path(layer: str, level: str, x: str, name: str) -> str:
    _check_layer(layer)
    stem, _, ext = name.partition(".")
    if ext != "glb" or not (stem.isdigit() and level.isdigit() and x.isdigit()):  # also keeps paths inside
        raise HTTPException(404, "no such tile")
    return f"{layer}/{level}/{x}/{name}"

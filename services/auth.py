"""Access control shared by the features API and the tile router: API keys, roles, grants, audit.

A caller sends a key in the `X-API-Key` header or as `?key=` (tile loaders can often only add a
query parameter). Keys are random tokens stored as their sha256: a leaked table reveals no key.
Layers in `access_layers` marked restricted need a grant of the caller's role (or '*'); every other
layer is public. Reads of restricted layers, and refusals, are written to `audit_log`.
"""
from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field

import sqlalchemy as sa
from fastapi import FastAPI, HTTPException, Request
from fastapi.openapi.utils import get_openapi

from cim_core.db import get_engine, read_engine
from cim_core.errors import DatabaseError, InputError, NotFoundError
from cim_core.settings import get_settings

KEY_PREFIX = "cim_"
ANONYMOUS = "public"
# Restricted layers change only by migration or admin SQL: re-read them at most this often.
LAYER_CACHE_SECONDS = 10.0
# A tile viewer fetches hundreds of tiles a minute: one audit row per caller, layer and minute.
TILE_AUDIT_SECONDS = 60.0
KEY_USE_SECONDS = 60.0
log = logging.getLogger("cim.api")


_engines: dict[tuple, sa.Engine] = {}


def current_engine() -> sa.Engine:
    """The engine for request handlers' reads, one per process and settings, in autocommit mode: on the
    replicas of CIM_DATABASE_READ_URLS when set. The API's own writes go to `write_engine()`."""
    s = get_settings()
    key = (s.database_url, s.database_read_urls, str(s.home))
    found = _engines.get(key)
    if found is None:
        # reads need no transaction: autocommit saves a BEGIN and a ROLLBACK round trip per request
        found = _engines[key] = read_engine().execution_options(isolation_level="AUTOCOMMIT")
    return found


def write_engine() -> sa.Engine:
    """The primary, for what the API writes (audit rows, key use); never a read replica."""
    s = get_settings()
    key = ("primary", s.database_url, str(s.home))
    found = _engines.get(key)
    if found is None:
        found = _engines[key] = get_engine()
    return found


@dataclass(frozen=True)
class Caller:
    """Who is asking: a key's id and role, or the anonymous `public` role."""
    role: str = ANONYMOUS
    key_id: int | None = None
    grants: frozenset[str] = field(default_factory=frozenset)
    client: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.key_id is None

    def granted(self, layer: str) -> bool:
        return "*" in self.grants or layer in self.grants


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# ---------------------------------------------------------------- key management (for the CLI)
def create_key(role: str, name: str | None = None, engine: sa.Engine | None = None) -> tuple[int, str]:
    """A new key for `role`: (id, token). The token is shown once; only its hash is kept."""
    engine = engine or get_engine()
    token = KEY_PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as c:
        if not c.scalar(sa.text("select 1 from roles where name = :r"), {"r": role}):
            roles = c.scalars(sa.text("select name from roles order by name")).all()
            raise InputError(f"no role named {role!r}", hint=f"roles: {', '.join(roles)}")
        key_id = c.scalar(sa.text("insert into api_keys (name, role, key_hash, prefix) values (:n, :r, :h, :p) "
                                  "returning id"), {"n": name, "r": role, "h": _hash(token), "p": token[:8]})
    return key_id, token


def list_keys(engine: sa.Engine | None = None) -> list[dict]:
    engine = engine or get_engine()
    with engine.connect() as c:
        return [dict(r) for r in c.execute(sa.text(
            "select id, name, role, prefix, created_at, last_used_at, revoked_at from api_keys order by id")).mappings()]


def revoke_key(key_id: int, engine: sa.Engine | None = None) -> None:
    engine = engine or get_engine()
    with engine.begin() as c:
        if c.execute(sa.text("update api_keys set revoked_at = coalesce(revoked_at, now()) where id = :i"),
                     {"i": key_id}).rowcount == 0:
            raise NotFoundError(f"no API key with id {key_id}", hint="`cim keys list` shows them")


def list_roles(engine: sa.Engine | None = None) -> list[dict]:
    engine = engine or get_engine()
    with engine.connect() as c:
        return [dict(r) for r in c.execute(sa.text(
            "select r.name, r.description, coalesce(array_agg(g.layer order by g.layer) "
            "filter (where g.layer is not null), '{}') grants "
            "from roles r left join role_grants g on g.role = r.name group by r.name order by r.name")).mappings()]


def audit_entries(limit: int = 100, layer: str | None = None, engine: sa.Engine | None = None) -> list[dict]:
    engine = engine or get_engine()
    with engine.connect() as c:
        return [dict(r) for r in c.execute(sa.text(
            "select a.id, a.at, a.key_id, k.name key_name, a.role, a.layer, a.object_id, a.path, a.client, a.status "
            "from audit_log a left join api_keys k on k.id = a.key_id "
            "where cast(:layer as text) is null or a.layer = :layer order by a.id desc limit :n"),
            {"n": limit, "layer": layer}).mappings()]


# ---------------------------------------------------------------- request time
class _Restricted:
    """The set of restricted layer names, cached for LAYER_CACHE_SECONDS per engine."""

    def __init__(self):
        self.lock = threading.Lock()
        self.cache: dict[str, tuple[float, frozenset[str]]] = {}

    def __call__(self, engine: sa.Engine) -> frozenset[str]:
        url = str(engine.url)
        hit = self.cache.get(url)
        if hit and time.monotonic() - hit[0] < LAYER_CACHE_SECONDS:
            return hit[1]
        with engine.connect() as c:
            names = frozenset(c.scalars(sa.text("select name from access_layers where restricted")).all())
        with self.lock:
            self.cache[url] = (time.monotonic(), names)
        return names


restricted_layers = _Restricted()


def problem(status: int, title: str, detail: str, headers: dict | None = None) -> HTTPException:
    """An HTTPException that the app's handler renders as application/problem+json."""
    return HTTPException(status_code=status, detail={"title": title, "detail": detail}, headers=headers)


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def resolve_caller(request: Request, engine: sa.Engine) -> Caller:
    """The caller of a request, from its key; 401 for an unknown or revoked key."""
    token = request.headers.get("x-api-key") or request.query_params.get("key")
    if not token:
        return Caller(client=_client(request))
    with engine.connect() as c:
        row = c.execute(sa.text(
            "select k.id, k.role, array(select layer from role_grants g where g.role = k.role) grants "
            "from api_keys k where key_hash = :h and revoked_at is null"), {"h": _hash(token)}).first()
    if row is None:
        raise problem(401, "Unauthorized", "the API key is unknown or revoked",
                      {"WWW-Authenticate": 'ApiKey realm="cim", header="X-API-Key"'})
    _note_use(row.id)
    return Caller(role=row.role, key_id=row.id, grants=frozenset(row.grants), client=_client(request))


_last_noted: dict[tuple[str, int], float] = {}


def _note_use(key_id: int) -> None:
    """Record a key's last use on the primary, at most once per KEY_USE_SECONDS per key and process (a write
    per request would cost every tile its own transaction). Best effort: while the primary is down, keyed
    reads from replicas go on and the use is not recorded."""
    engine = write_engine()
    now, k = time.monotonic(), (str(engine.url), key_id)
    if now - _last_noted.get(k, -1e9) < KEY_USE_SECONDS:
        return
    _last_noted[k] = now
    try:
        with engine.begin() as c:
            c.execute(sa.text("update api_keys set last_used_at = now() where id = :i"), {"i": key_id})
    except (DatabaseError, sa.exc.OperationalError) as exc:
        log.warning("key %s: last use not recorded, the primary database is not available: %s", key_id,
                    str(exc).splitlines()[0])


def caller(request: Request) -> Caller:
    """FastAPI dependency: the caller, resolved once per request."""
    found = getattr(request.state, "caller", None)
    if found is None:
        found = request.state.caller = resolve_caller(request, current_engine())
    return found


def is_restricted(layer: str, engine: sa.Engine | None = None) -> bool:
    return layer in restricted_layers(engine or current_engine())


def may_read(who: Caller, layer: str, engine: sa.Engine | None = None) -> bool:
    return not is_restricted(layer, engine) or who.granted(layer)


_tile_audit_seen: dict[tuple, float] = {}


def audit(who: Caller, layer: str, path: str, status: int, object_id: int | None = None,
          throttle: float = 0.0) -> None:
    """One audit row, on the primary; with `throttle`, at most one per caller, layer and status in that many
    seconds."""
    k = (who.key_id, who.client, layer, status)
    if throttle:
        now = time.monotonic()
        if now - _tile_audit_seen.get(k, -1e9) < throttle:
            return
        if len(_tile_audit_seen) > 10_000:  # many callers over a long uptime: forget the old ones
            _tile_audit_seen.clear()
        _tile_audit_seen[k] = now
    try:
        with write_engine().begin() as c:
            c.execute(sa.text("insert into audit_log (key_id, role, layer, object_id, path, client, status) "
                              "values (:k, :r, :l, :o, :p, :c, :s)"),
                      {"k": who.key_id, "r": who.role, "l": layer, "o": object_id, "p": path[:2000],
                       "c": who.client, "s": status})
    except Exception:
        _tile_audit_seen.pop(k, None)  # not written: the next read must try again
        raise


def require_layer(request: Request, who: Caller, layer: str, *, object_id: int | None = None,
                  throttle: float = 0.0) -> None:
    """Enforce the grant for a layer: 401 anonymous / 403 lacking role; audit restricted reads.

    A granted read that cannot be audited (the primary is down) fails with 503; a refusal is answered
    even then, its audit row written when possible."""
    if not is_restricted(layer):
        return
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    path = path.replace(request.query_params.get("key") or "\0", "***")  # never log a key
    if who.granted(layer):
        audit(who, layer, path, 200, object_id, throttle)
        return
    status = 401 if who.anonymous else 403
    try:
        audit(who, layer, path, status, object_id, throttle)
    except (DatabaseError, sa.exc.OperationalError) as exc:
        log.warning("refused read of %s not audited, the primary database is not available: %s", layer,
                    str(exc).splitlines()[0])
    if status == 401:
        raise problem(401, "Unauthorized", f"layer {layer!r} is restricted: send an API key (X-API-Key header or "
                      "?key=) of a role that may read it", {"WWW-Authenticate": 'ApiKey realm="cim", header="X-API-Key"'})
    raise problem(403, "Forbidden", f"role {who.role!r} may not read layer {layer!r}")


def require_layers(request: Request, who: Caller, layers: list[str], *, object_id: int | None = None) -> None:
    """require_layer for a read of several layers at once (an analysis over every pipe network): a granted
    read writes its audit rows in one statement; a refusal is the first layer refused."""
    closed = [la for la in layers if is_restricted(la)]
    denied = [la for la in closed if not who.granted(la)]
    if denied:
        require_layer(request, who, denied[0], object_id=object_id)
    if not closed:
        return
    path = request.url.path.replace(request.query_params.get("key") or "\0", "***")
    with write_engine().begin() as c:
        c.execute(sa.text("insert into audit_log (key_id, role, layer, object_id, path, client, status) "
                          "select :k, :r, l, :o, :p, :c, 200 from unnest(cast(:ls as text[])) l"),
                  {"k": who.key_id, "r": who.role, "ls": closed, "o": object_id, "p": path[:2000], "c": who.client})


def tile_access(request: Request) -> None:
    """Dependency for the tile router: enforce the grant of the `layer` path parameter."""
    layer = request.path_params.get("layer")
    if layer is None:
        return
    require_layer(request, caller(request), layer, throttle=TILE_AUDIT_SECONDS)


def declare_security(app: FastAPI) -> None:
    """Declare the API key (header or query) in the OpenAPI document; anonymous calls stay allowed."""
    def openapi() -> dict:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, routes=app.routes)
            doc.setdefault("components", {})["securitySchemes"] = {
                "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                                 "description": "a key from `cim keys create`; restricted layers need one"},
                "ApiKeyQuery": {"type": "apiKey", "in": "query", "name": "key",
                                "description": "the same key as a query parameter, for tile loaders"}}
            doc["security"] = [{}, {"ApiKeyHeader": []}, {"ApiKeyQuery": []}]
            app.openapi_schema = doc
        return app.openapi_schema
    app.openapi = openapi

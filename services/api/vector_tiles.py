"""OGC API - Tiles (Part 1, core): every feature collection also as Mapbox Vector Tiles, made by PostGIS.

Paths follow the standard, `/collections/{id}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}`,
so for WebMercatorQuad a tile is `.../WebMercatorQuad/{z}/{y}/{x}` (row before column), and the tileset
document gives clients that template. A projected storage CRS also has its own quad (tile_matrix_sets.py),
whose tiles are cut from the stored geometry as it is. A tile holds the current objects (not yet retired by valid_to) of
one collection as one MVT layer named after it: the geometry clipped to the tile (ST_AsMVTGeom on a 4096
grid with a 64-unit buffer; objects' footprints from their stored EPSG:3857 copy), the object id as feature
id and its typed properties over its attributes.

Tiles are cached per process (bytes and gzip); when change_log says the model changed (the check the
collections registry makes), the tiles that the changes touch are dropped. Restricted collections need a
grant, as their features do, and are answered `private`; every response carries a strong ETag and If-None-Match answers 304.
"""
from __future__ import annotations

import gzip
import hashlib
import threading
from collections import OrderedDict
from functools import lru_cache
from typing import Annotated, NamedTuple

import orjson
import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy.dialects.postgresql import JSONB

from cim_core import scenarios
from cim_core.errors import InputError, NotFoundError
from cim_core.settings import get_settings
from services import auth

from .collections import Collection, objects, registry
from .tile_matrix_sets import WEB_MERCATOR, Quad, quad, quads

router = APIRouter(tags=["OGC API - Tiles"])
MVT = "application/vnd.mapbox-vector-tile"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/tms/2.0/conf/tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
]
REL = "http://www.opengis.net/def/rel/ogc/1.0/"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EXTENT = 4096   # MVT grid units across a tile
BUFFER = 64     # grid units drawn beyond the tile's edge, so that strokes join across tiles
# Tiles follow their features: revalidated after a minute, like the 3D tiles' content.
CACHE_CONTROL = "max-age=60"


# ---------------------------------------------------------------- SQL
def tile_attributes(shadowed: tuple[str, ...], nested: tuple[str, ...]) -> sa.ColumnElement:
    """The attributes as ST_AsMVT takes them: without the `shadowed` keys (a typed property gives them), and the
    `nested` keys' objects and arrays (IFC property sets) as JSON text, since ST_AsMVT encodes scalars only.
    Collections without nested keys pay nothing per row."""
    attrs, column = objects.c.attributes, objects.c.attributes
    for k in shadowed + nested:
        attrs = attrs.op("-", return_type=JSONB)(sa.literal(k, sa.Text))
    if not nested:
        return attrs
    pairs = []
    for k in nested:
        v = column[k]
        pairs += [sa.literal(k, sa.Text), sa.case((sa.func.jsonb_typeof(v).in_(("object", "array")),
                                                   sa.func.to_jsonb(sa.cast(v, sa.Text))), else_=v)]
    return attrs.op("||", return_type=JSONB)(sa.func.jsonb_strip_nulls(sa.func.jsonb_build_object(*pairs)))


@lru_cache(maxsize=256)
def tile_sql(c: Collection, q: Quad, srid: int, utilities: tuple[str, ...], shadowed: tuple[str, ...] = (),
             scenario_id: int | None = None, nested: tuple[str, ...] = ()) -> sa.Select:
    """ST_AsMVT of one collection's tile of the tile matrix set `q` in the model of a scenario (None: as-is),
    with :z, :x and :y bound at execution.

    Properties: the typed columns as they are (ST_AsMVT leaves out nulls), then the attributes
    (tile_attributes: without the `shadowed` keys, the `nested` ones as JSON text)."""
    z, x, y = sa.bindparam("z", type_=sa.Integer), sa.bindparam("x", type_=sa.Integer), \
        sa.bindparam("y", type_=sa.Integer)
    margin = sa.literal_column(f"margin => {BUFFER / EXTENT}")
    if q.srid == srid:  # the storage CRS's own tiles: no transform on either side
        envelope = sa.func.ST_TileEnvelope(z, x, y, q.bounds())
        search, geom = sa.func.ST_TileEnvelope(z, x, y, q.bounds(), margin), c.geometry
    else:
        envelope = sa.func.ST_TileEnvelope(z, x, y)
        # the index is searched in the storage CRS, with the buffer's margin around the tile
        search = sa.func.ST_Transform(sa.func.ST_TileEnvelope(z, x, y, margin), srid)
        # objects' footprints are stored in EPSG:3857 too (migration 0012); pipes and nodes are transformed here
        geom = objects.c.footprint_3857 if c.kind == "objects" else sa.func.ST_Transform(c.geometry, 3857)
    rows = (sa.select(sa.func.ST_AsMVTGeom(geom, envelope, EXTENT, BUFFER, True).label("geom"),
                      objects.c.id.label("id"), *(col.label(name) for name, col in c.typed[1:]),
                      tile_attributes(shadowed, nested).label("attributes"))
            .select_from(c.from_clause())
            .where(c.scope(list(utilities)), c.geometry.op("&&")(search),
                   sa.text(scenarios.current(scenario_id, "city_objects")))
            .subquery("t"))
    return sa.select(sa.func.ST_AsMVT(sa.literal_column("t"), c.id, EXTENT, "geom", "id")).select_from(rows)


def nested_keys(conn: sa.Connection, reg, c: Collection, utilities: tuple[str, ...]) -> tuple[str, ...]:
    """Attribute keys holding an object or array in some object of the collection: one scan per model version
    (reg.token) by one request at a time (the others wait for it), remembered for the latest version only."""
    key = (str(conn.engine.url), c.id, utilities)
    with _nested_locks.setdefault(key, threading.Lock()):
        token, found = _nested.get(key, (None, ()))
        if token != reg.token:
            token = reg.token
            kv = sa.func.jsonb_each(objects.c.attributes).table_valued("key", "value").alias("kv")
            # the text test skips the rows without a brace or bracket after the opening one (most rows) cheaply
            found = tuple(conn.scalars(
                sa.select(kv.c.key).distinct().select_from(c.from_clause().join(kv, sa.true()))
                .where(c.scope(list(utilities)), sa.func.substr(sa.cast(objects.c.attributes, sa.Text), 2).op("~")(
                    "[[{]"), sa.func.jsonb_typeof(kv.c.value).in_(("object", "array")))
                .order_by(kv.c.key)))
            _nested[key] = (token, found)
    return found


_nested: dict[tuple, tuple] = {}
_nested_locks: dict[tuple, threading.Lock] = {}


# ---------------------------------------------------------------- cache
class Tile:
    __slots__ = ("data", "etag", "gz")

    def __init__(self, data: bytes):
        self.data = data
        self.gz: bytes | None = None  # compressed on the first request that accepts gzip
        self.etag = f'"{hashlib.blake2b(data, digest_size=12).hexdigest()}"'

    def gzipped(self) -> bytes:
        if self.gz is None:
            self.gz = gzip.compress(self.data, 6)
        return self.gz

    @property
    def size(self) -> int:
        return 2 * len(self.data) + 200  # room for its gzip, which is smaller


# What each change since the cache's version touched: its classes and its region in lon/lat (null: anywhere),
# in every model, since a re-import may move a dataset between as-is and a plan; a plan's removals touch
# only that plan's tiles.
CHANGES = sa.text("""
    select l.classes,
           case when l.dataset_name like 'scenario:%' then coalesce(
                    (select s.id from scenarios s where s.name = substr(l.dataset_name, 10)), -1) end scenario,
           st_xmin(b), st_ymin(b), st_xmax(b), st_ymax(b)
    from change_log l, lateral (select case when st_srid(l.region) <> 0 then st_transform(l.region, 4326) end b) r
    where l.id > :after and l.id <= :upto order by l.id""")


class Change(NamedTuple):
    classes: frozenset[str]
    scenario: int | None  # a plan's removals: that plan (-1: one no longer known); None: every model
    box: tuple[float, float, float, float] | None  # lon/lat; None: anywhere

    def touches(self, key: tuple, kinds: dict[str, frozenset[str] | None], srid: int) -> bool:
        """Whether a cached tile (collection, tile matrix set, z, row, col, utilities, scenario id) may have
        changed."""
        cid, tms, z, row, col, _, sid = key
        if self.scenario is not None and self.scenario not in (sid, -1):
            return False
        classes = kinds.get(cid)  # None for pipes and nodes: any change may touch them
        if self.classes and classes is not None and not classes & self.classes:
            return False
        if self.box is None:
            return True
        lon0, lat0, lon1, lat1 = quad(tms, srid).lonlat_box(z, row, col, BUFFER / EXTENT)
        w, s, e, n = self.box
        return w <= lon1 and e >= lon0 and s <= lat1 and n >= lat0


class TileCache:
    """Tiles of the model version `token`, least recently used first out when over budget. A new version
    drops only the tiles that its changes (change_log) touch: their scenario, collection and region."""

    def __init__(self):
        self.lock = threading.Lock()
        self.tiles: OrderedDict[tuple, Tile] = OrderedDict()
        self.bytes = 0
        self.token: tuple | None = None

    def follow(self, conn: sa.Connection, reg) -> None:
        """Bring the cache to the registry's model version (reg.token: last change_log id, dataset count)."""
        token = reg.token
        if token == self.token:
            return
        with self.lock:
            if token == self.token:
                return
            changes = [] if self.token is None else [
                Change(frozenset(r[0]), r[1], None if r[2] is None else tuple(r[2:]))
                for r in conn.execute(CHANGES, {"after": self.token[0], "upto": token[0]})]
            if not changes:  # the first version, or datasets that changed without a change_log row
                self.tiles.clear()
                self.bytes = 0
            else:
                kinds = {cid: frozenset(c.classes) if c.kind == "objects" else None
                         for cid, c in reg.collections.items()}
                for key in [k for k in self.tiles if any(ch.touches(k, kinds, reg.srid) for ch in changes)]:
                    self.bytes -= self.tiles.pop(key).size
            self.token = token

    def get(self, key: tuple) -> Tile | None:
        with self.lock:
            tile = self.tiles.get(key)
            if tile is not None:
                self.tiles.move_to_end(key)
            return tile

    def put(self, token: tuple, key: tuple, tile: Tile) -> None:
        """Keep a tile made at model version `token` (unless the cache has moved on since)."""
        budget = get_settings().vector_tile_cache_mb * 1_000_000
        with self.lock:
            if token != self.token or tile.size > budget:
                return
            old = self.tiles.pop(key, None)
            self.bytes += tile.size - (old.size if old else 0)
            self.tiles[key] = tile
            while self.bytes > budget:
                _, out = self.tiles.popitem(last=False)
                self.bytes -= out.size


caches: dict[str, TileCache] = {}


def cache(engine: sa.Engine) -> TileCache:
    return caches.setdefault(str(engine.url), TileCache())


# ---------------------------------------------------------------- endpoints
Caller = Annotated[auth.Caller, Depends(auth.caller)]
CollectionId = Annotated[str, Path(description="a collection id from /api/collections", examples=["roads"])]
TmsId = Annotated[str, Path(description="a tile matrix set id from /api/tileMatrixSets",
                            examples=[WEB_MERCATOR])]


def _json(doc: dict) -> Response:
    return Response(orjson.dumps(doc), media_type="application/json")


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/api"


def _srid() -> int:
    with auth.current_engine().connect() as conn:
        reg = registry(conn.engine)
        reg.refresh(conn)
        return reg.srid


@router.get("/tileMatrixSets", summary="Tile matrix sets of the vector tiles")
def tile_matrix_sets(request: Request):
    return _json({"tileMatrixSets": [
        {"id": q.id, "title": q.title, **({"uri": q.uri} if q.uri else {}),
         "links": [{"href": f"{_base(request)}/tileMatrixSets/{q.id}", "rel": f"{REL}tiling-scheme",
                    "type": "application/json"}]} for q in quads(_srid())]})


@router.get("/tileMatrixSets/{tileMatrixSetId}", summary="One tile matrix set")
def tile_matrix_set(tileMatrixSetId: TmsId):
    return _json(quad(tileMatrixSetId, _srid()).doc())


def _readable_utilities(who: auth.Caller, reg, engine: sa.Engine) -> tuple[str, ...]:
    """Utilities whose nodes the caller may read: those of the pipe collections it may read."""
    return tuple(c.utility for c in reg.collections.values() if c.kind == "pipes" and auth.may_read(who, c.id, engine))


def _collection(request: Request, who: auth.Caller, cid: str, conn: sa.Connection, audit: bool = False):
    reg = registry(conn.engine)
    c = reg.get(conn, cid)
    auth.require_layer(request, who, c.id, throttle=auth.TILE_AUDIT_SECONDS if audit else 0.0)
    return reg, c


def _tileset_doc(request: Request, reg, c: Collection, q: Quad) -> dict:
    b = f"{_base(request)}/collections/{c.id}/tiles/{q.id}"
    doc = {"title": f"{c.title} (vector tiles, {q.id})", "dataType": "vector", "crs": q.doc()["crs"],
           **({"tileMatrixSetURI": q.uri} if q.uri else {}),
           "links": [{"href": b, "rel": "self", "type": "application/json"},
                     {"href": f"{_base(request)}/tileMatrixSets/{q.id}", "rel": f"{REL}tiling-scheme",
                      "type": "application/json"},
                     {"href": f"{b}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}?f=mvt", "rel": "item", "type": MVT,
                      "templated": True, "title": "Mapbox Vector Tiles"},
                     {"href": f"{_base(request)}/collections/{c.id}", "rel": "collection",
                      "type": "application/json"}],
           "layers": [{"id": c.id, "title": c.title, "dataType": "vector",
                       **({"geometryDimension": {"pipes": 1, "nodes": 0}[c.kind]} if c.kind != "objects" else {}),
                       "minTileMatrix": "0", "maxTileMatrix": str(q.max_zoom)}]}
    ext = reg.extents.get(c.id)
    if ext:
        doc["boundingBox"] = {"lowerLeft": ext[:2], "upperRight": ext[2:], "crs": CRS84}
    return doc


@router.get("/collections/{collectionId}/tiles", summary="Vector tilesets of a collection")
def tilesets(request: Request, who: Caller, collectionId: CollectionId):
    with auth.current_engine().connect() as conn:
        reg, c = _collection(request, who, collectionId, conn)
    entries = []
    for q in quads(reg.srid):
        doc = _tileset_doc(request, reg, c, q)
        entries.append({**{k: doc[k] for k in ("title", "dataType", "crs", "tileMatrixSetURI") if k in doc},
                        "links": doc["links"][:2]})
    return _json({"tilesets": entries, "links": [
        {"href": f"{_base(request)}/collections/{c.id}/tiles", "rel": "self", "type": "application/json"}]})


@router.get("/collections/{collectionId}/tiles/{tileMatrixSetId}", summary="A vector tileset's metadata")
def tileset(request: Request, who: Caller, collectionId: CollectionId, tileMatrixSetId: TmsId):
    with auth.current_engine().connect() as conn:
        reg, c = _collection(request, who, collectionId, conn)
    return _json(_tileset_doc(request, reg, c, quad(tileMatrixSetId, reg.srid)))


TILE_PATH = "/collections/{collectionId}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}"


@router.get(TILE_PATH, summary="One vector tile (Mapbox Vector Tile)", response_class=Response,
            responses={200: {"content": {MVT: {}}, "description": "the tile; empty when nothing lies in it"}})
def tile(request: Request, who: Caller, collectionId: CollectionId, tileMatrixSetId: TmsId,
         tileMatrix: Annotated[int, Path(description="zoom level", examples=[15])],
         tileRow: Annotated[int, Path(description="row (y), from the top", examples=[13381])],
         tileCol: Annotated[int, Path(description="column (x), from the left", examples=[26758])],
         f: Annotated[str | None, Query(description="format: mvt, the only one (GDAL's MVT driver wants a "
                                        "tile URL that does not end in a number: add ?f=mvt)")] = None,
         scenario: Annotated[str | None, Query(description="renewal scenario (plan); default as-is")] = None):
    if f not in (None, "mvt"):
        raise InputError(f"f: unsupported format {f[:40]!r}; tiles are Mapbox Vector Tiles (f=mvt)")
    engine = auth.current_engine()
    with engine.connect() as conn:
        reg, c = _collection(request, who, collectionId, conn, audit=True)
        q = quad(tileMatrixSetId, reg.srid)
        q.check(tileMatrix, tileRow, tileCol)
        utilities = _readable_utilities(who, reg, engine) if c.kind == "nodes" else ()
        sid = scenarios.resolve(conn, scenario)
        key, store = (c.id, q.id, tileMatrix, tileRow, tileCol, utilities, sid), cache(engine)
        token = reg.token
        store.follow(conn, reg)
        found = store.get(key)
        if found is None:
            shadowed = tuple(sorted({n for n, _ in c.typed} & set(reg.attr_keys.get(c.id, {}))))
            nested = tuple(k for k in nested_keys(conn, reg, c, utilities) if k not in shadowed)
            data = conn.scalar(tile_sql(c, q, reg.srid, utilities, shadowed, sid, nested),
                               {"z": tileMatrix, "x": tileCol, "y": tileRow})
            found = Tile(bytes(data or b""))
            store.put(token, key, found)
    private = auth.is_restricted(c.id, engine)
    headers = {"ETag": found.etag, "Cache-Control": f"{'private' if private else 'public'}, {CACHE_CONTROL}",
               "Vary": "Accept-Encoding, X-API-Key"}
    if request.headers.get("if-none-match") in (found.etag, f"W/{found.etag}"):
        return Response(status_code=304, headers=headers)
    if found.data and "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(found.gzipped(), media_type=MVT, headers=headers)
    return Response(found.data, media_type=MVT, headers=headers)


# HEAD too: GDAL's /vsicurl/ asks for a tile's size before it reads it
router.add_api_route(TILE_PATH, tile, methods=["HEAD"], include_in_schema=False)

"""OGC API - Features Part 1 (core, GeoJSON), Part 2 (CRS) and Part 3 (CQL2 filtering, queryables).

Items are built as GeoJSON text inside PostgreSQL (json_build_object + ST_AsGeoJSON) and joined
in Python without parsing: the Python process, not the database, is the bottleneck of a features
server. Paging is by keyset (a cursor on the sort key and id), never OFFSET, and numberMatched is
only computed on `count=true`.
"""
from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated

import orjson
import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Request, Response

from cim_core import scenarios
from cim_core.errors import NotFoundError
from cim_core.settings import get_settings
from services import auth

from . import cql2, processes, vector_tiles
from . import crs as ocrs
from .collections import JSON_SCHEMA, Collection, kind_of, objects, registry
from .cql2 import FilterError

router = APIRouter(tags=["OGC API - Features"])
GEOJSON = "application/geo+json"
OAS = "application/vnd.oai.openapi+json;version=3.0"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
]
Caller = Annotated[auth.Caller, Depends(auth.caller)]
CollectionId = Annotated[str, Path(description="a collection id from /api/collections",
                                   examples=["buildings", "bim_elements", "pipes_water"])]


def _json(doc, media_type: str = "application/json", headers: dict | None = None) -> Response:
    return Response(orjson.dumps(doc), media_type=media_type, headers=headers)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/api"


def _pipe_utilities(who: auth.Caller, reg, engine) -> list[str]:
    """Utilities whose nodes the caller may read: those of the pipe collections it may read."""
    return [c.utility for c in reg.collections.values()
            if c.kind == "pipes" and auth.may_read(who, c.id, engine)]


# ---------------------------------------------------------------- landing, conformance, collections
def landing(request: Request):
    b = _base(request)
    return _json({
        "title": "CIM platform: OGC API - Features",
        "description": "City information model features (buildings, roads, land use, pipes, BIM). "
                       "Pipe networks need an API key (X-API-Key header or ?key=) of a role that may read them.",
        "links": [
            {"href": b, "rel": "self", "type": "application/json", "title": "this document"},
            {"href": f"{b}/openapi.json", "rel": "service-desc", "type": OAS, "title": "OpenAPI definition"},
            {"href": f"{b}/docs", "rel": "service-doc", "type": "text/html", "title": "API documentation"},
            {"href": f"{b}/conformance", "rel": "conformance", "type": "application/json",
             "title": "conformance classes"},
            {"href": f"{b}/collections", "rel": "data", "type": "application/json", "title": "collections"},
            {"href": f"{b}/processes", "rel": "http://www.opengis.net/def/rel/ogc/1.0/processes",
             "type": "application/json", "title": "processes (analyses)"},
            {"href": f"{b}/tileMatrixSets", "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes",
             "type": "application/json", "title": "tile matrix sets of the vector tiles"},
        ]})


@router.get("/conformance", summary="Conformance classes")
def conformance():
    return _json({"conformsTo": CONFORMANCE + processes.CONFORMANCE + vector_tiles.CONFORMANCE})


def _collection_doc(request: Request, reg, c: Collection, storage: int) -> dict:
    b = f"{_base(request)}/collections/{c.id}"
    doc = {"id": c.id, "title": c.title, "description": c.description, "itemType": "feature",
           "crs": ocrs.supported(storage), "storageCrs": ocrs.EPSG_URI.format(storage),
           "links": [{"href": b, "rel": "self", "type": "application/json"},
                     {"href": f"{b}/items", "rel": "items", "type": GEOJSON, "title": "features"},
                     {"href": f"{b}/queryables", "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                      "type": "application/schema+json", "title": "queryables"},
                     {"href": f"{b}/tiles", "rel": "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
                      "type": "application/json", "title": "vector tiles"}]}
    ext = reg.extents.get(c.id)
    t = reg.temporal.get(c.id)
    doc["extent"] = {"spatial": {"bbox": [ext or [-180.0, -90.0, 180.0, 90.0]], "crs": ocrs.CRS84}}
    if t and any(t):
        doc["extent"]["temporal"] = {"interval": [t]}
    if auth.is_restricted(c.id):
        doc["restricted"] = True
    return doc


@router.get("/collections", summary="Feature collections the caller may read")
def collections(request: Request, who: Caller):
    engine = auth.current_engine()
    reg = registry(engine)
    with engine.connect() as conn:
        reg.refresh(conn)
    docs = [_collection_doc(request, reg, c, reg.srid) for c in reg.collections.values()
            if auth.may_read(who, c.id, engine)]
    b = _base(request)
    return _json({"collections": docs, "links": [{"href": f"{b}/collections", "rel": "self",
                                                  "type": "application/json"}]})


def _collection(request: Request, who: auth.Caller, cid: str, conn: sa.Connection, object_id: int | None = None):
    reg = registry(conn.engine)
    c = reg.get(conn, cid)
    auth.require_layer(request, who, c.id, object_id=object_id)
    return reg, c


@router.get("/collections/{collectionId}", summary="One feature collection")
def collection(request: Request, who: Caller, collectionId: CollectionId):
    with auth.current_engine().connect() as conn:
        reg, c = _collection(request, who, collectionId, conn)
    return _json(_collection_doc(request, reg, c, reg.srid))


@router.get("/collections/{collectionId}/queryables", summary="Queryable properties (JSON Schema)")
def queryables(request: Request, who: Caller, collectionId: CollectionId):
    with auth.current_engine().connect() as conn:
        reg, c = _collection(request, who, collectionId, conn)
    props: dict[str, dict] = {"geometry": {"$ref": f"https://geojson.org/schema/{_geojson_type(c)}.json"}}
    for name, col in c.typed:
        props[name] = {"title": name, **_schema_of(col)}
    typemap = {"number": "number", "string": "string", "boolean": "boolean"}
    for key, jtype in sorted(reg.attr_keys.get(c.id, {}).items()):
        if key not in props:
            props[key] = {"title": key, **({"type": typemap[jtype]} if jtype in typemap else {})}
    return _json({"$schema": "https://json-schema.org/draft/2019-09/schema",
                  "$id": f"{_base(request)}/collections/{c.id}/queryables", "type": "object",
                  "title": c.title, "properties": props, "additionalProperties": False},
                 media_type="application/schema+json")


def _geojson_type(c: Collection) -> str:
    return {"pipes": "LineString", "nodes": "Point"}.get(c.kind, "Geometry")


def _schema_of(col) -> dict:
    return dict(JSON_SCHEMA[kind_of(col)])


# ---------------------------------------------------------------- items
def _parse_datetime(text: str) -> tuple[dt.date | None, dt.date | None]:
    """`datetime` as an instant or an interval (`a/b`, `../b`, `a/..`), as dates of validity."""
    def one(s: str, end: bool) -> dt.date | None:
        if s in ("..", ""):
            return None
        try:
            if "T" in s or "t" in s:
                return dt.datetime.fromisoformat(s.replace("z", "Z")).date()
            return dt.date.fromisoformat(s)
        except ValueError:
            raise FilterError(f"datetime: {s[:60]!r} is not an RFC 3339 date or date-time") from None

    parts = text.split("/")
    if len(parts) == 1:
        d = one(parts[0], False)
        if d is None:
            raise FilterError("datetime: '..' needs an interval such as 2020-01-01/..")
        return d, d
    if len(parts) != 2:
        raise FilterError(f"datetime: {text[:60]!r} is neither an instant nor an interval")
    a, b = one(parts[0], False), one(parts[1], True)
    if a and b and a > b:
        raise FilterError("datetime: the interval starts after it ends")
    return a, b


class _Sort:
    """A keyset-compatible order: one typed property (nulls last) and the id as tie-breaker."""

    def __init__(self, c: Collection, text: str | None, attr_keys):
        self.name, self.desc, self.col = None, False, None
        if text:
            items = [s.strip() for s in text.split(",") if s.strip()]
            if len(items) != 1:
                raise FilterError("sortby: give one property (optionally +/-): features are paged by it and id")
            item = items[0]
            self.desc = item.startswith("-")
            self.name = item.lstrip("+-").strip()
            if self.name != "id":
                p = c.resolve(self.name, attr_keys)
                if p.kind in ("json", "geometry"):
                    raise FilterError(f"sortby: {self.name!r} cannot be sorted on; use one of "
                                      + ", ".join(n for n, _ in c.typed))
                self.col, self.kind = p.expr, p.kind
        self.token = (f"-{self.name}" if self.desc else self.name) or "id"

    def order(self):
        idc = objects.c.id.desc() if self.desc else objects.c.id
        if self.col is None:
            return [idc]
        return [self.col.is_(None), self.col.desc() if self.desc else self.col, idc]

    def after(self, cursor: list) -> sa.ColumnElement:
        """Rows after a cursor [token, is_null, value, id]."""
        _, isnull, value, last = cursor
        later = (lambda a, b: a < b) if self.desc else (lambda a, b: a > b)
        if self.col is None:
            return later(objects.c.id, last)
        if isnull:
            return sa.and_(self.col.is_(None), later(objects.c.id, last))
        if self.kind == "date":
            value = dt.date.fromisoformat(value)
        return sa.or_(self.col.is_(None), later(self.col, value),
                      sa.and_(self.col == value, later(objects.c.id, last)))

    def cursor(self, row) -> str:
        value = row.sortval if self.col is not None else None
        if isinstance(value, dt.date):
            value = value.isoformat()
        raw = orjson.dumps([self.token, value is None and self.col is not None, value, row.id])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, text: str) -> list:
        try:
            cur = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            ok = (isinstance(cur, list) and len(cur) == 4 and isinstance(cur[3], int) and isinstance(cur[1], bool)
                  and (cur[2] is None or isinstance(cur[2], (int, float, str))))
        except (ValueError, orjson.JSONDecodeError):
            ok = False
        if not ok:
            raise FilterError("cursor: not a cursor of this API; follow the `next` link as given")
        if cur[0] != self.token:
            raise FilterError(f"cursor: it was made for sortby={cur[0]}, not sortby={self.token}")
        if self.col is not None and not cur[1]:
            want = {"number": (int, float), "integer": (int, float), "string": str, "date": str}.get(self.kind, object)
            if not isinstance(cur[2], want):
                raise FilterError("cursor: malformed")
            if self.kind == "date":
                try:
                    dt.date.fromisoformat(cur[2])
                except ValueError:
                    raise FilterError("cursor: malformed") from None
        return cur


def _properties_sql(c: Collection, names: list[str] | None, attr_keys) -> sa.ColumnElement:
    """The properties object: typed columns over the flattened attributes, or just `names`."""
    if names is not None:
        if len(names) > 45:
            raise FilterError("properties: at most 45 names")
        args = []
        for n in names:
            p = c.resolve(n, attr_keys)
            if p.kind == "geometry":
                continue
            args += [sa.literal(n, sa.Text), p.expr]
        return sa.func.jsonb_strip_nulls(sa.func.jsonb_build_object(*args))
    args = []
    for n, col in c.typed[1:]:
        args += [sa.literal_column(f"'{n}'"), col]  # our own constant names: no parameters needed
    return objects.c.attributes.op("||")(sa.func.jsonb_strip_nulls(sa.func.jsonb_build_object(*args)))


@lru_cache(maxsize=256)
def _full_feature_sql(c: Collection, out: ocrs.OutCrs, storage: int) -> sa.ColumnElement:
    """The feature with every property: built once per collection and CRS, since it holds no values."""
    return _feature_sql(c, out, storage, _properties_sql(c, None, {}))


def _feature_sql(c: Collection, out: ocrs.OutCrs, storage: int, props) -> sa.ColumnElement:
    geom = ocrs.output_geometry(c.geometry, out, storage)
    return sa.cast(sa.func.json_build_object(
        sa.literal_column("'type'"), sa.literal_column("'Feature'"), sa.literal_column("'id'"), objects.c.id,
        sa.literal_column("'geometry'"), sa.cast(geom, sa.JSON), sa.literal_column("'properties'"), props), sa.Text)


def int_id(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else None


@dataclass(frozen=True)
class ItemsQuery:
    """The query parameters of an items request, as given."""
    limit: int
    bbox: str | None = None
    bbox_crs: str | None = None
    crs: str | None = None
    datetime: str | None = None
    properties: str | None = None
    sortby: str | None = None
    filter: str | None = None
    filter_lang: str | None = None
    filter_crs: str | None = None
    cursor: str | None = None
    count: bool = False
    scenario: str | None = None


def _where(c: Collection, q: ItemsQuery, reg, who: auth.Caller, conn: sa.Connection) -> list[sa.ColumnElement]:
    """The filters of a query (collection scope, bbox, datetime, CQL2), without the page position."""
    storage = reg.srid
    where = [c.scope(_pipe_utilities(who, reg, conn.engine) if c.kind == "nodes" else None),
             sa.text(scenarios.visible(scenarios.resolve(conn, q.scenario), "city_objects"))]
    if q.bbox is not None:
        bcrs = ocrs.resolve(q.bbox_crs, storage, "bbox-crs")
        where.append(sa.func.ST_Intersects(c.geometry, ocrs.to_storage(ocrs.parse_bbox(q.bbox, bcrs), bcrs, storage)))
    elif q.bbox_crs is not None:
        raise FilterError("bbox-crs given without bbox")
    if q.datetime is not None:
        start, end = _parse_datetime(q.datetime)
        if end is not None:
            where.append(sa.or_(objects.c.valid_from.is_(None), objects.c.valid_from <= end))
        if start is not None:
            where.append(sa.or_(objects.c.valid_to.is_(None), objects.c.valid_to >= start))
    if q.filter is not None:
        fcrs = ocrs.resolve(q.filter_crs, storage, "filter-crs")
        tree = cql2.parse(q.filter, q.filter_lang)
        attr_keys = reg.attr_keys.get(c.id, {})
        compiler = cql2.Compiler(lambda n: c.resolve(n, attr_keys), lambda g: ocrs.to_storage(g, fcrs, storage))
        where.append(compiler(tree))
    elif q.filter_lang is not None and q.filter_lang not in ("cql2-text", "cql2-json"):
        raise FilterError(f"unsupported filter-lang {q.filter_lang!r}: use cql2-text or cql2-json")
    return where


def _page(request: Request, who: auth.Caller, conn: sa.Connection, cid: str, q: ItemsQuery):
    """One page of features (limit + 1 rows, to know whether a next page exists) and numberMatched."""
    reg, c = _collection(request, who, cid, conn)
    storage = reg.srid
    attr_keys = reg.attr_keys.get(c.id, {})
    out = ocrs.resolve(q.crs, storage, "crs")
    where = _where(c, q, reg, who, conn)
    sort = _Sort(c, q.sortby, attr_keys)
    page_where = list(where)
    if q.cursor:
        page_where.append(sort.after(sort.decode(q.cursor)))
    names = [n.strip() for n in q.properties.split(",") if n.strip()] if q.properties is not None else None
    feature = _full_feature_sql(c, out, storage) if names is None else \
        _feature_sql(c, out, storage, _properties_sql(c, names, attr_keys))
    cols = [objects.c.id, feature.label("f")]
    if sort.col is not None:
        cols.append(sort.col.label("sortval"))
    sel = sa.select(*cols).select_from(c.from_clause()).where(*page_where).order_by(*sort.order()).limit(q.limit + 1)
    rows = conn.execute(sel).all()
    matched = conn.scalar(sa.select(sa.func.count()).select_from(c.from_clause()).where(*where)) if q.count else None
    return rows, matched, c, sort, out


PAGE_MAX = get_settings().api_page_max
PAGE_DEFAULT = get_settings().api_page_default
Limit = Annotated[int, Query(ge=1, le=PAGE_MAX, description=f"features per page (at most {PAGE_MAX:,})")]


@router.get("/collections/{collectionId}/items", summary="Features of a collection",
            response_class=Response, responses={200: {"content": {GEOJSON: {}}, "description": "GeoJSON features"}})
def items(
    request: Request, who: Caller, collectionId: CollectionId,
    limit: Limit = PAGE_DEFAULT,
    bbox: str | None = Query(None, description="minx,miny,maxx,maxy in bbox-crs (default CRS84 lon/lat)"),
    bbox_crs: str | None = Query(None, alias="bbox-crs"),
    crs: str | None = Query(None, description="CRS of the returned geometries (default CRS84)"),
    datetime: str | None = Query(None, description="instant or interval, against valid_from/valid_to"),
    properties: str | None = Query(None, description="comma-separated property names to return"),
    sortby: str | None = Query(None, description="one property, +asc or -desc; paging goes on by id"),
    filter: str | None = Query(None, description="CQL2 filter (text or JSON per filter-lang)"),
    filter_lang: str | None = Query(None, alias="filter-lang", description="cql2-text (default) or cql2-json"),
    filter_crs: str | None = Query(None, alias="filter-crs"),
    cursor: str | None = Query(None, description="opaque position from a `next` link"),
    count: bool = Query(False, description="also return numberMatched (one more query)"),
    scenario: str | None = Query(None, description="renewal scenario (plan) whose model to read; default as-is"),
):
    with auth.current_engine().connect() as conn:
        q = ItemsQuery(limit, bbox, bbox_crs, crs, datetime, properties, sortby, filter, filter_lang, filter_crs,
                       cursor, count, scenario)
        rows, matched, c, sort, out = _page(request, who, conn, collectionId, q)
    more = len(rows) > limit
    rows = rows[:limit]
    here = request.url.remove_query_params("key")  # a key sent as ?key= is never echoed
    links = [{"href": str(here), "rel": "self", "type": GEOJSON, "title": "this page"},
             {"href": f"{_base(request)}/collections/{c.id}", "rel": "collection", "type": "application/json"}]
    if more:
        links.append({"href": str(here.include_query_params(cursor=sort.cursor(rows[-1]))), "rel": "next",
                      "type": GEOJSON, "title": "next page"})
    head = {"type": "FeatureCollection", "numberReturned": len(rows),
            "timeStamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "links": links}
    if matched is not None:
        head["numberMatched"] = matched
    body = orjson.dumps(head)[:-1] + b',"features":[' + ",".join(r.f for r in rows).encode() + b"]}"
    return Response(body, media_type=GEOJSON, headers={"Content-Crs": f"<{out.uri}>"})


@router.get("/collections/{collectionId}/items/{featureId}", summary="One feature",
            response_class=Response, responses={200: {"content": {GEOJSON: {}}, "description": "a GeoJSON feature"}})
def item(request: Request, who: Caller, collectionId: CollectionId, featureId: str,
         crs: str | None = Query(None, description="CRS of the returned geometry (default CRS84)")):
    fid = int_id(featureId)
    with auth.current_engine().connect() as conn:
        reg, c = _collection(request, who, collectionId, conn, object_id=fid)
        out = ocrs.resolve(crs, reg.srid, "crs")
        row = None
        if fid is not None:
            scope = c.scope(_pipe_utilities(who, reg, conn.engine) if c.kind == "nodes" else None)
            q = sa.select(_full_feature_sql(c, out, reg.srid)).select_from(
                c.from_clause()).where(scope, objects.c.id == fid)
            row = conn.scalar(q)
    if row is None:
        raise NotFoundError(f"no feature {featureId[:40]!r} in collection {c.id!r}")
    b = f"{_base(request)}/collections/{c.id}"
    doc = orjson.loads(row)
    doc["links"] = [{"href": f"{b}/items/{fid}", "rel": "self", "type": GEOJSON},
                    {"href": b, "rel": "collection", "type": "application/json"}]
    return Response(orjson.dumps(doc), media_type=GEOJSON, headers={"Content-Crs": f"<{out.uri}>"})


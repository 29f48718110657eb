"""The health check's results as OGC API - Features (Part 1, Core + GeoJSON), at /api/healthcheck/ogc.

One collection per indicator (`healthcheck-<indicator id>`) and `healthcheck_results` with all of them; a
feature is one indicator's value for one unit (district, street, community or compound) in one year, the
unit's boundary in CRS84. Only the last run of each year is served (a later run supersedes the earlier one,
as in compare and export). Filters: bbox, year, level, unit_key, and indicator in `healthcheck_results`;
paging by offset with `next` links.

This is a landing page of its own rather than collections of /api: the collections there are city objects
(their SQL, tiles and access layers are built on `city_objects`), while these rows are analysis results.
"""
from __future__ import annotations

from typing import Annotated

import orjson
import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request, Response

from analyses.healthcheck import definitions
from cim_core.errors import InputError, NotFoundError
from services import auth

router = APIRouter(prefix="/healthcheck/ogc", tags=["City health check"])
Caller = Annotated[auth.Caller, Depends(auth.caller)]
GEOJSON = "application/geo+json"
ALL = "healthcheck_results"
PREFIX = "healthcheck-"
CONFORMANCE = ["http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
               "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
               "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30"]
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
LATEST = "run_id in (select max(run_id) from healthcheck_results group by year)"
PROPS = ("indicator", "year", "level", "unit_key", "unit_name", "unit_object_id", "value", "straight_value",
         "target", "passes", "run_id")


def _json(doc, media_type: str = "application/json") -> Response:
    return Response(orjson.dumps(doc, default=str), media_type=media_type)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/api/healthcheck/ogc"


@router.get("", summary="Landing page of the health-check results (OGC API - Features)")
def landing(request: Request) -> Response:
    b = _base(request)
    return _json({"title": "CIM platform: city health-check results (城市体检)",
                  "description": "Each indicator's value per unit and year, as OGC API - Features collections",
                  "links": [{"href": b, "rel": "self", "type": "application/json"},
                            {"href": str(request.base_url).rstrip("/") + "/api/openapi.json", "rel": "service-desc",
                             "type": "application/vnd.oai.openapi+json;version=3.0"},
                            {"href": f"{b}/conformance", "rel": "conformance", "type": "application/json"},
                            {"href": f"{b}/collections", "rel": "data", "type": "application/json"}]})


@router.get("/conformance", summary="Conformance classes of the health-check results")
def conformance() -> Response:
    return _json({"conformsTo": CONFORMANCE})


def _indicators(conn: sa.Connection) -> dict[str, dict]:
    """The indicators with stored results: id -> names, unit and extent (CRS84)."""
    rows = conn.execute(sa.text(f"""
        select indicator, st_xmin(e) x0, st_ymin(e) y0, st_xmax(e) x1, st_ymax(e) y1, years from (
            select indicator, st_transform(st_setsrid(st_extent(geom)::geometry, max(st_srid(geom))), 4326) e,
                   array_agg(distinct year order by year) years
            from healthcheck_results where {LATEST} group by indicator) s order by indicator""")).all()
    names = {i.id: i for i in definitions.load().indicators}
    out = {}
    for r in rows:
        ind = names.get(r.indicator)
        out[r.indicator] = {"title": ind.name_zh if ind else r.indicator,
                            "description": f"{ind.name_en} ({ind.unit}); {ind.source}" if ind else r.indicator,
                            "bbox": [r.x0, r.y0, r.x1, r.y1] if r.x0 is not None else None, "years": list(r.years)}
    return out


def _doc(b: str, cid: str, title: str, description: str, bbox, years) -> dict:
    href = f"{b}/collections/{cid}"
    doc = {"id": cid, "title": title, "description": description, "itemType": "feature", "crs": [CRS84],
           "links": [{"href": href, "rel": "self", "type": "application/json"},
                     {"href": f"{href}/items", "rel": "items", "type": GEOJSON}],
           "extent": {"spatial": {"bbox": [bbox or [-180.0, -90.0, 180.0, 90.0]], "crs": CRS84}}}
    if years:
        doc["extent"]["temporal"] = {"interval": [[f"{min(years)}-01-01T00:00:00Z", f"{max(years)}-12-31T23:59:59Z"]]}
    return doc


def _docs(request: Request) -> dict[str, dict]:
    b = _base(request)
    with auth.current_engine().connect() as c:
        inds = _indicators(c)
    docs = {PREFIX + k: _doc(b, PREFIX + k, v["title"], v["description"], v["bbox"], v["years"]) for k, v in inds.items()}
    boxes = [v["bbox"] for v in inds.values() if v["bbox"]]
    union = [min(x[0] for x in boxes), min(x[1] for x in boxes), max(x[2] for x in boxes), max(x[3] for x in boxes)] \
        if boxes else None
    years = sorted({y for v in inds.values() for y in v["years"]})
    return {ALL: _doc(b, ALL, "城市体检结果 (all indicators)", "every indicator's value per unit and year; filter by "
                      "indicator, year, level", union, years), **docs}


@router.get("/collections", summary="Health-check result collections")
def collections(request: Request, who: Caller) -> Response:
    b = _base(request)
    return _json({"collections": list(_docs(request).values()),
                  "links": [{"href": f"{b}/collections", "rel": "self", "type": "application/json"}]})


def _known(request: Request, cid: str) -> dict:
    docs = _docs(request)
    if cid not in docs:
        raise NotFoundError(f"no collection {cid!r}", hint="/api/healthcheck/ogc/collections lists them")
    return docs[cid]


@router.get("/collections/{collectionId}", summary="One health-check result collection")
def collection(request: Request, who: Caller, collectionId: str) -> Response:
    return _json(_known(request, collectionId))


def _bbox(text: str) -> list[float]:
    try:
        v = [float(x) for x in text.split(",")]
    except ValueError:
        v = []
    if len(v) != 4 or v[0] > v[2] or v[1] > v[3]:
        raise InputError(f"bbox {text!r}: expected minlon,minlat,maxlon,maxlat")
    return v


def _select(cid: str, fid: int | None, q: dict) -> tuple[str, dict]:
    where, params = [LATEST], {}
    indicator = cid[len(PREFIX):] if cid.startswith(PREFIX) else q.get("indicator")
    for name, value in (("indicator", indicator), ("year", q.get("year")), ("level", q.get("level")),
                        ("unit_key", q.get("unit_key")), ("id", fid)):
        if value is not None:
            where.append(f"{name} = :{name}")
            params[name] = value
    if q.get("bbox"):
        where.append("st_intersects(st_transform(geom, 4326), st_makeenvelope(:x0, :y0, :x1, :y1, 4326))")
        params |= dict(zip(("x0", "y0", "x1", "y1"), _bbox(q["bbox"])))
    return " and ".join(where), params


def _features(cid: str, fid: int | None, q: dict, limit: int, offset: int) -> list[dict]:
    where, params = _select(cid, fid, q)
    with auth.current_engine().connect() as c:
        rows = c.execute(sa.text(f"""
            select id, {', '.join(PROPS)}, details, st_asgeojson(st_transform(geom, 4326), 7) geometry
            from healthcheck_results where {where} order by id limit :limit offset :offset"""),
                         params | {"limit": limit, "offset": offset}).mappings().all()
    return [{"type": "Feature", "id": r["id"], "geometry": orjson.loads(r["geometry"]) if r["geometry"] else None,
             "properties": {**{k: r[k] for k in PROPS}, "details": r["details"]}} for r in rows]


@router.get("/collections/{collectionId}/items", summary="Values per unit (GeoJSON)", response_class=Response)
def items(request: Request, who: Caller, collectionId: str,
          limit: Annotated[int, Query(ge=1, le=10000)] = 1000, offset: Annotated[int, Query(ge=0)] = 0,
          bbox: str | None = None, year: Annotated[int | None, Query(ge=1900, le=2200)] = None,
          level: Annotated[str | None, Query(description="district, street, community or compound")] = None,
          indicator: str | None = None, unit_key: str | None = None) -> Response:
    _known(request, collectionId)
    q = {"bbox": bbox, "year": year, "level": level, "indicator": indicator, "unit_key": unit_key}
    feats = _features(collectionId, None, q, limit + 1, offset)
    here = request.url
    links = [{"href": str(here), "rel": "self", "type": GEOJSON}]
    if len(feats) > limit:
        links.append({"href": str(here.include_query_params(offset=offset + limit)), "rel": "next", "type": GEOJSON})
    return _json({"type": "FeatureCollection", "numberReturned": min(len(feats), limit), "links": links,
                  "features": feats[:limit]}, GEOJSON)


@router.get("/collections/{collectionId}/items/{featureId}", summary="One value (GeoJSON)", response_class=Response)
def item(request: Request, who: Caller, collectionId: str, featureId: int) -> Response:
    _known(request, collectionId)
    feats = _features(collectionId, featureId, {}, 1, 0)
    if not feats:
        raise NotFoundError(f"no feature {featureId} in collection {collectionId!r}")
    return _json(feats[0], GEOJSON)

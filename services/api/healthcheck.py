"""The city health check over HTTP: the indicator set, the years run, a year's values per indicator and
unit as GeoJSON features (units in WGS84, for the dashboard's map), the problem list and a comparison.
The run itself is the `healthcheck-run` process (processes/healthcheck.py)."""
from __future__ import annotations

from typing import Annotated

import orjson
import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Response

from analyses.healthcheck import areas, definitions, yearly
from services import auth

router = APIRouter(prefix="/healthcheck", tags=["City health check"])
Caller = Annotated[auth.Caller, Depends(auth.caller)]
Year = Annotated[int, Path(ge=1900, le=2200, description="the year of a stored run")]
YearQ = Annotated[int, Query(ge=1900, le=2200)]


def _json(doc) -> Response:
    return Response(orjson.dumps(doc, default=str, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")


@router.get("", summary="The indicator set and the years with a stored run")
def overview(who: Caller) -> Response:
    engine = auth.current_engine()
    with engine.connect() as c:
        years = c.execute(sa.text("select year, max(run_id) as run_id from healthcheck_results group by year "
                                  "order by year")).mappings().all()
    return _json({"set": definitions.load().as_json(), "years": [dict(r) for r in years]})


@router.get("/{year}/results", summary="A year's values per indicator and unit, as GeoJSON features")
def results(who: Caller, year: Year, indicator: str | None = None,
            level: Annotated[str | None, Query(description="district, street or community")] = None) -> Response:
    engine = auth.current_engine()
    run_id = yearly.latest_run(year, engine)
    with engine.connect() as c:
        rows = c.execute(sa.text("""
            select indicator, level, unit_key, unit_name, unit_object_id, value, straight_value, target, passes,
                   details, st_asgeojson(st_transform(geom, 4326), 7) as geometry
            from healthcheck_results where run_id = :r and (cast(:i as text) is null or indicator = :i)
              and (cast(:l as text) is null or level = :l) order by indicator, level, unit_key"""),
                         {"r": run_id, "i": indicator, "l": level}).mappings().all()
    feats = [{"type": "Feature", "geometry": orjson.loads(r["geometry"]) if r["geometry"] else None,
              "properties": {k: v for k, v in r.items() if k != "geometry"}} for r in rows]
    return _json({"type": "FeatureCollection", "year": year, "run_id": run_id, "features": feats})


@router.get("/{year}/problems", summary="A year's problem list: units missing a target, the objects behind")
def problems(who: Caller, year: Year) -> Response:
    return _json({"year": year, "problems": yearly.problems(year, auth.current_engine())})


@router.get("/service-areas", summary="The service areas and facilities of a coverage or life-circle indicator")
def service_areas(who: Caller, indicator: str) -> Response:
    return _json(areas.service_areas(indicator, auth.current_engine()))


@router.get("/compare", summary="Each indicator and unit in two years, with the change")
def compare(who: Caller, a: YearQ, b: YearQ) -> Response:
    return _json({"a": a, "b": b, "rows": yearly.compare(a, b, auth.current_engine())})

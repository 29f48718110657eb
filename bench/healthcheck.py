"""City health check: every indicator for every unit (`analyses.healthcheck.yearly.run`), and the straight-line
park coverage against GeoPandas (buffer, union, overlay), as an analyst would compute it.

The sample district (seed 7) at the given scale is generated once into the work folder; the layers the
indicators read (roads, land use, compounds, green, hc_units, hc_facilities) are imported into an
embedded PostGIS cluster of the bench's own (stopped at the end). Then, in one run:
- ours, all: the whole national set (walking and straight-line coverage, densities, ratios, per-capita
  areas) for the district, its streets and communities, stored as a run; goal < 60 s at scale 30;
- ours, park coverage: the straight-line park coverage of the district through the same kind, from the
  model in PostGIS (reading included);
- GeoPandas: the same value from the GeoPackage: read, buffer by size band, union, overlay, area.
Goal: ours at most half GeoPandas' time for the same value (within 0.1 percentage point).
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

SEED = 7
LAYERS = ("roads", "landuse", "compounds", "green", "hc_units", "hc_facilities")


def _district(scale: float, work: Path) -> Path:
    from sample_models.district import generate

    folder = work / f"district-{scale:g}"
    manifest = folder / "manifest.json"
    if not (manifest.exists() and json.loads(manifest.read_text()).get("healthcheck")):
        shutil.rmtree(folder, ignore_errors=True)
        print(f"generating the sample district at scale {scale:g} (once)", flush=True)
        generate(folder, scale=scale, seed=SEED)
    return folder


def geopandas_park_coverage(gpkg: Path) -> float:
    import geopandas as gpd

    land = gpd.read_file(gpkg, layer="landuse")
    green = gpd.read_file(gpkg, layer="green")
    area = green.area
    bands = [(green[(area >= 2000) & (area < 5000)], 300), (green[area >= 5000], 500)]
    cover = gpd.GeoDataFrame(geometry=[g.buffer(r).union_all() for g, r in bands], crs=green.crs).dissolve()
    residential = land[land["landuse"] == "residential"].dissolve()
    covered = gpd.overlay(residential, cover, how="intersection")
    return 100 * covered.area.sum() / residential.area.sum()


def run(scale: float, work: Path) -> dict:
    import geopandas  # noqa: F401  (the anchor: fail before the long part when it is missing; extra "bench")

    work = work.absolute()
    folder = _district(scale, work)
    os.environ["CIM_HOME"] = str(work / "home")
    os.environ.pop("CIM_DATABASE_URL", None)
    os.environ.pop("CIM_SRID", None)

    from analyses.healthcheck import definitions, kinds, yearly
    from analyses.healthcheck.inputs import ModelInputs
    from cim_core import db as cdb
    from cim_core.settings import get_settings
    from importers import gis
    from sample_models.district import entries

    get_settings.cache_clear()
    emb = cdb.embedded()
    try:
        engine = cdb.get_engine()
        for e in entries(folder):
            if e.importer == "gis" and e.options["layer"] in LAYERS:
                gis.import_file(folder / e.path, engine=engine, **e.options)
        t0 = time.perf_counter()
        hc = yearly.run(2025, engine=engine)
        all_s = time.perf_counter() - t0
        iset = definitions.load()
        park = iset.indicator("park_coverage")
        straight = dataclasses.replace(park, params={**park.params, "distance": "straight"})
        straight.params.pop("objects")
        t0 = time.perf_counter()
        inputs = ModelInputs(iset, engine, 2025)
        ours_value = kinds.coverage(straight, inputs.units("district"), inputs)[0].straight
        ours_s = time.perf_counter() - t0
    finally:
        emb.stop()
    t0 = time.perf_counter()
    theirs_value = geopandas_park_coverage(folder / "district.gpkg")
    theirs_s = time.perf_counter() - t0
    units = {lv: sum(1 for _, v in hc.values if v.unit.level == lv and _.id == "park_coverage")
             for lv in ("district", "street", "community")}
    return {
        "district": f"sample district scale {scale:g}, seed {SEED}",
        "all_indicators": {"seconds": round(all_s, 2), "indicators": len(iset.indicators), "units": units,
                           "values": len(hc.values), "problems": hc.problems, "goal": "< 60 s at scale 30"},
        "park_coverage_straight": {
            "ours": {"what": "kinds.coverage from PostGIS (read + buffer + union + intersection)",
                     "seconds": round(ours_s, 3), "value": round(ours_value, 4)},
            "geopandas": {"what": "read_file, buffer, union_all, dissolve, overlay", "seconds": round(theirs_s, 3),
                          "value": round(theirs_value, 4)},
            "ratio": round(ours_s / theirs_s, 3), "difference_pp": round(abs(ours_value - theirs_value), 4),
            "goal": "ratio <= 0.5, same value within 0.1 pp"},
        "load_average": os.getloadavg(),
    }

"""The sample district's renewal plan (旧改方案): the old residential block replaced by its renewed IFC model,
one old building of the same compound demolished for a pocket park (口袋公园) on its footprint, and the
compound's households revised for the flats demolished. Written as plans/renewal.gpkg next to
district.gpkg; the manifest lists the plan's imports (with `scenario`) and its removals (`scenarios`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyogrio.raw
import shapely

from .buildings import DWELLING_M2
from .layout import CRS
from .manifest import ImportEntry

SCENARIO = "renewal"
TITLE = "旧改方案"
PLAN_GPKG = "plans/renewal.gpkg"
IFC_OLD = "sample-ifc-residential-old"
NET_FLOOR_SHARE = 0.8  # as buildings.py counts households: gross floor area x 0.8 / DWELLING_M2


def _read(gpkg: Path, layer: str, where: str) -> dict:
    meta, _, wkb, cols = pyogrio.raw.read(gpkg, layer=layer, where=where)
    return {"geom": shapely.from_wkb(wkb), **{str(f): c for f, c in zip(meta["fields"], cols)}}


def _write(path: Path, layer: str, geoms, fields: dict[str, np.ndarray]) -> None:
    pyogrio.raw.write(path, shapely.to_wkb(geoms), [np.asarray(v) for v in fields.values()], list(fields),
                      layer=layer, driver="GPKG", crs=CRS, geometry_type="Polygon", append=path.exists())


def write_plan(out: Path, gpkg: Path, target: dict | None) -> tuple[list[dict], list[dict]]:
    """Write the plan's layers; returns (manifest file entries, manifest scenarios). Nothing without the old
    residential block (a district too small to have one)."""
    if target is None:
        return [], []
    old_id = str(target["id"])
    old = _read(gpkg, "buildings", f"id = '{old_id}'")
    compound = str(old["compound"][0])
    block = _read(gpkg, "buildings", f"compound = '{compound}' and id <> '{old_id}'")
    if not len(block["geom"]):
        return [], []
    # the neighbour nearest the renewed building is demolished for the pocket park
    k = int(np.argmin(shapely.distance(block["geom"], old["geom"][0])))
    gone, gone_id = block["geom"][k], str(block["id"][k])
    gone_floors = int(block["floors"][k])
    flats = int(round(gone_floors * shapely.area(gone) * NET_FLOOR_SHARE / DWELLING_M2))
    comp = _read(gpkg, "compounds", f"name = '{compound}'")
    path = out / PLAN_GPKG
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    area = round(float(shapely.area(gone)), 1)
    _write(path, "pocket_park", np.array([gone]), {"id": np.array(["G-plan-1"], dtype=object),
           "name": np.array([f"{compound}口袋公园"], dtype=object), "kind": np.array(["pocket park"], dtype=object),
           "area_m2": np.array([area])})
    households = int(comp["households"][0]) - flats
    _write(path, "compounds", comp["geom"][:1], {"id": np.array([str(comp["id"][0])], dtype=object),
           "name": np.array([compound], dtype=object), "build_year": np.array([int(comp["build_year"][0])]),
           "households": np.array([households])})
    entries = [ImportEntry("gis", PLAN_GPKG, {"layer": layer, "kind": kind, "dataset": f"sample-plan-{layer.replace('_', '-')}",
                                               "scenario": SCENARIO})
               for layer, kind in (("pocket_park", "green"), ("compounds", "landuse"))]
    files = [{"path": PLAN_GPKG, "kind": "gpkg", "scenario": SCENARIO, "layers": [
        {"layer": e.options["layer"], "count": 1, "import": e.as_json(), "command": e.command} for e in entries]}]
    removes = [{"dataset": IFC_OLD, "key": None}, {"dataset": "sample-buildings", "key": old_id},
               {"dataset": "sample-buildings", "key": gone_id}, {"dataset": "sample-compounds", "key": str(comp["id"][0])}]
    plan = {"name": SCENARIO, "title": TITLE, "removes": removes,
            "description": f"{compound}: the 1990s block {old_id} renewed (ifc/residential_renewed.ifc), block "
                           f"{gone_id} ({gone_floors} floors, {area} m2, {flats} households) demolished for a "
                           f"pocket park; the compound's households {int(comp['households'][0])} -> {households}",
            "expected": {"demolished": [gone_id], "changed": [old_id], "new": [], "pocket_park_m2": area,
                         "households_change": -flats}}
    return files, [plan]

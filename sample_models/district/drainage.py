"""Planted drainage cases of the sample district (issue 15), written next to district.gpkg:

- `drainage.gpkg`, layer `drainage_survey`: connections found by the rain/sewage sweep (排查), as pipes
  whose ends lie in manholes of the street networks: a rain lateral from a rain manhole into a sewage
  manhole (a misconnection, 雨污混接), and a three-pipe combined stretch (合流管) that ends in a sewage
  manhole; layer `drainage_areas`: the rain/sewage separation area around that stretch (drainage_system
  `separated`), where no combined pipe may remain;
- a low-lying area (易涝片区): the rain manhole that drains the most parcel area among the lowest lying
  ones, and the one below it, sit in a 0.8 m depression of the street, with the old 200 mm concrete pipes
  leaving them (undersized for the parcels above: they flood in a 3-year storm). The generated
  district.gpkg's pipes and pipe_nodes rows of those manholes and pipes are changed in place (ground,
  depth, size, material, year); the area is a second polygon of `drainage_areas` (area_type
  `waterlogging`);
- `inspection.csv`: CCTV records (CJJ 181-2012 codes) of a tenth of the drainage pipes, with defects
  consistent with age and material (concrete corrodes and cracks, PVC-U deforms), some repaired.

The manifest's `drainage` entry lists the files, the planted findings (by object key) and how to load
them (`load`). Apart from the low-lying area, the street networks stay as generated (and free of misconnections).
"""
from __future__ import annotations

import csv
import datetime as dt
import sqlite3
from pathlib import Path

import numpy as np
import pyogrio.raw
import shapely
import sqlalchemy as sa
from scipy.spatial import cKDTree

from .layout import CRS
from .writer import LayerWriter

GPKG, CSV = "drainage.gpkg", "inspection.csv"
SURVEY_FIELDS = {"id": "str", "utility": "str", "cjj_code": "str", "shape": "str", "diameter_mm": "int",
                 "material": "str", "install_year": "int", "start_invert": "float", "end_invert": "float",
                 "start_depth": "float", "end_depth": "float"}
AREA_FIELDS = {"id": "str", "name": "str", "drainage_system": "str", "area_type": "str"}
INSPECTED_SHARE = 0.1
# Defects by material (CJJ 181-2012 codes): concrete cracks, corrodes, leaks; PVC-U deforms; both silt up.
DEFECTS = {"concrete": ["PL", "FS", "SL", "TJ", "CK", "CJ", "JG", "SG"], "PVC-U": ["BX", "TJ", "CJ", "SG", "ZW"]}
MAX_GRADE = {"FS": 3, "AJ": 3, "CR": 3, "TL": 2, "FZ": 3}
# The low-lying area: depression of the street (m), the old pipes' size and year, the parcels it drains
# (the storm's subcatchment rule: a parcel drains to the nearest rain node within SUBCATCHMENT_REACH m).
DEPRESSION_M, OLD_PIPE = 0.8, {"diameter_mm": 200, "material": "concrete", "install_year": 1986}
SUBCATCHMENT_REACH, LOWLAND_MIN_HA = 300.0, 1.0


def _read(path: Path, layer: str) -> tuple[dict, np.ndarray]:
    meta, _, geom, data = pyogrio.raw.read(path, layer=layer)
    return dict(zip(meta["fields"], data)), shapely.from_wkb(geom)


def _heads(pipes: dict, nodes: dict, utility: str) -> np.ndarray:
    """Indices of the utility's manholes that no pipe enters (the upper ends of its stretches)."""
    entered = set(pipes["to_node"][pipes["utility"] == utility])
    return np.array([i for i, (u, t, k) in enumerate(zip(nodes["utility"], nodes["node_type"], nodes["id"]))
                     if u == utility and t == "manhole" and k not in entered], int)


def _outgoing(pipes: dict, lines, node_id: str) -> np.ndarray:
    """Unit plan direction of the first pipe leaving a node."""
    k = int(np.flatnonzero(pipes["from_node"] == node_id)[0])
    p = shapely.get_coordinates(lines[k])
    v = p[1] - p[0]
    return v / np.linalg.norm(v)


def _lateral(pipes, lines, nodes, points) -> tuple[int, int]:
    """(rain manhole, sewage head manhole): 5-40 m apart, the rain invert 0.3 m higher at least, and the
    lateral turning by less than 80° into the sewer that leaves the sewage manhole."""
    xy = shapely.get_coordinates(points)
    rain = np.flatnonzero((nodes["utility"] == "rain") & (nodes["node_type"] == "manhole"))
    for y in _heads(pipes, nodes, "sewage"):
        d = np.linalg.norm(xy[rain] - xy[y], axis=1)
        for x in rain[np.argsort(d)][:5]:
            v = xy[y] - xy[x]
            dist = np.linalg.norm(v)
            turn = np.degrees(np.arccos(np.clip(v / dist @ _outgoing(pipes, lines, nodes["id"][y]), -1, 1)))
            if 5 <= dist <= 40 and nodes["invert_z"][x] > nodes["invert_z"][y] + 0.3 and turn < 80:
                return int(x), int(y)
    raise RuntimeError("no rain and sewage manholes fit for the planted misconnection")


def _combined(pipes, lines, nodes, points, away_from: np.ndarray) -> tuple[int, np.ndarray]:
    """(sewage head manhole, 4 points of a stretch ending there): the stretch continues the street beyond
    the head, 3 x 30 m, at least 300 m from the misconnection."""
    xy = shapely.get_coordinates(points)
    tree = cKDTree(xy)
    for z in _heads(pipes, nodes, "sewage"):
        if np.linalg.norm(xy[z] - away_from) < 300:
            continue
        back = -_outgoing(pipes, lines, nodes["id"][z])
        stretch = np.array([xy[z] + back * 30 * k for k in (3, 2, 1, 0)])
        if (tree.query(stretch[:3])[0] > 2.0).all():  # its other ends lie in no manhole
            return int(z), stretch
    raise RuntimeError("no sewage head manhole fits for the planted combined stretch")


def _survey(out: Path, pipes, lines, nodes, points) -> tuple[dict, object, int]:
    """Write drainage.gpkg's survey layer; returns the planted findings, the separation area and the
    lateral's rain manhole."""
    xy = shapely.get_coordinates(points)
    ground = nodes["ground_z"]
    x, y = _lateral(pipes, lines, nodes, points)
    z, stretch = _combined(pipes, lines, nodes, points, xy[y])
    inv_x, inv_y, inv_z = (float(nodes["invert_z"][i]) for i in (x, y, z))
    c_inv = inv_z + 0.2 + np.array([0.6, 0.4, 0.2, 0.0])
    lat = [np.array([[*xy[x], inv_x], [*xy[y], inv_y + 0.2]])]
    comb = [np.array([[*stretch[k], c_inv[k]], [*stretch[k + 1], c_inv[k + 1]]]) for k in range(3)]
    ids = ["YSX000001", "HSX000001", "HSX000002", "HSX000003"]
    w = LayerWriter(out / GPKG, "drainage_survey", "LineString Z", SURVEY_FIELDS)
    starts = [inv_x, *c_inv[:3]]
    ends = [inv_y + 0.2, *c_inv[1:]]
    gz = [ground[x], ground[z], ground[z], ground[z]]
    w.add(shapely.linestrings(lat + comb), id=np.array(ids, object),
          utility=np.array(["rain", "combined", "combined", "combined"], object),
          cjj_code=np.array(["YS", "HS", "HS", "HS"], object), shape="circular",
          diameter_mm=np.array([300, 400, 400, 400]), material=np.array(["PVC-U", "concrete", "concrete", "concrete"],
                                                                        object),
          install_year=np.array([2012, 1988, 1988, 1988]), start_invert=np.array(starts),
          end_invert=np.array(ends), start_depth=np.array(gz) - starts, end_depth=np.array(gz) - ends)
    w.close()
    sewer_out = pipes["id"][pipes["from_node"] == nodes["id"][y]][0]
    return {"rain_into_sewage": [{"object": f"pipe:{ids[0]}", "related": f"pipe:{sewer_out}"}],
            "combined_in_separated_area": [{"object": f"pipe:{i}", "related": "DA001"} for i in ids[1:]]}, \
        shapely.buffer(shapely.linestrings(stretch), 15.0), int(x)


def _drained_area(out: Path, nodes, points) -> np.ndarray:
    """Parcel area (m2) that drains to each node under the storm's subcatchment rule."""
    parcels, polys = _read(out / "district.gpkg", "landuse")
    xy = shapely.get_coordinates(points)
    inlets = np.flatnonzero(np.isin(nodes["utility"], ("rain", "combined")) & (nodes["node_type"] != "outlet"))
    pts = shapely.get_coordinates(shapely.point_on_surface(polys))
    d, j = cKDTree(xy[inlets]).query(pts, distance_upper_bound=SUBCATCHMENT_REACH)
    area = np.zeros(len(xy))
    ok = np.isfinite(d) & np.array([bool(u) for u in parcels["landuse"]])
    np.add.at(area, inlets[j[ok]], shapely.area(polys)[ok])
    return area


def _update(path: Path, table: str, key: str, rows: dict[str, dict]) -> None:
    """Change attribute columns of features in place (keyed by `key`). The GeoPackage's R-tree triggers name
    GDAL's SQL functions; an attribute update never runs them, but SQLite needs them declared."""
    with sqlite3.connect(path) as c:
        for fn in ("ST_IsEmpty", "ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY"):
            c.create_function(fn, 1, lambda g: None)
        for k, values in rows.items():
            cols = ", ".join(f'"{col}" = ?' for col in values)
            c.execute(f'update "{table}" set {cols} where "{key}" = ?', [*values.values(), k])


def _lowland(out: Path, pipes, nodes, points, avoid: int) -> tuple[dict, object]:
    """Sink the lowest rain head manhole draining at least LOWLAND_MIN_HA of parcels, and the one below it, into
    a depression with old undersized pipes; returns the planted case and the area's polygon."""
    area = _drained_area(out, nodes, points)
    ok = (nodes["utility"] == "rain") & (nodes["node_type"] == "manhole") & (area >= LOWLAND_MIN_HA * 1e4)
    ids = nodes["id"].astype(str)  # as str, not object: np.isin compares object arrays pair by pair (n x m)
    ok &= np.isin(ids, pipes["from_node"].astype(str)) & ~np.isin(ids, pipes["to_node"].astype(str))  # a head
    ok[avoid] = False
    if not ok.any():
        raise RuntimeError("no rain manhole drains enough parcel area for the planted low-lying area")
    top = int(np.flatnonzero(ok)[np.argmin(nodes["ground_z"][ok])])
    first = int(np.flatnonzero(pipes["from_node"] == nodes["id"][top])[0])
    below = int(np.flatnonzero(nodes["id"] == pipes["to_node"][first])[0])
    sunk = [top] + ([below] if nodes["node_type"][below] == "manhole" else [])
    ground = {nodes["id"][i]: float(nodes["ground_z"][i]) - DEPRESSION_M for i in sunk}
    _update(out / "district.gpkg", "pipe_nodes", "id",
            {k: {"ground_z": g, "depth": round(g - float(nodes["invert_z"][nodes["id"] == k][0]), 3)}
             for k, g in ground.items()})
    old = np.flatnonzero(np.isin(pipes["from_node"], list(ground)))  # the pipes leaving the area: undersized
    rows = {}
    for k in np.flatnonzero(np.isin(pipes["from_node"], list(ground)) | np.isin(pipes["to_node"], list(ground))):
        row = dict(OLD_PIPE, shape="circular", width_mm=None, height_mm=None) if k in old else {}
        for end, node in (("start", pipes["from_node"][k]), ("end", pipes["to_node"][k])):
            if node in ground:
                row[f"ground_z_{end}"] = ground[node]
                row[f"{end}_depth"] = round(ground[node] - float(pipes[f"{end}_invert"][k]), 3)
        rows[pipes["id"][k]] = row
        for col, v in OLD_PIPE.items() if k in old else ():  # the inspection records see the old pipes
            pipes[col][k] = v
    _update(out / "district.gpkg", "pipes", "id", rows)
    polygon = shapely.buffer(shapely.multipoints(shapely.get_coordinates(points[sunk])), 40.0).convex_hull
    return {"area": "DA002", "manholes": [f"node:{k}" for k in ground], "pipes": [f"pipe:{pipes['id'][k]}" for k in old],
            "depression_m": DEPRESSION_M, "drained_ha": round(float(area[top]) / 1e4, 2), "storm": {
                "return_period": 3, "duration_min": 120}}, polygon


def _areas(out: Path, separated, lowland) -> None:
    a = LayerWriter(out / GPKG, "drainage_areas", "Polygon", AREA_FIELDS)
    a.add(np.array([separated, lowland]), id=np.array(["DA001", "DA002"], object),
          name=np.array(["雨污分流改造区（示例）", "易涝片区（示例）"], object),
          drainage_system=np.array(["separated", ""], object), area_type=np.array(["separation", "waterlogging"],
                                                                                 object))
    a.close()


def _inspection(out: Path, pipes, seed: int) -> dict:
    """Write inspection.csv: a tenth of the drainage pipes, defects by age and material."""
    rng = np.random.default_rng(seed + 15)
    drain = np.flatnonzero(np.isin(pipes["utility"], ("rain", "sewage")))
    picked = np.sort(rng.choice(drain, max(1, int(len(drain) * INSPECTED_SHARE)), replace=False))
    rows = []
    for k in picked:
        age = 2025 - int(pipes["install_year"][k])
        material = "PVC-U" if pipes["material"][k] == "PVC-U" else "concrete"
        when = dt.date(2025, 3, 1) + dt.timedelta(days=int(rng.integers(0, 200)))
        n = rng.poisson(age / 12)
        if not n:
            rows.append([pipes["id"][k], "", "", when.isoformat(), "", "", "", "no defect", ""])
        for _ in range(n):
            code = str(rng.choice(DEFECTS[material]))
            grade = int(min(MAX_GRADE.get(code, 4), 1 + rng.binomial(3, min(age / 45, 0.9))))
            pos = round(float(rng.uniform(0, pipes["length_m"][k])), 1)
            fixed = when + dt.timedelta(days=60) if grade >= 3 and rng.random() < 0.3 else None
            rows.append([pipes["id"][k], "", "", when.isoformat(), code, pos, grade, "", fixed or ""])
    with open(out / CSV, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["segment", "from_manhole", "to_manhole", "date", "code", "position_m", "grade",
                                  "remarks", "repaired"], *rows])
    return {"pipes": len(picked), "records": len(rows)}


def plant(out: str | Path, seed: int) -> dict:
    """Write the planted drainage cases next to the district's GeoPackage; returns the manifest entry."""
    out = Path(out)
    (out / GPKG).unlink(missing_ok=True)
    pipes, lines = _read(out / "district.gpkg", "pipes")
    nodes, points = _read(out / "district.gpkg", "pipe_nodes")
    planted, separated, lateral_top = _survey(out, pipes, lines, nodes, points)
    lowland, polygon = _lowland(out, pipes, nodes, points, lateral_top)
    _areas(out, separated, polygon)
    inspection = _inspection(out, pipes, seed)
    return {"files": [GPKG, CSV], "crs": CRS, "planted": planted, "lowland": lowland, "inspection": inspection,
            "datasets": {"survey": "sample-drainage-survey", "areas": "sample-drainage-areas",
                         "inspection": "sample-inspection"}}


def load(folder: str | Path, *, engine: sa.Engine | None = None, skip_loaded: bool = False) -> list:
    """Import the planted drainage cases of a generated district (after the district itself). skip_loaded:
    leave out a file whose dataset is loaded from the same content already (as `cim demo` does)."""
    from cim_core import store
    from importers import gis, inspection

    folder = Path(folder)
    loaded = {d["name"]: d["sha256"] for d in store.list_datasets(engine)} if skip_loaded else {}
    todo = [(GPKG, "sample-drainage-survey", lambda: gis.import_file(
                folder / GPKG, layer="drainage_survey", kind="pipes", dataset="sample-drainage-survey", engine=engine,
                force=True)),
            (GPKG, "sample-drainage-areas", lambda: gis.import_file(
                folder / GPKG, layer="drainage_areas", kind="landuse", dataset="sample-drainage-areas", engine=engine,
                force=True)),
            (CSV, "sample-inspection", lambda: inspection.import_file(folder / CSV, dataset="sample-inspection",
                                                                     engine=engine))]
    return [imp() for path, name, imp in todo if loaded.get(name) != store.sha256_of(folder / path)]

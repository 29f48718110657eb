"""What water supply operations need of the sample district's water network (issue 14): valve statuses as
a utility's records have them (most open, a few seized or missing in the field), and the district's source,
the node nearest the south-west corner, where the main from the waterworks enters (a reservoir node).

Statuses come from a hash of the node id, so they follow the seed without drawing from the generator's
random stream (the rest of the district stays as it was). Repair incidents, clustered on the old cast-iron
mains, go to a CSV beside the GeoPackage (`cim import incidents`); the manifest's `water` entry lists it
and the planted cases.
"""
from __future__ import annotations

import csv
import datetime as dt
import re
import sqlite3
import zlib
from pathlib import Path

import numpy as np
import shapely

SEIZED_PER_MILLE = 50  # valves found seized on exercising (5 %)
MISSING_PER_MILLE = 30  # valves in the records but not found in the field (3 %)


def valve_status(node_ids: np.ndarray, node_type: np.ndarray) -> np.ndarray:
    """`status` of every node: open / seized / missing for valves, None for the others."""
    h = np.array([zlib.crc32(str(i).encode()) % 1000 for i in node_ids])
    status = np.where(h < SEIZED_PER_MILLE, "seized", np.where(h < SEIZED_PER_MILLE + MISSING_PER_MILLE,
                                                                "missing", "open")).astype(object)
    status[node_type != "valve"] = None
    return status


def with_source(node_xy: np.ndarray, node_type: np.ndarray) -> np.ndarray:
    """Node types with the junction nearest the south-west corner made the network's source (reservoir)."""
    out = node_type.copy()
    junctions = np.flatnonzero(node_type == "junction")
    if len(junctions):
        corner = node_xy.min(axis=0)
        out[junctions[np.argmin(np.linalg.norm(node_xy[junctions] - corner, axis=1))]] = "reservoir"
    return out


INCIDENTS = "water_incidents.csv"
INCIDENT_YEARS = (2019, 2025)  # repairs on record: six years
WEAK_SHARE = 0.25  # share of the old cast-iron mains that fail again and again
KINDS = ("burst", "leak", "repair")


def write_incidents(out: Path, gpkg: Path, seed: int) -> dict:
    """Repair incidents of the water mains, clustered on old cast-iron mains (a weak quarter of them fails
    two to five times, any other main rarely), written as a CSV for `cim import incidents`, with two rows
    planted to be refused (a date that does not parse, a pipe that does not exist). Returns the manifest's
    `water` entry: the file, its import command, the refused rows, valve statuses and the source node."""
    rng = np.random.default_rng([seed, 14])
    geoms, pipes = _read(gpkg, "pipes", ["id", "material", "install_year"])
    ids, material, year = pipes["id"], pipes["material"], pipes["install_year"]
    lines = shapely.from_wkb(geoms)
    old = (material == "cast iron") & (year < 2000)
    counts = np.where(old & (rng.random(len(ids)) < WEAK_SHARE), rng.integers(2, 6, len(ids)),
                      (rng.random(len(ids)) < 0.01).astype(int))
    which = np.repeat(np.arange(len(ids)), counts)
    points = shapely.line_interpolate_point(lines[which], rng.random(len(which)), normalized=True)
    xy = shapely.get_coordinates(points)
    days = rng.integers(0, (INCIDENT_YEARS[1] - INCIDENT_YEARS[0]) * 365, len(which))
    dates = [(dt.date(INCIDENT_YEARS[0], 1, 1) + dt.timedelta(days=int(d))).isoformat() for d in days]
    kinds = rng.choice(KINDS, len(which))
    with open(out / INCIDENTS, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["date", "kind", "pipe", "x", "y"])
        w.writerows([d, k, "", f"{x:.2f}", f"{y:.2f}"] for d, k, (x, y) in zip(dates, kinds, xy))
        w.writerow(["2023-02-30", "burst", "", f"{xy[0, 0]:.2f}", f"{xy[0, 1]:.2f}"] if len(xy) else [])
        w.writerow(["2023-03-01", "leak", "pipe:does-not-exist", "", ""])
    n = len(which)
    _, nodes = _read(gpkg, "pipe_nodes", ["node_type", "status", "id"])
    node_type, status, node_id = nodes["node_type"], nodes["status"], nodes["id"]
    return {"incidents": {"path": INCIDENTS, "rows": n + 2, "on_old_cast_iron": int(counts[old].sum()),
                          "refused_rows": [n + 2, n + 3],  # CSV row numbers (the header is row 1)
                          "command": f"cim import incidents {INCIDENTS} --dataset sample-water-incidents"},
            "valves": {s: int(((node_type == "valve") & (status == s)).sum()) for s in ("open", "seized", "missing")},
            "source_node": str(node_id[node_type == "reservoir"][0]) if (node_type == "reservoir").any() else None}


VILLAGE_HOUSE = re.compile(r"^(.+村)\d+号$")  # names of an urban village's houses (buildings.village)


def leave_village_unconnected(gpkg: Path) -> dict:
    """The largest urban village (城中村) is not on the public network yet (the seed plan connects every urban
    village): its houses get `water_service = none` in the buildings layer. Returns the manifest's entry."""
    with sqlite3.connect(gpkg) as db:
        # GDAL's R-tree triggers name these; they run only when a feature id changes, which no update here does
        for fn in ("ST_IsEmpty", "ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY"):
            db.create_function(fn, 1, _never)
        rows = db.execute("select fid, id, name from buildings where compound is null and name like '%村%号'").fetchall()
        villages: dict[str, list] = {}
        for fid, bid, name in rows:
            m = VILLAGE_HOUSE.match(name or "")
            if m:
                villages.setdefault(m.group(1), []).append((fid, bid))
        if not villages:
            return {"name": None, "buildings": []}
        name = max(sorted(villages), key=lambda v: len(villages[v]))
        db.execute("alter table buildings add column water_service text")
        db.executemany("update buildings set water_service = 'none' where fid = ?", [(f,) for f, _ in villages[name]])
    return {"name": name, "buildings": sorted(b for _, b in villages[name]), "attribute": "water_service = none"}


def _never(_):
    raise RuntimeError("a GeoPackage geometry trigger ran where none should")


def _read(gpkg: Path, layer: str, columns: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Geometries and columns (by name: pyogrio returns them in the layer's order) of the water features."""
    import pyogrio.raw

    meta, _, geoms, data = pyogrio.raw.read(gpkg, layer=layer, columns=columns, where="utility = 'water'")
    return geoms, dict(zip(meta["fields"], data))

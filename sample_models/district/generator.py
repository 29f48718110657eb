"""Write the sample district: district.gpkg (a layer per theme), ifc/*.ifc and manifest.json."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import shapely

from . import buildings as bld
from . import drainage, renewal, underground, water_ops
from . import healthcheck as hc
from .ifc import BuildingModel, Lateral, write_ifc
from .layout import (
    CENTRE_LONLAT,
    CRS,
    ROAD_CLASS,
    V,
    district_centre,
    make_grid,
    plan_district,
    river_outline,
    riverside_strips,
)
from .manifest import VERSION, ImportEntry
from .networks import GRAVITY, UTILITIES, build_networks, service_bends, street_graph
from .writer import LayerWriter

GPKG = "district.gpkg"
RIVER_BEYOND = 100.0  # m the rivers run on beyond the district's border streets
FIELDS = {
    "roads": ("LineString", {"id": "str", "name": "str", "road_class": "str", "width_m": "float"}),
    "rivers": ("Polygon", {"name": "str", "kind": "str"}),
    "river_banks": ("LineString", {"name": "str", "side": "str", "kind": "str"}),
    "landuse": ("Polygon", {"id": "str", "landuse": "str", "name": "str"}),
    "compounds": ("Polygon", {"id": "str", "name": "str", "build_year": "int", "households": "int"}),
    "buildings": (
        "Polygon",
        {
            "id": "str",
            "name": "str",
            "floors": "int",
            "height_m": "float",
            "use": "str",
            "structure": "str",
            "build_year": "int",
            "compound": "str",
            "ground_z": "float",
            "ifc_file": "str",
        },
    ),
    "green": ("Polygon", {"id": "str", "name": "str", "kind": "str", "area_m2": "float"}),
    "facilities": ("Point", {"id": "str", "name": "str", "kind": "str", "capacity": "int"}),
    "pipes": (
        "LineString Z",
        {
            "id": "str",
            "utility": "str",
            "cjj_code": "str",
            "shape": "str",
            "diameter_mm": "int",
            "width_mm": "int",
            "height_mm": "int",
            "material": "str",
            "install_year": "int",
            "owner": "str",
            "pressure_class": "str",
            "start_depth": "float",
            "end_depth": "float",
            "start_invert": "float",
            "end_invert": "float",
            "from_node": "str",
            "to_node": "str",
            "ground_z_start": "float",
            "ground_z_end": "float",
            "length_m": "float",
        },
    ),
    "pipe_nodes": (
        "Point",
        {
            "id": "str",
            "utility": "str",
            "cjj_code": "str",
            "node_type": "str",
            "depth": "float",
            "ground_z": "float",
            "invert_z": "float",
            "status": "str",
        },
    ),
}
# Options of the GIS import of each layer: what it becomes (kind), and where to read building heights.
IMPORT_AS = {
    "roads": {"kind": "roads"},
    "rivers": {"kind": "water"},
    "river_banks": {"kind": "water"},
    "landuse": {"kind": "landuse"},
    "compounds": {"kind": "landuse"},
    "buildings": {"kind": "buildings", "height_field": "height_m", "floors_field": "floors"},
    "green": {"kind": "green"},
    "facilities": {"kind": "facilities"},
    "pipes": {"kind": "pipes"},
}
FIELDS |= hc.FIELDS  # units and facilities of the city health check
IMPORT_AS |= hc.IMPORT_AS
# The detailed IFC buildings: file stem, footprint role, scenario, and overrides of the footprint's data.
IFC_BUILDINGS = [
    ("school", "school", "as-is", {}),
    ("hospital", "hospital", "as-is", {}),
    ("office_tower", "office", "as-is", {}),
    ("residential_old", "old_residential", "as-is", {}),
    (
        "residential_renewed",
        "old_residential",
        "renewed",
        {"year": 2023, "colour": (0.93, 0.86, 0.72), "wall": 0.34, "window": (1.8, 1.5)},
    ),
]
# Feature ids of the layers the cells write: prefix and digits, e.g. B000001.
ID_FORMAT = {"buildings": ("B", 6), "landuse": ("L", 6), "green": ("G", 5), "facilities": ("F", 5)}
# The IFC file standing on each footprint role (the as-is buildings; the renewed block replaces one).
IFC_OF_ROLE = {role: f"ifc/{stem}.ifc" for stem, role, scenario, _ in IFC_BUILDINGS if scenario == "as-is"}
# Service pipes of the renewed block: utility, offset along the street from the footprint centre (m),
# diameter (mm), material.
LATERALS = [("water", -6.0, 100, "ductile iron"), ("sewage", 0.0, 200, "PVC-U"), ("rain", 6.0, 200, "PVC-U")]
CONVENTIONS = {
    "crs": "EPSG:4547 (CGCS2000 / 3-degree Gauss-Kruger CM 114E), metres",
    "heights": "elevations in metres on the 1985 national height datum; ground_z comes from one smooth "
    "surface shared by all layers",
    "pipe_depth": "start_depth/end_depth and node depth: metres below ground to the invert (inside bottom) "
    "for gravity pipes (rain, sewage), to the centreline for pressure pipes and cable ducts",
    "pipe_z": "pipes are 3D lines: z is the invert elevation for gravity pipes, the centreline elevation "
    "for the others; pipe_nodes.invert_z likewise",
    "pipe_sizes": "circular pipes give diameter_mm; rectangular culverts and ducts give width_mm and "
    "height_mm",
    "flow": "gravity pipes run from_node -> to_node downstream; start_invert > end_invert; they end at "
    "'outlet' nodes on the river banks",
    "ifc": "IfcMapConversion (Eastings, Northings, OrthogonalHeight, XAxisAbscissa/Ordinate) maps the "
    "model's local origin, a corner of the footprint, onto EPSG:4547",
    "import": "importers.<importer>.import_file(path, **options) loads a file or layer; path is relative "
    "to the folder of this manifest",
    "commands": "paths are relative to the folder of this manifest; run the commands from there",
}


def _polys(x0, y0, x1, y1):
    return shapely.box(x0, y0, x1, y1, ccw=True)


def generate(
    out: Path, scale: float = 1, seed: int = 7, progress: Callable[[str, int], None] | None = None
) -> dict:
    """Generate the sample district into `out` and return its manifest (also written to manifest.json).

    scale multiplies the area (and so the object counts): scale 1 is about 3 km x 3 km and 3,000
    buildings. The same seed gives the same features. progress(stage, n) is called as layers are
    written (features so far) and as each IFC file is done.
    """
    started = time.perf_counter()
    grid = make_grid(scale, seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    gpkg = out / GPKG
    for stale in (gpkg, out / f"{GPKG}-wal", out / f"{GPKG}-shm"):
        stale.unlink(missing_ok=True)
    plan = plan_district(grid)
    writers = {
        name: LayerWriter(gpkg, name, gtype, fields, progress) for name, (gtype, fields) in FIELDS.items()
    }

    _write_roads(plan, writers["roads"])
    targets, ids = _write_cells(plan, writers)
    services = _services(plan, targets.get("old_residential"))
    nets, nodes, lengths, outfall_x = _write_networks(plan, writers, services)
    _write_water(plan, writers, outfall_x, ids)
    planted = hc.write(grid, writers)
    counts = {name: w.close() for name, w in writers.items()}

    ifc_files = _write_ifc(out, grid.seed, targets, nets, nodes, progress)
    manifest = _manifest(grid, plan, counts, lengths, ifc_files, targets, time.perf_counter() - started)
    plan_files, manifest["scenarios"] = renewal.write_plan(out, gpkg, targets.get("old_residential"))
    manifest["files"] += plan_files
    manifest["drainage"] = drainage.plant(out, grid.seed)
    manifest["underground"] = underground.plant(out, grid.extent, FIELDS)
    manifest["water"] = water_ops.write_incidents(out, gpkg, grid.seed)
    manifest["water"]["unconnected_village"] = water_ops.leave_village_unconnected(gpkg)
    manifest["healthcheck"] = planted
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    return manifest


def _write_roads(plan, w: LayerWriter) -> None:
    L, grid = plan.lines, plan.grid
    g = street_graph(L, np.ones(len(L.c), dtype=bool))
    origin = np.array([grid.ox, grid.oy])
    a, b = origin + g.xy[g.e0] / 10.0, origin + g.xy[g.e1] / 10.0
    w.add(
        shapely.linestrings(np.stack([a, b], axis=1)),
        id=np.array([f"R{k:06d}" for k in range(1, len(a) + 1)], dtype=object),
        name=L.name[g.eline],
        road_class=ROAD_CLASS[L.cls[g.eline]],
        width_m=L.width[g.eline],
    )


class _Ids:
    """Feature ids of a layer, numbered on from cell to cell."""

    def __init__(self):
        self.used = dict.fromkeys(ID_FORMAT, 0)

    def take(self, layer: str, n: int) -> np.ndarray:
        prefix, width = ID_FORMAT[layer]
        first = self.used[layer]
        self.used[layer] += n
        return np.array([f"{prefix}{k:0{width}d}" for k in range(first + 1, first + n + 1)], dtype=object)


def _write_cells(plan, writers) -> tuple[dict[str, dict], _Ids]:
    """Stream the cells' features; returns the footprints the IFC buildings stand on, by role, and the
    ids given out."""
    ids = _Ids()
    targets: dict[str, dict] = {}
    for j in range(plan.grid.ncy):
        for i in range(plan.grid.ncx):
            cf = bld.build_cell(plan, i, j)
            targets.update(_write_buildings(cf, writers["buildings"], ids))
            _write_cell_areas(cf, writers, ids)
    return targets, ids


def _write_buildings(cf, w: LayerWriter, ids: _Ids) -> dict[str, dict]:
    """The buildings of a cell; returns those the IFC buildings stand on, by role."""
    b = bld.building_columns(cf)
    if not b:
        return {}
    n = len(b["x0"])
    bid = ids.take("buildings", n)
    ifc_file = np.full(n, None, dtype=object)
    targets = {}
    for role, (k, line) in cf.targets.items():
        ifc_file[k] = IFC_OF_ROLE[role]
        targets[role] = dict(
            id=bid[k],
            line=line,
            rect=(b["x0"][k], b["y0"][k], b["x1"][k], b["y1"][k]),
            **{c: b[c][k] for c in ("name", "use", "floors", "year", "structure", "ground_z", "height_m")},
        )
    w.add(
        _polys(b["x0"], b["y0"], b["x1"], b["y1"]),
        id=bid,
        name=b["name"],
        floors=b["floors"],
        height_m=b["height_m"],
        use=b["use"],
        structure=b["structure"],
        build_year=b["year"],
        compound=b["compound"],
        ground_z=b["ground_z"],
        ifc_file=ifc_file,
    )
    return targets


def _write_cell_areas(cf, writers, ids: _Ids) -> None:
    """The land use, compounds, greens and facilities of a cell."""
    lu = bld.CellFeatures.columns(cf.landuse)
    if lu:
        writers["landuse"].add(
            _polys(lu["x0"], lu["y0"], lu["x1"], lu["y1"]),
            id=ids.take("landuse", len(lu["x0"])),
            landuse=lu["landuse"],
            name=lu["name"],
        )
    c = bld.CellFeatures.columns(cf.compounds)
    if c:
        writers["compounds"].add(
            _polys(c["x0"], c["y0"], c["x1"], c["y1"]),
            id=c["id"],
            name=c["name"],
            build_year=c["build_year"],
            households=c["households"],
        )
    g = bld.CellFeatures.columns(cf.green)
    if g:
        writers["green"].add(
            _polys(g["x0"], g["y0"], g["x1"], g["y1"]),
            id=ids.take("green", len(g["x0"])),
            name=g["name"],
            kind=g["kind"],
            area_m2=g["area_m2"],
        )
    f = bld.CellFeatures.columns(cf.facilities)
    if f:
        writers["facilities"].add(
            shapely.points(f["x"], f["y"]),
            id=ids.take("facilities", len(f["x"])),
            name=f["name"],
            kind=f["kind"],
            capacity=f["capacity"],
        )


def _services(plan, target) -> dict[str, tuple[int, float]]:
    """Where the renewed block's service pipes meet the street: utility -> (street line, coordinate)."""
    if target is None:
        return {}
    x0, y0, x1, y1 = target["rect"]
    line = target["line"]
    centre = (y0 + y1) / 2 if plan.lines.orient[line] == V else (x0 + x1) / 2
    return {u: (line, round(centre + shift, 1)) for u, shift, _, _ in LATERALS}


def _null_zero(v: np.ndarray) -> np.ndarray:
    return np.where(v > 0, v, np.nan)


def _write_networks(plan, writers, services):
    """Write every utility's pipes and nodes; returns the networks, the service nodes (utility -> id, x, y,
    z, index k in its network), the network lengths (km) and the eastings of the drainage outfalls."""
    service_nodes, lengths, outfall_x = {}, {}, []
    nets = build_networks(plan, services)
    for utility, net in nets.items():
        spec = UTILITIES[utility]
        node_ids, seg_ids = net.node_ids(), net.seg_ids()
        a, b = net.seg_a, net.seg_b
        z = net.node_invert
        lines = net.lines()
        length = np.round(np.linalg.norm(net.node_xy[b] - net.node_xy[a], axis=1), 2)
        s = net.seg
        gravity = utility in GRAVITY
        nan = np.full(len(a), np.nan)
        writers["pipes"].add(
            lines,
            id=seg_ids,
            utility=utility,
            cjj_code=spec["code"],
            shape=s["shape"],
            diameter_mm=_null_zero(s["diameter_mm"]),
            width_mm=_null_zero(s["width_mm"]),
            height_mm=_null_zero(s["height_mm"]),
            material=s["material"],
            install_year=s["install_year"],
            owner=spec["owner"],
            pressure_class=s["pressure_class"],
            start_depth=net.node_depth[a],
            end_depth=net.node_depth[b],
            start_invert=z[a] if gravity else nan,
            end_invert=z[b] if gravity else nan,
            from_node=node_ids[a],
            to_node=node_ids[b],
            ground_z_start=net.node_ground[a],
            ground_z_end=net.node_ground[b],
            length_m=length,
        )
        node_type = water_ops.with_source(net.node_xy, net.node_type) if utility == "water" else net.node_type
        writers["pipe_nodes"].add(
            shapely.points(net.node_xy),
            id=node_ids,
            utility=utility,
            cjj_code=spec["code"],
            node_type=node_type,
            status=water_ops.valve_status(node_ids, node_type),
            depth=net.node_depth,
            ground_z=net.node_ground,
            invert_z=net.node_invert,
        )
        lengths[utility] = round(float(length.sum()) / 1000, 1)
        if utility in services:
            k = net.service[0]
            service_nodes[utility] = {
                "id": node_ids[k],
                "x": float(net.node_xy[k, 0]),
                "y": float(net.node_xy[k, 1]),
                "z": float(net.node_invert[k]),
                "k": k,
            }
        if utility in GRAVITY:
            outfall_x.append(net.node_xy[net.node_type == "outlet", 0])
    return nets, service_nodes, lengths, outfall_x


def _write_water(plan, writers, outfall_x, ids: _Ids) -> None:
    """Rivers (with the outfalls' eastings as vertices, so outfalls lie exactly on the banks), their banks,
    and the riverside parks, which are also green land use."""
    x0, _, x1, _ = plan.grid.extent
    extra = np.concatenate(outfall_x) if outfall_x else np.empty(0)
    for river in plan.rivers:
        # The river runs on beyond the district, past the drains under its border streets.
        xs, s, n = river_outline(river, x0 - RIVER_BEYOND, x1 + RIVER_BEYOND, extra)
        ring = np.column_stack([np.r_[xs, xs[::-1]], np.r_[s, n[::-1]]])
        writers["rivers"].add(shapely.polygons([ring]), name=river.name, kind="river")
        writers["river_banks"].add(
            shapely.linestrings([np.column_stack([xs, s]), np.column_stack([xs, n])]),
            name=river.name,
            side=np.array(["south", "north"], dtype=object),
            kind="bank",
        )
    strips = list(riverside_strips(plan))
    if not strips:
        return
    rings = [ring for _, ring in strips]
    polys = shapely.polygons(
        shapely.linearrings(
            np.concatenate(rings), indices=np.repeat(np.arange(len(rings)), [len(r) for r in rings])
        )
    )
    area = np.round(shapely.area(polys), 1)
    names = np.array([f"{river.name}滨河公园" for river, _ in strips], dtype=object)
    writers["green"].add(
        polys, id=ids.take("green", len(strips)), name=names, kind=bld.green_kind(area), area_m2=area
    )
    writers["landuse"].add(polys, id=ids.take("landuse", len(strips)), landuse="green", name=names)


def _write_ifc(out, seed, targets, nets, service_nodes, progress) -> list[dict]:
    """The IFC buildings; the renewed block's service pipes meet the service nodes of the networks `nets`,
    the water pipe bent over or under the lines it crosses (networks.service_bends); the drains, laid deeper,
    keep their fall and pass under them."""
    files = []
    for stem, role, scenario, overrides in IFC_BUILDINGS:
        t = targets.get(role)
        if t is None:
            continue
        laterals = []
        if scenario == "renewed":
            for utility, _, dn, material in LATERALS:
                node = service_nodes[utility]
                z = (
                    node["z"] if utility == "water" else node["z"] + dn / 2000.0
                )  # lateral invert on the manhole's
                laterals.append(Lateral(utility, node["id"], (node["x"], node["y"], z), dn, material))
        model = BuildingModel(
            key=stem,
            name=str(t["name"]),
            use=str(t["use"]),
            building_id=str(t["id"]),
            rect=tuple(float(v) for v in t["rect"]),
            floors=int(t["floors"]),
            storey_h=bld.STOREY_H[str(t["use"])],
            year=int(overrides.get("year", t["year"])),
            structure=str(t["structure"]),
            ground_z=float(t["ground_z"]),
            scenario=scenario,
            colour=overrides.get("colour"),
            wall=overrides.get("wall"),
            window=overrides.get("window"),
            laterals=laterals,
        )
        for lat in laterals:
            if lat.utility not in GRAVITY:
                riser = model.to_world(*model.riser(lat))
                lat.bends = tuple(service_bends(nets, lat.utility, riser, model.ground_z,
                                                service_nodes[lat.utility]["k"], lat.diameter_mm))
        path = out / "ifc" / f"{stem}.ifc"
        counts = write_ifc(model, path, seed)
        entry = ImportEntry("ifc", f"ifc/{stem}.ifc", {"dataset": f"sample-ifc-{stem.replace('_', '-')}"}
                            | ({"scenario": renewal.SCENARIO} if scenario == "renewed" else {}))
        files.append(
            {
                "path": f"ifc/{stem}.ifc",
                "kind": "ifc",
                "building_id": model.building_id,
                "name": model.name,
                "use": model.use,
                "floors": model.floors,
                "build_year": model.year,
                "scenario": scenario,
                "service_nodes": [lat.node_id for lat in laterals],
                "counts": counts,
                "import": entry.as_json(),
                "command": entry.command,
            }
        )
        if progress:
            progress("ifc", len(files))
    return files


def dataset_of(layer: str) -> str:
    """The dataset a layer of the sample district is imported as (the pipes' also holds their nodes)."""
    return f"sample-{layer.replace('_', '-')}"


def _manifest(grid, plan, counts, lengths, ifc_files, targets, seconds) -> dict:
    layers = []
    for name, (gtype, fields) in FIELDS.items():
        layer = {"layer": name, "geometry": gtype, "count": counts[name], "fields": list(fields)}
        if name in IMPORT_AS:
            options = {"layer": name, **IMPORT_AS[name], "dataset": dataset_of(name)}
            entry = ImportEntry("gis", GPKG, options)
            layer.update({"import": entry.as_json(), "command": entry.command})
        else:  # the pipes import brings its nodes layer along (one network, one dataset)
            layer.update({"import": None, "command": None, "imported_with": "pipes"})
        layers.append(layer)
    compounds = [b for b in plan.blocks if b.compound_id]
    cx, cy = district_centre()
    return {
        "name": "驻马店市中心城区 (generated sample district)",
        "generator": "sample_models.district",
        "version": VERSION,
        "seed": grid.seed,
        "scale": grid.scale,
        "crs": CRS,
        "centre": {"lon": CENTRE_LONLAT[0], "lat": CENTRE_LONLAT[1], "x": round(cx, 3), "y": round(cy, 3)},
        "extent": list(grid.extent),
        "cells": [grid.ncx, grid.ncy],
        "files": [{"path": GPKG, "kind": "gpkg", "layers": layers}, *ifc_files],
        "counts": {
            **counts,
            "compounds_pre2000": sum(b.era == "old" for b in compounds),
            "ifc_buildings": len(ifc_files),
            "pipes_km": lengths,
            "pipes_km_total": round(sum(lengths.values()), 1),
        },
        "conventions": CONVENTIONS,
        "seconds": round(seconds, 1),
    }

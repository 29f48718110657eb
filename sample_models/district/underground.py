"""The planted-violations zone of the sample district (issue 13): a labelled test field (地下管线违规示例区)
just east of the district, with a building, an access road and a few short pipe runs that break the
clearance and cover rules in known ways, written to `underground.gpkg` next to district.gpkg:

- a sewer 1.0 m (outer wall) from a building wall, against 2.5 m (GB 50289-2016 Table 4.1.9);
- a gas main crossing a telecom duct 0.05 m apart, against 0.15 m (Table 4.1.14, second-hand);
- a water main with 0.30 m pipe-top cover under the carriageway, against 0.70 m (Table 4.1.1, second-hand);
- an adverse slope (倒坡): the middle segment of a three-segment sewer run rises 0.10 m downstream;
- a 3D clash: a heating main crossing a power duct at the same depth.

The street networks of the district lie in clean depth bands (networks.py) and break none of these rules,
so the checks find exactly these. The zone is far enough (ZONE_OFFSET) from the district that none of its
objects comes within any rule's distance of the district's. The manifest's `underground` entry lists the
zone polygon and every planted case with its rule and both objects (keys as stored: `pipe:ID`,
the building id); `load` imports the layers.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import shapely
import sqlalchemy as sa

from .layout import CRS, ground_z
from .writer import LayerWriter

GPKG = "underground.gpkg"
ZONE_OFFSET = 100.0  # m east of the district's eastern edge
ZONE_SIZE = (160.0, 100.0)  # m
ZONE_NAME = "地下管线违规示例区 (planted underground violations)"
ZONE_FIELDS = {"id": "str", "name": "str", "note": "str"}
# Pipes: id, utility, CJJ 61 code, shape, diameter or (width, height) in mm, from and to node (index
# into NODES), and each node's depth below ground to the invert (gravity) or axis (others).
NODES = {  # id: (utility, x, y in the zone, node type)
    "WSZN01": ("sewage", 0.0, 58.8, "manhole"), "WSZN02": ("sewage", 25.0, 58.8, "manhole"),
    "WSZN03": ("sewage", 50.0, 58.8, "manhole"), "WSZN04": ("sewage", 75.0, 58.8, "manhole"),
    "JSZN01": ("water", 60.0, 40.0, "valve"), "JSZN02": ("water", 110.0, 40.0, "valve"),
    "RQZN01": ("gas", 0.0, 10.0, "valve"), "RQZN02": ("gas", 50.0, 10.0, "valve"),
    "TXZN01": ("telecom", 25.0, 0.0, "manhole"), "TXZN02": ("telecom", 25.0, 20.0, "manhole"),
    "RLZN01": ("heat", 100.0, 10.0, "manhole"), "RLZN02": ("heat", 140.0, 10.0, "manhole"),
    "DLZN01": ("power", 120.0, 0.0, "manhole"), "DLZN02": ("power", 120.0, 20.0, "manhole"),
}
CODES = {"sewage": "WS", "water": "JS", "gas": "RQ", "telecom": "TX", "heat": "RL", "power": "DL"}
# id, from, to, shape, diameter_mm, width_mm, height_mm, material, pressure class
PIPES = [
    ("WSZ001", "WSZN01", "WSZN02", "circular", 400, 0, 0, "concrete", None),
    ("WSZ002", "WSZN02", "WSZN03", "circular", 400, 0, 0, "concrete", None),
    ("WSZ003", "WSZN03", "WSZN04", "circular", 400, 0, 0, "concrete", None),
    ("JSZ001", "JSZN01", "JSZN02", "circular", 300, 0, 0, "ductile iron", None),
    ("RQZ001", "RQZN01", "RQZN02", "circular", 200, 0, 0, "PE", "low"),
    ("TXZ001", "TXZN01", "TXZN02", "rectangular", 0, 700, 500, "concrete", None),
    ("RLZ001", "RLZN01", "RLZN02", "circular", 300, 0, 0, "steel", None),
    ("DLZ001", "DLZN01", "DLZN02", "rectangular", 0, 1000, 800, "concrete", None),
]
# The sewer run: invert 2.00 m below ground at its head, then changes of invert elevation per manhole:
# falling 0.05 m, rising 0.10 m (the adverse segment), falling 0.15 m.
SEWER_HEAD_DEPTH = 2.00
SEWER_INVERT_STEPS = {"WSZN02": -0.05, "WSZN03": 0.10, "WSZN04": -0.15}
BUILDING = ("BZ0001", (5.0, 60.0, 20.0, 75.0), 4, 12.0)  # id, box in the zone, floors, height
ROAD = ("RZ0001", ((-10.0, 40.0), (170.0, 40.0)), "local", 14.0)  # id, centre line, class, width


def zone_origin(extent) -> tuple[float, float]:
    x0, y0, x1, y1 = extent
    return x1 + ZONE_OFFSET, (y0 + y1) / 2 - ZONE_SIZE[1] / 2


def _axis_z(origin) -> dict[str, float]:
    """Elevation of each node: the inverts of the sewer run, and flat pressure pipes and ducts whose axes
    are set at their crossings (and the water main's at its cover)."""
    ox, oy = origin
    g = {k: float(ground_z(ox + x, oy + y)) for k, (_, x, y, _) in NODES.items()}
    z = {"WSZN01": g["WSZN01"] - SEWER_HEAD_DEPTH}
    for k, step in SEWER_INVERT_STEPS.items():
        z[k] = z[f"WSZN{int(k[-2:]) - 1:02d}"] + step
    gc = float(ground_z(ox + 25.0, oy + 10.0))  # gas over telecom: gas bottom 0.05 m above the duct's top
    z |= dict.fromkeys(("RQZN01", "RQZN02"), gc - 1.00)
    z |= dict.fromkeys(("TXZN01", "TXZN02"), gc - 1.00 - 0.10 - 0.05 - 0.25)
    gh = float(ground_z(ox + 120.0, oy + 10.0))  # heat and power at one depth: a clash
    z |= dict.fromkeys(("RLZN01", "RLZN02", "DLZN01", "DLZN02"), gh - 1.50)
    for k in ("JSZN01", "JSZN02"):  # DN300, top 0.30 m below ground at either end
        z[k] = g[k] - 0.30 - 0.15
    return z


def _write_network(path: Path, origin, fields: dict) -> None:
    ox, oy = origin
    z = _axis_z(origin)
    ids = list(NODES)
    xy = np.array([[ox + NODES[k][1], oy + NODES[k][2]] for k in ids])
    g = ground_z(xy[:, 0], xy[:, 1])
    zz = np.array([z[k] for k in ids])
    w = LayerWriter(path, "pipe_nodes", *fields["pipe_nodes"])
    w.add(shapely.points(xy), id=np.array(ids, object), utility=np.array([NODES[k][0] for k in ids], object),
          cjj_code=np.array([CODES[NODES[k][0]] for k in ids], object),
          node_type=np.array([NODES[k][3] for k in ids], object), depth=np.round(g - zz, 3), ground_z=g,
          invert_z=np.round(zz, 3), status=np.array([None] * len(ids), object))
    w.close()
    at = {k: n for n, k in enumerate(ids)}
    a = np.array([at[p[1]] for p in PIPES])
    b = np.array([at[p[2]] for p in PIPES])
    util = np.array([NODES[p[1]][0] for p in PIPES], object)
    gravity = util == "sewage"
    lines = shapely.linestrings(np.stack([np.column_stack([xy[a], zz[a]]), np.column_stack([xy[b], zz[b]])], 1))
    col = (lambda k: np.array([p[k] for p in PIPES], object))
    size = (lambda k: np.array([p[k] or np.nan for p in PIPES], float))
    w = LayerWriter(path, "pipes", *fields["pipes"])
    w.add(lines, id=col(0), utility=util, cjj_code=np.array([CODES[u] for u in util], object), shape=col(3),
          diameter_mm=size(4), width_mm=size(5), height_mm=size(6), material=col(7), install_year=2020,
          owner="示例 (sample)", pressure_class=col(8), start_depth=np.round(g[a] - zz[a], 3),
          end_depth=np.round(g[b] - zz[b], 3), start_invert=np.where(gravity, zz[a], np.nan),
          end_invert=np.where(gravity, zz[b], np.nan), from_node=col(1), to_node=col(2), ground_z_start=g[a],
          ground_z_end=g[b], length_m=np.round(np.linalg.norm(xy[b] - xy[a], axis=1), 2))
    w.close()


def _write_surface(path: Path, origin, fields: dict) -> None:
    """The zone polygon, its building and its access road."""
    ox, oy = origin
    w = LayerWriter(path, "zone", "Polygon", ZONE_FIELDS)
    w.add(np.array([shapely.box(ox - 20, oy - 10, ox + ZONE_SIZE[0] + 20, oy + ZONE_SIZE[1])]),
          id=np.array(["UZ001"], object), name=np.array([ZONE_NAME], object),
          note=np.array(["every rule break here is planted; see manifest.json 'underground'"], object))
    w.close()
    bid, (x0, y0, x1, y1), floors, height = BUILDING
    w = LayerWriter(path, "buildings", *fields["buildings"])
    w.add(np.array([shapely.box(ox + x0, oy + y0, ox + x1, oy + y1)]), id=np.array([bid], object),
          name=np.array(["示例建筑 (sample building)"], object), floors=floors, height_m=height,
          use=np.array(["office"], object), structure=np.array(["frame"], object), build_year=2015,
          compound=np.array([None], object), ground_z=float(ground_z(ox + x0, oy + y0)),
          ifc_file=np.array([None], object))
    w.close()
    rid, pts, cls, width = ROAD
    w = LayerWriter(path, "roads", *fields["roads"])
    w.add(np.array([shapely.linestrings([(ox + x, oy + y) for x, y in pts])]), id=np.array([rid], object),
          name=np.array(["示例区通道 (zone access road)"], object), road_class=np.array([cls], object), width_m=width)
    w.close()


def _case(rule: str, obj: str, related: str | None, measured: float, required: float, note: str) -> dict:
    return {"rule": rule, "object": obj, "related": related, "measured_m": measured, "required_m": required,
            "note": note}


PLANTED = [
    _case("building_clearance", "pipe:WSZ001", BUILDING[0], 1.0, 2.5,
          "sewer DN400 1.0 m from the building wall (GB 50289-2016 Table 4.1.9)"),
    _case("vertical_clearance", "pipe:RQZ001", "pipe:TXZ001", 0.05, 0.15,
          "gas main crossing a telecom duct 0.05 m apart (Table 4.1.14)"),
    _case("cover", "pipe:JSZ001", None, 0.30, 0.70, "water main DN300, top 0.30 m under the carriageway"),
    _case("clash_3d", "pipe:RLZ001", "pipe:DLZ001", -0.55, 0.0, "heating main through a power duct"),
]
ADVERSE = {"from": "node:WSZN01", "to": "node:WSZN04", "adverse": ["pipe:WSZ002"], "rise_m": 0.10}


def plant(out: str | Path, extent, fields: dict) -> dict:
    """Write underground.gpkg next to the district's GeoPackage; returns the manifest entry. fields: the
    district's layer fields (generator.FIELDS), so the layers import as the district's do."""
    out = Path(out)
    path = out / GPKG
    path.unlink(missing_ok=True)
    origin = zone_origin(extent)
    _write_surface(path, origin, fields)
    _write_network(path, origin, fields)
    ox, oy = origin
    return {"files": [GPKG], "crs": CRS, "zone": {"id": "UZ001", "name": ZONE_NAME,
                                                  "bbox": [ox - 20, oy - 10, ox + ZONE_SIZE[0] + 20, oy + ZONE_SIZE[1]]},
            "planted": PLANTED, "long_section": ADVERSE,
            "datasets": {"pipes": "sample-underground-pipes", "buildings": "sample-underground-buildings",
                         "roads": "sample-underground-roads"}}


def load(folder: str | Path, *, engine: sa.Engine | None = None) -> list:
    """Import the zone's road, building and pipes (after the district itself)."""
    from importers import gis

    path = Path(folder) / GPKG
    return [gis.import_file(path, layer="roads", kind="roads", dataset="sample-underground-roads", engine=engine),
            gis.import_file(path, layer="buildings", kind="buildings", height_field="height_m",
                            floors_field="floors", dataset="sample-underground-buildings", engine=engine),
            gis.import_file(path, layer="pipes", kind="pipes", dataset="sample-underground-pipes", engine=engine)]

"""What the underground analyses read: pipe segments with their sizes and heights, buildings and the
carriageway, as numpy columns and shapely arrays in the storage CRS.

Heights follow the network model: a segment's stored centreline is the pipe axis (3D), inverts are
elevations of the inside bottom, depths are ground minus invert, so the ground at an end is invert + depth.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import shapely
import sqlalchemy as sa

from cim_core.network.queries import CURRENT

from .rules import DATA, pressure_class

Box = tuple[float, float, float, float]


def _box_filter(column: str, bbox: Box | None) -> str:
    return f" and {column} && st_makeenvelope(:xmin, :ymin, :xmax, :ymax, :srid)" if bbox else ""


def _box_params(bbox: Box | None, srid: int) -> dict:
    return dict(zip(("xmin", "ymin", "xmax", "ymax"), bbox)) | {"srid": srid} if bbox else {"srid": srid}


def _floats(rows, key) -> np.ndarray:
    return np.array([np.nan if r[key] is None else r[key] for r in rows], float)


@dataclass(eq=False)
class Pipes:
    """Pipe segments as columns; sizes in metres (outer width and height, NaN unknown)."""
    id: np.ndarray
    key: np.ndarray
    utility: np.ndarray
    cjj_code: np.ndarray
    shape: np.ndarray
    diameter_mm: np.ndarray
    width: np.ndarray
    height: np.ndarray
    material: np.ndarray
    owner: np.ndarray
    pressure: np.ndarray
    from_node: np.ndarray
    to_node: np.ndarray
    invert: np.ndarray  # (n, 2) start, end
    ground: np.ndarray  # (n, 2)
    axes: np.ndarray  # shapely LineString Z

    def __len__(self) -> int:
        return len(self.id)

    @cached_property
    def lines(self) -> np.ndarray:
        """The axes in plan."""
        return shapely.force_2d(self.axes)

    @cached_property
    def bearing(self) -> np.ndarray:
        """Direction in plan from the first vertex to the last (radians)."""
        a = shapely.get_coordinates(shapely.get_point(self.lines, 0))
        b = shapely.get_coordinates(shapely.get_point(self.lines, -1))
        return np.arctan2(b[:, 1] - a[:, 1], b[:, 0] - a[:, 0])

    @property
    def half_width(self) -> np.ndarray:
        return np.nan_to_num(self.width) / 2

    @property
    def half_height(self) -> np.ndarray:
        return np.nan_to_num(self.height) / 2

    def side(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """The rule-matching view (utility, diameter in mm, pressure class) of segments `idx`."""
        return {"utility": self.utility[idx], "diameter": self.diameter_mm[idx], "pressure": self.pressure[idx]}

    def record(self, i: int) -> dict:
        return {"id": int(self.id[i]), "key": self.key[i], "utility": self.utility[i], "cjj_code": self.cjj_code[i],
                "diameter_mm": None if np.isnan(self.diameter_mm[i]) else float(self.diameter_mm[i]),
                "width_m": None if np.isnan(self.width[i]) else float(self.width[i]),
                "height_m": None if np.isnan(self.height[i]) else float(self.height[i]),
                "material": self.material[i], "owner": self.owner[i]}


PIPES_SQL = """
    select s.object_id as id, o.key, s.utility, s.cjj_code, s.shape, s.diameter_mm, s.width_mm, s.height_mm,
           s.material, s.owner, s.pressure_class, s.from_node, s.to_node, s.start_invert, s.end_invert,
           s.start_depth, s.end_depth, st_asbinary(s.centerline) as wkb
    from pipe_segments s join city_objects o on o.id = s.object_id
    where {current}{box}{extra} order by s.object_id"""


def load_pipes(conn: sa.Connection, *, bbox: Box | None = None, srid: int, where: str = "",
               params: dict | None = None) -> Pipes:
    """Current pipe segments (in a box, or matching an extra SQL condition on `s`)."""
    sql = PIPES_SQL.format(current=CURRENT, box=_box_filter("s.centerline", bbox),
                             extra=f" and {where}" if where else "")
    rows = conn.execute(sa.text(sql), _box_params(bbox, srid) | (params or {})).mappings().all()
    dia = _floats(rows, "diameter_mm")
    rect = np.array([r["shape"] == "rectangular" for r in rows], bool)
    width = np.where(rect, _floats(rows, "width_mm"), dia) / 1000
    height = np.where(rect, _floats(rows, "height_mm"), dia) / 1000
    invert = np.column_stack([_floats(rows, "start_invert"), _floats(rows, "end_invert")]).reshape(-1, 2)
    depth = np.column_stack([_floats(rows, "start_depth"), _floats(rows, "end_depth")]).reshape(-1, 2)
    obj = (lambda k: np.array([r[k] for r in rows], object))
    return Pipes(
        id=np.array([r["id"] for r in rows], np.int64), key=obj("key"), utility=obj("utility").astype(str),
        cjj_code=obj("cjj_code"), shape=obj("shape"), diameter_mm=np.where(rect, np.fmax(
            _floats(rows, "width_mm"), _floats(rows, "height_mm")), dia), width=width, height=height,
        material=obj("material"), owner=obj("owner"),
        pressure=np.array([pressure_class(r["pressure_class"]) for r in rows], dtype=str).reshape(-1),
        from_node=np.array([r["from_node"] or -1 for r in rows], np.int64),
        to_node=np.array([r["to_node"] or -1 for r in rows], np.int64),
        invert=invert, ground=invert + depth,
        axes=shapely.from_wkb(np.array([bytes(r["wkb"]) for r in rows], object)).reshape(-1))


def axis_z(pipes: Pipes, idx: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Elevation of the axes of segments `idx` at plan points (shapely) on or near them."""
    if not len(idx):
        return np.empty(0)
    along = shapely.line_locate_point(pipes.lines[idx], points)
    return shapely.get_coordinates(shapely.line_interpolate_point(pipes.axes[idx], along),
                                   include_z=True)[:, 2]


def ground_at(pipes: Pipes, idx: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Ground elevation at plan points along segments `idx`, between the ends' grounds."""
    if not len(idx):
        return np.empty(0)
    t = shapely.line_locate_point(pipes.lines[idx], points, normalized=True)
    g = pipes.ground[idx]
    return g[:, 0] + (g[:, 1] - g[:, 0]) * np.nan_to_num(t)


def load_buildings(conn: sa.Connection, *, bbox: Box | None, srid: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, footprints) of current buildings."""
    rows = conn.execute(sa.text(
        "select o.id, st_asbinary(o.footprint) as wkb from city_objects o where o.class = 'building' "
        f"and o.footprint is not null and {CURRENT}"
        + _box_filter("o.footprint", bbox) + " order by o.id"),
        _box_params(bbox, srid)).all()
    geoms = shapely.from_wkb(np.array([bytes(r.wkb) for r in rows], object)).reshape(-1)
    return np.array([r.id for r in rows], np.int64), shapely.force_2d(geoms)


def _road_widths() -> dict[str, tuple[float, float]]:
    with open(DATA / "roads.csv", encoding="utf-8") as f:
        return {r["road_class"]: (float(r["width_m"]), float(r["carriageway_share"])) for r in csv.DictReader(f)}


def carriageway(conn: sa.Connection, *, bbox: Box | None, srid: int):
    """The carriageway (one shapely geometry, or None): road polygons as given, road centre lines
    widened by their width (or their class's, data/roads.csv) times the carriageway share."""
    rows = conn.execute(sa.text(
        "select st_asbinary(o.footprint) as wkb, o.attributes ->> 'road_class' as cls, "
        "o.attributes ->> 'width_m' as width from city_objects o where o.class = 'road' "
        f"and o.footprint is not null and {CURRENT}"
        + _box_filter("o.footprint", bbox)), _box_params(bbox, srid)).all()
    if not rows:
        return None
    geoms = shapely.force_2d(shapely.from_wkb(np.array([bytes(r.wkb) for r in rows], object)).reshape(-1))
    table = _road_widths()
    default = table[""]
    half = np.array([(float(r.width) if r.width else table.get(r.cls, default)[0])
                     * table.get(r.cls, default)[1] / 2 for r in rows])
    polygonal = np.isin(shapely.get_type_id(geoms), (3, 6))
    areas = np.where(polygonal, geoms, shapely.buffer(geoms, half, cap_style="flat"))
    return shapely.union_all(areas)

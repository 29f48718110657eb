"""What the underground analyses read: pipe segments with their sizes and heights, buildings and the
carriageway, as numpy columns and shapely arrays in the storage CRS.

Heights follow the network model: a segment's stored centreline is the pipe axis (3D), inverts are
elevations of the inside bottom, depths are ground minus invert, so the ground at an end is invert + depth.
"""
from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import cached_property

import numpy as np
import shapely
import sqlalchemy as sa

from cim_core.network.queries import CURRENT

from .rules import DATA, pressure_class

Box = tuple[float, float, float, float]


def _box_filter(column: str, boxes: Sequence[Box]) -> str:
    """The column's bounding box meets every box (GiST index): each box one condition, as a geometry
    may meet two boxes without meeting their intersection."""
    return "".join(f" and {column} && st_makeenvelope(:x0_{k}, :y0_{k}, :x1_{k}, :y1_{k}, :srid)"
                   for k in range(len(boxes)))


def _box_params(boxes: Sequence[Box], srid: int) -> dict:
    out: dict = {"srid": srid}
    for k, box in enumerate(boxes):
        out |= dict(zip((f"x0_{k}", f"y0_{k}", f"x1_{k}", f"y1_{k}"), map(float, box)))
    return out


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
    def ends(self) -> np.ndarray:
        """(n, 2, 2): the first and the last vertex in plan."""
        return np.stack([shapely.get_coordinates(shapely.get_point(self.lines, e)) for e in (0, -1)], axis=1)

    @cached_property
    def bearing(self) -> np.ndarray:
        """Direction in plan from the first vertex to the last (radians)."""
        d = self.ends[:, 1] - self.ends[:, 0]
        return np.arctan2(d[:, 1], d[:, 0])

    @property
    def half_width(self) -> np.ndarray:
        return np.nan_to_num(self.width) / 2

    @property
    def half_height(self) -> np.ndarray:
        return np.nan_to_num(self.height) / 2

    @cached_property
    def bounds(self) -> np.ndarray:
        """(n, 4) xmin, ymin, xmax, ymax in plan."""
        return shapely.bounds(self.axes)

    def subset(self, idx: np.ndarray) -> Pipes:
        return Pipes(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

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


def load_pipes(conn: sa.Connection, *, boxes: Sequence[Box] = (), srid: int, where: str = "",
               params: dict | None = None) -> Pipes:
    """Current pipe segments (meeting every box, and matching an extra SQL condition on `s`)."""
    sql = PIPES_SQL.format(current=CURRENT, box=_box_filter("s.centerline", boxes),
                             extra=f" and {where}" if where else "")
    result = conn.execute(sa.text(sql), _box_params(boxes, srid) | (params or {}))
    col = dict(zip(result.keys(), zip(*result.all()))) or dict.fromkeys(result.keys(), ())  # column-wise

    def floats(k):
        return np.array(col[k], float).reshape(-1)  # None -> NaN

    def objects(k):
        return np.array(col[k] + (None,), object)[:-1]  # one object per row, whatever the values

    dia = floats("diameter_mm")
    rect = objects("shape") == "rectangular"
    width = np.where(rect, floats("width_mm"), dia) / 1000
    height = np.where(rect, floats("height_mm"), dia) / 1000
    invert = np.column_stack([floats("start_invert"), floats("end_invert")])
    depth = np.column_stack([floats("start_depth"), floats("end_depth")])
    return Pipes(
        id=np.array(col["id"], np.int64).reshape(-1), key=objects("key"), utility=objects("utility").astype(str),
        cjj_code=objects("cjj_code"), shape=objects("shape"),
        diameter_mm=np.where(rect, np.fmax(floats("width_mm"), floats("height_mm")), dia), width=width,
        height=height, material=objects("material"), owner=objects("owner"),
        pressure=np.array([pressure_class(v) for v in col["pressure_class"]], dtype=str).reshape(-1),
        from_node=np.array([v or -1 for v in col["from_node"]], np.int64).reshape(-1),
        to_node=np.array([v or -1 for v in col["to_node"]], np.int64).reshape(-1),
        invert=invert, ground=invert + depth,
        axes=shapely.from_wkb(objects("wkb")))


EXTENT_SQL = """
    select st_xmin(t.e), st_ymin(t.e), st_xmax(t.e), st_ymax(t.e), t.hw, (
               select count(*) from city_objects o where o.class = 'building' and o.footprint is not null
               and {current}{building_box}) as buildings
    from (select st_extent(s.centerline) as e,
                 coalesce(max(case when s.shape = 'rectangular' then s.width_mm else s.diameter_mm end), 0) / 2000.0
                 as hw
          from pipe_segments s join city_objects o on o.id = s.object_id where {current}{box}{extra}) t"""


def network_extent(conn: sa.Connection, *, boxes: Sequence[Box], srid: int, where: str = "",
                   params: dict | None = None) -> tuple[Box | None, float, int]:
    """What load_pipes with these arguments would load: its extent in plan (None when empty) and the
    largest half outer width; and the number of current buildings meeting the boxes."""
    sql = EXTENT_SQL.format(current=CURRENT, box=_box_filter("s.centerline", boxes),
                            building_box=_box_filter("o.footprint", boxes), extra=f" and {where}" if where else "")
    *extent, half_width, buildings = conn.execute(sa.text(sql), _box_params(boxes, srid) | (params or {})).one()
    return (tuple(extent) if extent[0] is not None else None), float(half_width), int(buildings)


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


def load_buildings(conn: sa.Connection, *, boxes: Sequence[Box], srid: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, footprints) of current buildings meeting every box."""
    rows = conn.execute(sa.text(
        "select o.id, st_asbinary(o.footprint) as wkb from city_objects o where o.class = 'building' "
        f"and o.footprint is not null and {CURRENT}"
        + _box_filter("o.footprint", boxes) + " order by o.id"),
        _box_params(boxes, srid)).all()
    geoms = shapely.from_wkb(np.array([bytes(r.wkb) for r in rows], object)).reshape(-1)
    return np.array([r.id for r in rows], np.int64), shapely.force_2d(geoms)


def _road_widths() -> dict[str, tuple[float, float]]:
    with open(DATA / "roads.csv", encoding="utf-8") as f:
        return {r["road_class"]: (float(r["width_m"]), float(r["carriageway_share"])) for r in csv.DictReader(f)}


ROADS_SQL = ("select {what} from city_objects o where o.class = 'road' and o.footprint is not null and "
             f"{CURRENT}")


def _half_carriageways(rows) -> np.ndarray:
    """Half the carriageway width of roads (rows with cls, width): their width or their class's
    (data/roads.csv), times the class's carriageway share."""
    table = _road_widths()
    default = table[""]
    return np.array([(float(r.width) if r.width else table.get(r.cls, default)[0]) * table.get(r.cls, default)[1] / 2
                     for r in rows], float)


def carriageway_reach(conn: sa.Connection) -> float:
    """The widest half carriageway of the road centre lines: how far from its line a road's area reaches."""
    rows = conn.execute(sa.text(ROADS_SQL.format(
        what="distinct o.attributes ->> 'road_class' as cls, o.attributes ->> 'width_m' as width"))).all()
    return float(_half_carriageways(rows).max(initial=0.0))


def carriageway(conn: sa.Connection, *, boxes: Sequence[Box], srid: int) -> np.ndarray:
    """The carriageway areas (shapely polygons) meeting every box: road polygons as given, road centre
    lines widened by their half carriageway (_half_carriageways)."""
    rows = conn.execute(sa.text(ROADS_SQL.format(
        what="st_asbinary(o.footprint) as wkb, o.attributes ->> 'road_class' as cls, "
             "o.attributes ->> 'width_m' as width") + _box_filter("o.footprint", boxes)),
        _box_params(boxes, srid)).all()
    if not rows:
        return np.empty(0, object)
    geoms = shapely.force_2d(shapely.from_wkb(np.array([bytes(r.wkb) for r in rows], object)).reshape(-1))
    polygonal = np.isin(shapely.get_type_id(geoms), (3, 6))
    return np.where(polygonal, geoms, shapely.buffer(geoms, _half_carriageways(rows), cap_style="flat"))

"""Features of the three tile layers, read from the CIM database.

A feature is what a client can pick: one row of a tile's property table. Each carries its full mesh
(leaf content) and what the generaliser needs for parent tiles (a footprint, a building, a diameter).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
import sqlalchemy as sa

from cim_core import mesh as kernels
from cim_core import scenarios
from cim_core import sweep
from cim_core.settings import get_settings

LAYERS = ("buildings", "bim", "pipes", "ground")
# Which object classes feed which layer: a change of these classes invalidates the layer's tiles.
LAYER_CLASSES = {
    "buildings": {"building", "building_part"},
    "bim": {"element", "storey", "building"},
    "pipes": {"pipe_segment", "pipe_node"},
    "ground": {"road", "water", "green", "landuse"},  # the city's map on the ground: services/tiles/ground.py
}
BUILDING_COLOR = (0.86, 0.84, 0.80, 1.0)
LOD1_COLORS = [tuple(m["color"]) for m in kernels.LOD1_MATERIALS]
ELEMENT_COLOR = (0.75, 0.75, 0.75, 1.0)
# Pipes and nodes without a stored mesh get one: sides of the tube, radius of a node's shaft.
TUBE_SIDES = 8
NODE_RADIUS = {"manhole": 0.5, "tank": 2.0, "reservoir": 3.0}
NODE_RADIUS_DEFAULT = 0.3
DEFAULT_DIAMETER_MM = get_settings().default_pipe_diameter_mm   # a segment without a stored size
DEFAULT_NODE_DEPTH = 1.5



@dataclass
class Feature:
    id: int
    cls: str
    name: str | None
    vertices: np.ndarray          # (N, 3) storage CRS, stored heights
    faces: np.ndarray             # (M, 3)
    face_colors: np.ndarray       # (M,) index into colors
    colors: list[tuple]           # RGBA 0..1
    props: dict[str, Any] = field(default_factory=dict)
    footprint: Any = None         # shapely polygon, for generalised blocks
    zmin: float = 0.0
    zmax: float = 0.0
    size: float = 0.0             # metres: how much is lost when the feature is left out of a parent tile
    group: int | None = None      # bim: the building the element belongs to
    centerline: np.ndarray | None = None  # pipes: the axis, for the simplified tubes of parent tiles
    block: dict | None = None     # bim: the element's building (id, name, uid, footprint, zmin, zmax)
    rect: bool = False            # pipes: a rectangular section

    @property
    def triangles(self) -> int:
        return len(self.faces)


def _mesh(vbytes, fbytes):
    return (np.frombuffer(vbytes, "<f8").reshape(-1, 3), np.frombuffer(fbytes, "<u4").reshape(-1, 3).astype(np.int64))


def prisms(footprints, z0, z1) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """LOD1 solids of many footprints at once (cim_core.mesh): (vertices, faces, face index into LOD1_COLORS).

    An unusable footprint (empty, no area) gives empty arrays.
    """
    fps = shapely.make_valid(np.asarray(footprints, dtype=object))
    ok = np.isin(shapely.get_type_id(fps), (3, 6)) & ~shapely.is_empty(fps) & (shapely.area(fps) > 0)
    out = [(np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros(0, np.int64))] * len(fps)
    if ok.any():
        z0, z1 = np.broadcast_to(np.asarray(z0, float), ok.shape), np.broadcast_to(np.asarray(z1, float), ok.shape)
        for i, m in zip(np.flatnonzero(ok), kernels.extrude(fps[ok], z0[ok], z1[ok]).meshes()):
            out[i] = (m.vertices, m.faces.astype(np.int64), m.face_materials.astype(np.int64))
    return out


def tube_meshes(axes: list[np.ndarray], half_w: list[float], half_h: list[float], rect: list[bool],
                sides: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Closed tubes along many axes (cim_core.sweep): circles of `sides`, or boxes for rectangular sections."""
    profiles = [sweep.rect_profile(2 * w, 2 * h) if r else sweep.circle_profile(w, sides)
                for w, h, r in zip(half_w, half_h, rect)]
    return [(m.vertices, m.faces.astype(np.int64)) for m in sweep.sweep_many(axes, profiles)]


def _geom(wkb):
    return shapely.from_wkb(bytes(wkb)) if wkb is not None else None


def _num(v):
    try:
        return float(v) if v is not None and v != "" else None
    except (TypeError, ValueError):
        return None


def _first(attrs: dict, *keys):
    for k in keys:
        if attrs.get(k) not in (None, ""):
            return attrs[k]
    return None


def _materials(fm_bytes, materials, n_faces: int, default=ELEMENT_COLOR):
    colors = [tuple(float(c) for c in (m.get("color") or default)) for m in (materials or [])] or [default]
    if fm_bytes is None:
        return np.zeros(n_faces, np.int64), colors
    fm = np.frombuffer(fm_bytes, "<u2").astype(np.int64)
    return np.where(fm < len(colors), fm, 0), colors


def load_buildings(conn: sa.Connection, scenario_id: int | None = None) -> list[Feature]:
    """Buildings and parts with a mesh, and meshless buildings (IFC, footprint-only GIS) as LOD1 blocks.

    A meshless building whose parts have meshes (CityJSON LoD2) is drawn by its parts alone.
    """
    cur = scenarios.current(scenario_id)
    rows = conn.execute(sa.text(f"""
        select o.id, o.class, o.name, o.attributes, o.zmin, o.zmax, o.mesh_vertices, o.mesh_faces,
               o.mesh_face_materials, o.materials, st_asbinary(o.footprint) fp, p.attributes pattrs
        from city_objects o left join city_objects p on p.id = o.parent_id
        where o.class in ('building', 'building_part') and {cur}
          and (o.mesh_vertices is not null
               or (st_dimension(o.footprint) = 2 and o.zmin is not null and not exists (
                   select 1 from city_objects c where c.parent_id = o.id and c.class = 'building_part'
                   and c.mesh_vertices is not null)))
        order by o.id""")).all()
    footprints = [_geom(r.fp) for r in rows]
    # meshless buildings (IFC buildings, footprint-only GIS) become LOD1 blocks, all in one batch
    blocks = [i for i, r in enumerate(rows) if r.mesh_vertices is None]
    default = get_settings().default_building_height  # a meshless building with neither zmax nor height
    tops = [rows[i].zmax if rows[i].zmax is not None and rows[i].zmax > rows[i].zmin
            else rows[i].zmin + (_num((rows[i].attributes or {}).get("height")) or default) for i in blocks]
    solids = dict(zip(blocks, prisms([footprints[i] for i in blocks], [rows[i].zmin for i in blocks], tops)))
    out = []
    for i, r in enumerate(rows):
        attrs = r.attributes or {}
        inherited = {**(r.pattrs or {}), **attrs}  # a part without its own use/year takes its building's
        fp = footprints[i]
        if r.mesh_vertices is not None:
            v, f = _mesh(r.mesh_vertices, r.mesh_faces)
            fc, colors = _materials(r.mesh_face_materials, r.materials, len(f), BUILDING_COLOR)
        else:
            (v, f, fc), colors = solids[i], LOD1_COLORS
        if len(f) == 0:
            continue
        zmin, zmax = float(v[:, 2].min()), float(v[:, 2].max())
        if fp is None or fp.geom_type not in ("Polygon", "MultiPolygon"):
            fp = shapely.convex_hull(shapely.multipoints(v[:, :2]))
        height = _num(attrs.get("height")) or (zmax - zmin)
        out.append(Feature(
            id=r.id, cls=r[1], name=r.name, vertices=v, faces=f, face_colors=fc, colors=colors,
            props={"height": height, "floors": _num(_first(inherited, "floors", "storeys", "storeysAboveGround")),
                   "use": _first(inherited, "use", "function", "usage"),
                   "build_year": _num(_first(inherited, "build_year", "year", "yearOfConstruction",
                                             "construction_year"))},
            footprint=fp, zmin=zmin, zmax=zmax,
            size=max(height, float(np.ptp(v[:, 0])), float(np.ptp(v[:, 1]))),
        ))
    return out


def load_bim(conn: sa.Connection, scenario_id: int | None = None) -> list[Feature]:
    """IFC elements with their meshes and surface colours; spaces are left out (they hide the rooms)."""
    cur = scenarios.current(scenario_id)
    tree = {r.id: r for r in conn.execute(sa.text(
        f"select o.id, o.parent_id, o.class, o.name from city_objects o "
        f"where o.class in ('building', 'storey', 'space', 'element', 'site') and {cur}")).all()}
    blocks = {r.id: r for r in conn.execute(sa.text(
        f"select o.id, o.name, o.uid, st_asbinary(o.footprint) fp, o.zmin, o.zmax from city_objects o "
        f"where o.class = 'building' and st_dimension(o.footprint) = 2 and {cur}")).all()}
    rows = conn.execute(sa.text(f"""
        select o.id, o.name, o.uid, o.ifc_class, o.attributes, o.mesh_vertices, o.mesh_faces,
               o.mesh_face_materials, o.materials
        from city_objects o where o.class = 'element' and o.mesh_vertices is not null and {cur}
        order by o.id""")).all()
    out = []
    for r in rows:
        v, f = _mesh(r.mesh_vertices, r.mesh_faces)
        if len(f) == 0:
            continue
        fc, colors = _materials(r.mesh_face_materials, r.materials, len(f))
        storey = building = None
        p, seen = tree[r.id].parent_id if r.id in tree else None, 0
        while p is not None and p in tree and seen < 32:  # element -> (space/element) -> storey -> building
            node = tree[p]
            if node[2] == "storey" and storey is None:
                storey = node
            if node[2] == "building":
                building = node
                break
            p, seen = node.parent_id, seen + 1
        ext = np.ptp(v, axis=0)
        out.append(Feature(
            id=r.id, cls="element", name=r.name, vertices=v, faces=f, face_colors=fc, colors=colors,
            props={"ifc_class": r.ifc_class, "uid": r.uid,
                   "storey_id": storey.id if storey is not None else None,
                   "storey_name": storey.name if storey is not None else None,
                   "building_id": building.id if building is not None else None},
            zmin=float(v[:, 2].min()), zmax=float(v[:, 2].max()), size=float(ext.max()),
            group=building.id if building is not None else None,
        ))
    # LOD1 blocks of the BIM buildings stand in for their elements in parent tiles.
    shapes = {}
    for f in out:
        b = blocks.get(f.group)
        if b is None:
            continue
        if b.id not in shapes:
            shapes[b.id] = {"id": b.id, "name": b.name, "uid": b.uid, "footprint": _geom(b.fp), "zmin": b.zmin,
                            "zmax": b.zmax}
        f.block = shapes[b.id]
    # a building without stored heights spans its elements
    span: dict[int, list[float]] = {}
    for f in out:
        if f.block is not None:
            s = span.setdefault(f.block["id"], [f.zmin, f.zmax])
            s[0], s[1] = min(s[0], f.zmin), max(s[1], f.zmax)
    for bid, blk in shapes.items():
        if blk["zmin"] is None:
            blk["zmin"] = span[bid][0]
        if blk["zmax"] is None or blk["zmax"] <= blk["zmin"]:
            blk["zmax"] = span[bid][1]
    return out


def load_pipes(conn: sa.Connection, scenario_id: int | None = None) -> list[Feature]:
    """Pipe segments and nodes of every utility, coloured by pipe_categories (CJJ 61)."""
    cur = scenarios.current(scenario_id)
    colors = {r.utility: tuple(c / 255 for c in r.color) + (1.0,) for r in conn.execute(sa.text(
        "select utility, color from pipe_categories")).all()}
    segs = conn.execute(sa.text(f"""
        select o.id, o.name, o.mesh_vertices, o.mesh_faces, s.utility, s.diameter_mm, s.width_mm, s.height_mm,
               s.shape, s.material, s.install_year, s.start_depth, s.end_depth,
               st_asbinary(s.centerline) cl
        from city_objects o join pipe_segments s on s.object_id = o.id where {cur} order by o.id""")).all()
    nodes = conn.execute(sa.text(f"""
        select o.id, o.name, o.mesh_vertices, o.mesh_faces, n.utility, n.node_type, n.depth, n.ground_z,
               n.invert_z, st_x(n.geom) x, st_y(n.geom) y, st_z(n.geom) z
        from city_objects o join pipe_nodes n on n.object_id = o.id where {cur} order by o.id""")).all()
    axes = [shapely.get_coordinates(_geom(r.cl), include_z=True) for r in segs]
    rect = [bool(r.shape == "rectangular" and r.width_mm and r.height_mm) for r in segs]
    half_w = [(r.width_mm if q else (r.diameter_mm or DEFAULT_DIAMETER_MM)) / 2000 for r, q in zip(segs, rect)]
    half_h = [(r.height_mm if q else (r.diameter_mm or DEFAULT_DIAMETER_MM)) / 2000 for r, q in zip(segs, rect)]
    bare = [i for i, r in enumerate(segs) if r.mesh_vertices is None]
    swept = dict(zip(bare, tube_meshes([axes[i] for i in bare], [half_w[i] for i in bare],
                                       [half_h[i] for i in bare], [rect[i] for i in bare], TUBE_SIDES)))
    out = []
    for i, r in enumerate(segs):
        v, f = _mesh(r.mesh_vertices, r.mesh_faces) if r.mesh_vertices is not None else swept[i]
        if len(f) == 0:
            continue
        depths = [d for d in (r.start_depth, r.end_depth) if d is not None]
        diameter = r.diameter_mm if r.diameter_mm is not None else (max(r.width_mm or 0, r.height_mm or 0) or None)
        out.append(Feature(
            id=r.id, cls="pipe_segment", name=r.name, vertices=v, faces=f,
            face_colors=np.zeros(len(f), np.int64), colors=[colors.get(r.utility, colors["unknown"])],
            props={"utility": r.utility, "diameter_mm": diameter, "material": r.material,
                   "install_year": r.install_year, "depth": float(np.mean(depths)) if depths else None,
                   "node_type": None},
            zmin=float(v[:, 2].min()), zmax=float(v[:, 2].max()),
            # a pipe's visible size across is its diameter (or section), however long it runs
            size=2 * max(half_w[i], half_h[i]), centerline=axes[i], rect=rect[i],
        ))
    for r in nodes:
        if r.mesh_vertices is not None:
            v, f = _mesh(r.mesh_vertices, r.mesh_faces)
        else:
            ground = r.ground_z if r.ground_z is not None else r.z
            bottom = r.invert_z if r.invert_z is not None else ground - (r.depth or DEFAULT_NODE_DEPTH)
            m = sweep.vertical_cylinder(r.x, r.y, min(bottom, ground - 0.1), ground,
                                        NODE_RADIUS.get(r.node_type, NODE_RADIUS_DEFAULT), TUBE_SIDES)
            v, f = m.vertices, m.faces.astype(np.int64)
        if len(f) == 0:
            continue
        out.append(Feature(
            id=r.id, cls="pipe_node", name=r.name, vertices=v, faces=f,
            face_colors=np.zeros(len(f), np.int64), colors=[colors.get(r.utility, colors["unknown"])],
            props={"utility": r.utility, "diameter_mm": None, "material": None, "install_year": None,
                   "depth": r.depth, "node_type": r.node_type},
            zmin=float(v[:, 2].min()), zmax=float(v[:, 2].max()),
            size=float(np.ptp(v[:, :2], axis=0).max()),
        ))
    return out


def load_ground(conn: sa.Connection, scenario_id: int | None = None) -> list[Feature]:
    from .ground import load_ground as load  # ground.py builds on this module's Feature

    return load(conn, scenario_id)


LOADERS = {"buildings": load_buildings, "bim": load_bim, "pipes": load_pipes, "ground": load_ground}

"""Mesh kernels: triangulate many polygons and extrude many footprints to closed LOD1 solids at once.

Everything works on shapely's ragged arrays (one coordinate array for all rings of all geometries), so
the cost is a handful of numpy passes per batch. Convex single-ring polygons (most footprints) are fanned
in numpy; only concave ones or ones with holes go through mapbox-earcut, one C call each.
"""
from __future__ import annotations

from dataclasses import dataclass

import mapbox_earcut
import numpy as np
import shapely

from .model import Mesh

# Surface materials shared by every importer, so that roofs look alike whatever their source.
SURFACE_MATERIALS = {
    "RoofSurface": {"name": "RoofSurface", "color": [0.72, 0.29, 0.22, 1.0]},
    "WallSurface": {"name": "WallSurface", "color": [0.91, 0.89, 0.84, 1.0]},
    "GroundSurface": {"name": "GroundSurface", "color": [0.45, 0.45, 0.42, 1.0]},
    "OtherSurface": {"name": "OtherSurface", "color": [0.75, 0.75, 0.75, 1.0]},
}
# Face part codes of `extrude`, in the order of LOD1_MATERIALS.
ROOF, WALL, FLOOR = 0, 1, 2
LOD1_MATERIALS = [SURFACE_MATERIALS["RoofSurface"], SURFACE_MATERIALS["WallSurface"],
                  SURFACE_MATERIALS["GroundSurface"]]


@dataclass
class Rings:
    """Polygonal geometries as flat arrays; rings have no closing vertex.

    xy: (N, 2) vertices; ring_offsets (R+1) into xy; poly_offsets (P+1) into rings;
    geom_offsets (G+1) into polygons.
    """
    xy: np.ndarray
    ring_offsets: np.ndarray
    poly_offsets: np.ndarray
    geom_offsets: np.ndarray

    @property
    def n_geoms(self) -> int:
        return len(self.geom_offsets) - 1

    def vertex_geom(self) -> np.ndarray:
        """The geometry index of every vertex."""
        ring_len = np.diff(self.ring_offsets)
        ring_poly = np.repeat(np.arange(len(self.poly_offsets) - 1), np.diff(self.poly_offsets))
        poly_geom = np.repeat(np.arange(self.n_geoms), np.diff(self.geom_offsets))
        return np.repeat(poly_geom[ring_poly], ring_len)


def rings(geoms) -> Rings:
    """Ragged arrays of valid, non-empty Polygons/MultiPolygons, outer rings counter-clockwise, holes clockwise.

    Repeated consecutive points are dropped, so no wall or triangle degenerates to zero length.
    """
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) == 0:
        z = np.zeros(1, np.int64)
        return Rings(np.zeros((0, 2)), z, z, z)
    kind, coords, offsets = shapely.to_ragged_array(geoms, include_z=False)
    if kind == shapely.GeometryType.POLYGON:
        ring_off, poly_off = offsets
        geom_off = np.arange(len(geoms) + 1)
    elif kind == shapely.GeometryType.MULTIPOLYGON:
        ring_off, poly_off, geom_off = offsets
    else:
        raise ValueError(f"polygons expected, got {kind.name}")
    ring_off = ring_off.astype(np.int64)
    n_rings = len(ring_off) - 1
    # drop closing vertices, then vertices equal to their (cyclic) predecessor
    keep = np.ones(len(coords), bool)
    keep[ring_off[1:] - 1] = False
    xy = coords[keep]
    ring_off = ring_off - np.arange(n_rings + 1)
    ring_id = np.repeat(np.arange(n_rings), np.diff(ring_off))
    prv = np.arange(-1, len(xy) - 1)
    prv[ring_off[:-1]] = ring_off[1:] - 1
    dup = (xy == xy[prv]).all(axis=1)
    if dup.any():
        xy, ring_id = xy[~dup], ring_id[~dup]
        ring_off = np.zeros(n_rings + 1, np.int64)
        np.cumsum(np.bincount(ring_id, minlength=n_rings), out=ring_off[1:])
    # orientation by the shoelace sum, relative to each ring's first vertex for precision
    start = ring_off[:-1]
    rel = xy - xy[start][ring_id]
    nxt = _ring_next(ring_off, len(xy))
    area = np.bincount(ring_id, _cross2(rel, rel[nxt]), minlength=n_rings)
    outer = np.zeros(n_rings, bool)
    outer[poly_off[:-1]] = True
    flip = np.where(outer, area < 0, area > 0)
    if flip.any():
        idx = np.arange(len(xy))
        f = flip[ring_id]
        idx[f] = (start + ring_off[1:] - 1)[ring_id[f]] - idx[f]
        xy = xy[idx]
    return Rings(np.ascontiguousarray(xy), ring_off, poly_off.astype(np.int64), np.asarray(geom_off, np.int64))


def _cross2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]


def _ring_next(ring_off: np.ndarray, n: int) -> np.ndarray:
    """Index of the next vertex around its ring, for every vertex."""
    nxt = np.arange(1, n + 1)
    nxt[ring_off[1:] - 1] = ring_off[:-1]
    return nxt


def cap_triangles(r: Rings) -> tuple[np.ndarray, np.ndarray]:
    """Triangles (T, 3) over r.xy covering every polygon, counter-clockwise, and each one's polygon index."""
    xy, ring_off, poly_off = r.xy, r.ring_offsets, r.poly_offsets
    n_poly = len(poly_off) - 1
    if n_poly == 0:
        return np.zeros((0, 3), np.int64), np.zeros(0, np.int64)
    nxt = _ring_next(ring_off, len(xy))
    prv = np.empty_like(nxt)
    prv[nxt] = np.arange(len(xy))
    # Convex single-ring polygons: every corner turns left (outer rings are counter-clockwise).
    turn = _cross2(xy - xy[prv], xy[nxt] - xy)
    ring_min_turn = np.minimum.reduceat(turn, ring_off[:-1]) if len(xy) else turn
    rings_per_poly = np.diff(poly_off)
    first_ring = poly_off[:-1]
    convex = (rings_per_poly == 1) & (ring_min_turn[first_ring] > 0)

    tris, owner = [], []
    cp = np.flatnonzero(convex)
    if len(cp):
        start = ring_off[first_ring[cp]]
        count = ring_off[first_ring[cp] + 1] - start - 2
        total = int(count.sum())
        base = np.repeat(start, count)
        step = np.arange(total) - np.repeat(np.cumsum(count) - count, count) + 1
        tris.append(np.column_stack([base, base + step, base + step + 1]))
        owner.append(np.repeat(cp, count))
    concave = np.flatnonzero(~convex)
    if len(concave):
        # one earcut call per polygon: keep the Python loop free of numpy scalar indexing
        ring_start_of_poly = ring_off[np.repeat(first_ring, rings_per_poly)]
        rel_end = (ring_off[1:] - ring_start_of_poly).astype(np.uint32)
        a = poly_off[concave].tolist()
        b = poly_off[concave + 1].tolist()
        starts = ring_off[poly_off[concave]].tolist()
        stops = ring_off[poly_off[concave + 1]].tolist()
        ear = mapbox_earcut.triangulate_float64
        out = [ear(xy[s:e], rel_end[i:j]) for s, e, i, j in zip(starts, stops, a, b)]
        count = np.fromiter(map(len, out), np.int64, len(out)) // 3
        tris.append(np.concatenate(out).astype(np.int64).reshape(-1, 3) + np.repeat(starts, count)[:, None])
        owner.append(np.repeat(concave, count))
    t = np.vstack(tris)
    owner = np.concatenate(owner)
    # earcut does not promise a winding: make every triangle counter-clockwise
    a, b, c = xy[t[:, 0]], xy[t[:, 1]], xy[t[:, 2]]
    flip = _cross2(b - a, c - a) < 0
    t[flip] = t[flip][:, ::-1]
    return t, owner


@dataclass
class MeshBatch:
    """Meshes of many geometries in shared arrays; faces index the batch's vertices, grouped by geometry."""
    vertices: np.ndarray  # (V, 3) float64
    faces: np.ndarray  # (F, 3) int64
    face_part: np.ndarray  # (F,) uint16 material index
    vertex_offsets: np.ndarray  # (G+1)
    face_offsets: np.ndarray  # (G+1)
    materials: list[dict]

    def meshes(self) -> list[Mesh]:
        """One Mesh per geometry (faces re-indexed locally)."""
        counts = np.diff(self.face_offsets)
        # convert once for the whole batch, so that Mesh() keeps views instead of copying each one
        local = (self.faces - np.repeat(self.vertex_offsets[:-1], counts)[:, None]).astype("<u4")
        vo, fo = self.vertex_offsets.tolist(), self.face_offsets.tolist()
        v, fp, mats = self.vertices, self.face_part, self.materials
        return [Mesh(v[vo[i]:vo[i + 1]], local[fo[i]:fo[i + 1]], fp[fo[i]:fo[i + 1]], mats)
                for i in range(len(vo) - 1)]


def _offsets(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def _caps_by_geom(r: Rings):
    """Cap triangles sorted by geometry, with each one's geometry, rank within it, and counts per geometry."""
    cap, cap_poly = cap_triangles(r)
    poly_geom = np.repeat(np.arange(r.n_geoms), np.diff(r.geom_offsets))
    cap_geom = poly_geom[cap_poly]
    order = np.argsort(cap_geom, kind="stable")
    cap, cap_geom = cap[order], cap_geom[order]
    ncap = np.bincount(cap_geom, minlength=r.n_geoms)
    rank = np.arange(len(cap)) - _offsets(ncap)[cap_geom]
    return cap, cap_geom, rank, ncap


def extrude(geoms, zbase, ztop) -> MeshBatch:
    """Closed, watertight LOD1 solids: each footprint extruded from zbase to ztop (scalars or per geometry).

    Walls, roof and floor share vertices (two per footprint vertex), every face points outward, holes
    stay holes. Requires ztop > zbase; geometries must be valid, non-empty Polygons/MultiPolygons.
    """
    r = rings(geoms)
    g = r.n_geoms
    zbase = np.broadcast_to(np.asarray(zbase, float), (g,))
    ztop = np.broadcast_to(np.asarray(ztop, float), (g,))
    n = len(r.xy)
    vgeom = r.vertex_geom()
    per_geom = np.bincount(vgeom, minlength=g)
    gv = _offsets(per_geom)  # first ring vertex of each geometry
    local = np.arange(n) - gv[vgeom]
    bot = np.arange(n) + gv[:-1][vgeom]  # each geometry: its bottom ring vertices, then its top ones
    top = bot + per_geom[vgeom]
    v = np.empty((2 * n, 3))
    v[bot, :2] = r.xy
    v[bot, 2] = zbase[vgeom]
    v[top, :2] = r.xy
    v[top, 2] = ztop[vgeom]

    cap, cap_geom, rank, ncap = _caps_by_geom(r)
    # per geometry: roofs, floors, then two wall triangles per ring vertex, placed without sorting
    fo = _offsets(2 * ncap + 2 * per_geom)
    faces = np.empty((fo[-1], 3), np.int64)
    part = np.empty(fo[-1], np.uint16)
    roof = fo[cap_geom] + rank
    floor = roof + ncap[cap_geom]
    faces[roof], part[roof] = top[cap], ROOF
    faces[floor], part[floor] = bot[cap][:, ::-1], FLOOR
    # outer rings run counter-clockwise and holes clockwise, so (a, b, b', a') faces outward
    nxt = _ring_next(r.ring_offsets, n)
    wall = fo[vgeom] + 2 * ncap[vgeom] + 2 * local
    faces[wall] = np.column_stack([bot, bot[nxt], top[nxt]])
    faces[wall + 1] = np.column_stack([bot, top[nxt], top])
    part[wall] = part[wall + 1] = WALL
    return MeshBatch(v, faces, part, 2 * gv, fo, LOD1_MATERIALS)


def flat(geoms, z, material: dict | None = None) -> MeshBatch:
    """Upward-facing triangulations of polygons at height z (scalar or per geometry)."""
    r = rings(geoms)
    g = r.n_geoms
    z = np.broadcast_to(np.asarray(z, float), (g,))
    vgeom = r.vertex_geom()
    cap, _, _, ncap = _caps_by_geom(r)
    return MeshBatch(np.column_stack([r.xy, z[vgeom]]), cap, np.zeros(len(cap), np.uint16),
                     _offsets(np.bincount(vgeom, minlength=g)), _offsets(ncap),
                     [material or SURFACE_MATERIALS["OtherSurface"]])


def newell_normal(p: np.ndarray) -> np.ndarray:
    """Unnormalised normal of a (roughly planar) 3D ring by Newell's method, robust to collinear points."""
    q = np.roll(p, -1, axis=0)
    return np.array([np.sum((p[:, 1] - q[:, 1]) * (p[:, 2] + q[:, 2])),
                     np.sum((p[:, 2] - q[:, 2]) * (p[:, 0] + q[:, 0])),
                     np.sum((p[:, 0] - q[:, 0]) * (p[:, 1] + q[:, 1]))])


def triangulate_surface(vertices: np.ndarray, ring_ends: np.ndarray) -> np.ndarray:
    """Triangles (local indices) of one planar 3D polygon with holes, wound like its outer ring.

    vertices: (N, 3) of all rings one after another; ring_ends: end index of each ring.
    """
    n = len(vertices)
    if len(ring_ends) == 1 and n == 3:
        return np.array([[0, 1, 2]], np.int64)
    normal = newell_normal(vertices[:ring_ends[0]])
    axis = int(np.argmax(np.abs(normal)))
    if normal[axis] == 0:
        return np.zeros((0, 3), np.int64)
    keep = [i for i in range(3) if i != axis]
    t = mapbox_earcut.triangulate_float64(np.ascontiguousarray(vertices[:, keep]),
                                          np.asarray(ring_ends, np.uint32)).astype(np.int64).reshape(-1, 3)
    if len(t):
        a, b, c = vertices[t[:, 0]], vertices[t[:, 1]], vertices[t[:, 2]]
        flip = np.cross(b - a, c - a) @ normal < 0
        t[flip] = t[flip][:, ::-1]
    return t

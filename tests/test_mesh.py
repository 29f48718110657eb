"""Mesh kernels: extruded footprints are closed solids facing outward; caps cover exactly the polygon."""
import numpy as np
import pytest
import shapely
import trimesh

from cim_core import mesh

COURTYARD = shapely.Polygon([(0, 0), (10, 0), (10, 10), (0, 10)], [[(3, 3), (3, 6), (6, 6), (6, 3)]])
L_SHAPE = shapely.Polygon([(0, 0), (10, 0), (10, 4), (4, 4), (4, 10), (0, 10)])
# clockwise outer ring, a repeated point and a collinear one: must still come out right
MESSY = shapely.Polygon([(0, 0), (0, 8), (0, 8), (5, 8), (5, 4), (5, 0)])
TWO_BLOCKS = shapely.MultiPolygon([shapely.box(20, 0, 25, 5), shapely.Polygon(
    [(30, 0), (40, 0), (40, 10), (30, 10)], [[(32, 2), (32, 4), (34, 4), (34, 2)], [(36, 6), (36, 8), (38, 8)]])])


def as_trimesh(m):
    return trimesh.Trimesh(m.vertices, m.faces.astype(np.int64), process=False)


@pytest.mark.parametrize("geom", [COURTYARD, L_SHAPE, MESSY, TWO_BLOCKS], ids=["hole", "concave", "messy", "multi"])
def test_extruded_solid_is_closed_outward_and_keeps_holes(geom):
    m = mesh.extrude([geom], 2.0, 14.5).meshes()[0]
    tm = as_trimesh(m)
    assert tm.is_watertight and tm.is_winding_consistent
    assert tm.volume == pytest.approx(geom.area * 12.5)  # positive: normals point outward
    assert (m.vertices[:, 2].min(), m.vertices[:, 2].max()) == (2.0, 14.5)
    # roof faces up, floor faces down, walls are vertical
    normals = tm.face_normals
    parts = m.face_materials
    assert np.allclose(normals[parts == mesh.ROOF], [0, 0, 1])
    assert np.allclose(normals[parts == mesh.FLOOR], [0, 0, -1])
    assert np.allclose(normals[parts == mesh.WALL][:, 2], 0)
    assert [mat["name"] for mat in m.materials] == ["RoofSurface", "WallSurface", "GroundSurface"]


def test_hole_stays_open_through_the_solid():
    m = mesh.extrude([COURTYARD], 0.0, 10.0).meshes()[0]
    tris = m.vertices[m.faces.astype(np.int64)]
    for part in (mesh.ROOF, mesh.FLOOR):
        cover = shapely.union_all(shapely.polygons(tris[m.face_materials == part][:, :, :2]))
        assert cover.symmetric_difference(COURTYARD).area == pytest.approx(0, abs=1e-9)
        assert not cover.intersects(shapely.Point(4.5, 4.5))
    # the courtyard's four walls face into the courtyard (away from the solid)
    tm = as_trimesh(m)
    centres = tm.triangles_center
    inner = (m.face_materials == mesh.WALL) & (np.abs(centres[:, 0] - 4.5) <= 1.5) & (np.abs(centres[:, 1] - 4.5) <= 1.5)
    assert inner.sum() == 8
    towards = np.einsum("ij,ij->i", tm.face_normals[inner], [4.5, 4.5, 0] - centres[inner] * [1, 1, 0])
    assert (towards > 0).all()


def test_batch_keeps_each_geometry_separate():
    geoms = [COURTYARD, L_SHAPE, TWO_BLOCKS, shapely.box(100, 100, 101, 101)]
    meshes = mesh.extrude(geoms, [0, 1, 2, 3], [10, 11, 12, 13]).meshes()
    for g, m, z in zip(geoms, meshes, [0, 1, 2, 3]):
        tm = as_trimesh(m)
        assert tm.is_watertight
        assert tm.volume == pytest.approx(g.area * 10)
        assert shapely.box(*g.bounds).equals(shapely.box(*m.vertices[:, :2].min(0), *m.vertices[:, :2].max(0)))
        assert m.vertices[:, 2].min() == z


def test_flat_caps_cover_the_polygon_facing_up():
    geoms = [COURTYARD, L_SHAPE, TWO_BLOCKS]
    for g, m in zip(geoms, mesh.flat(geoms, 3.0).meshes()):
        tm = as_trimesh(m)
        assert tm.area == pytest.approx(g.area)
        assert np.allclose(tm.face_normals, [0, 0, 1])
        tris = shapely.polygons(m.vertices[m.faces.astype(np.int64)][:, :, :2])
        assert shapely.union_all(tris).symmetric_difference(g).area == pytest.approx(0, abs=1e-9)


def test_surface_triangulation_follows_the_outer_ring_winding():
    # a vertical wall, 4 m x 3 m, with a window, given counter-clockwise as seen from +y
    outer = [[0, 5, 0], [0, 5, 3], [4, 5, 3], [4, 5, 0]]
    window = [[1, 5, 1], [3, 5, 1], [3, 5, 2], [1, 5, 2]]
    v = np.array(outer + window, float)
    t = mesh.triangulate_surface(v, np.array([4, 8]))
    tm = trimesh.Trimesh(v, t, process=False)
    assert tm.area == pytest.approx(12 - 2)
    expected = mesh.newell_normal(v[:4])
    assert np.allclose(tm.face_normals, expected / np.linalg.norm(expected))


def test_large_batch_matches_per_geometry_areas():
    rng = np.random.default_rng(7)
    n = 2000
    x, y = rng.uniform(0, 1000, n), rng.uniform(0, 1000, n)
    k = rng.integers(5, 9, n)
    polys = []
    for xi, yi, ki in zip(x, y, k):  # star-shaped, mostly concave
        a = np.sort(rng.uniform(0, 2 * np.pi, ki))
        r = rng.uniform(3, 8, ki)
        polys.append(shapely.Polygon(np.column_stack([xi + r * np.cos(a), yi + r * np.sin(a)])))
    polys = np.array([p for p in polys if p.is_valid])
    h = rng.uniform(3, 60, len(polys))
    batch = mesh.extrude(polys, 0.0, h)
    vols = np.array([as_trimesh(m).volume for m in batch.meshes()])
    assert np.allclose(vols, shapely.area(polys) * h)

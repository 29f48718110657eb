"""Pipe geometry kernels: closed, outward-facing tubes, boxes and shafts at the right place and size."""
import numpy as np
import pytest
import trimesh

from cim_core import sweep


def solid(mesh) -> trimesh.Trimesh:
    t = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    assert t.is_watertight and t.is_winding_consistent
    assert t.volume > 0  # normals point outwards
    return t


def test_straight_tube_is_a_closed_cylinder_of_the_pipe_diameter():
    axis = np.array([[500000.0, 3650000.0, 40.0], [500030.0, 3650040.0, 39.5]])
    m = sweep.tube(axis, 0.25)
    t = solid(m)
    length = np.linalg.norm(axis[1] - axis[0])
    polygon_area = 0.5 * 12 * 0.25 ** 2 * np.sin(2 * np.pi / 12)  # a 12-sided section
    assert t.volume == pytest.approx(polygon_area * length, rel=1e-6)
    # every ring vertex lies at the radius from the axis line
    d = axis[1] - axis[0]
    rel = m.vertices[:-2] - axis[0]
    dist = np.linalg.norm(rel - np.outer(rel @ d / (d @ d), d), axis=1)
    assert np.allclose(dist, 0.25)


def test_bent_tube_keeps_its_section_through_the_bend():
    axis = np.array([[0, 0, 0], [10, 0, 0], [10, 10, 0]], float)  # a right-angle bend
    m = sweep.tube(axis, 0.5)
    t = solid(m)
    # mitred: the volume is that of two straight pieces of 10 m each
    polygon_area = 0.5 * 12 * 0.5 ** 2 * np.sin(2 * np.pi / 12)
    assert t.volume == pytest.approx(polygon_area * 20, rel=1e-6)
    # the ring at the bend lies in the mitre plane x + y = 10, stretched by sqrt(2) across it to meet both walls
    ring = m.vertices[12:24]
    assert np.allclose(ring[:, 0] + ring[:, 1], 10)
    assert np.hypot(ring[:, 0] - 10, ring[:, 1]).max() == pytest.approx(0.5 * np.sqrt(2))
    assert np.abs(ring[:, 2]).max() == pytest.approx(0.5)


def test_box_culvert_has_its_width_and_height():
    axis = np.array([[0, 0, 0], [20, 0, 0]], float)
    m = sweep.box_tube(axis, 2.0, 1.5)
    t = solid(m)
    assert t.volume == pytest.approx(2.0 * 1.5 * 20)
    assert np.ptp(m.vertices[:, 1]) == pytest.approx(2.0) and np.ptp(m.vertices[:, 2]) == pytest.approx(1.5)


def test_manhole_shaft_runs_from_invert_to_ground():
    m = sweep.vertical_cylinder(5.0, 6.0, 57.0, 60.0, 0.5)
    solid(m)
    assert m.vertices[:, 2].min() == pytest.approx(57.0) and m.vertices[:, 2].max() == pytest.approx(60.0)
    assert np.allclose(np.hypot(m.vertices[:-2, 0] - 5, m.vertices[:-2, 1] - 6), 0.5)


def test_pipe_axis_interpolates_inverts_by_distance_along_the_vertices():
    xy = np.array([[0, 0], [10, 0], [10, 30]], float)  # 10 m then 30 m
    axis = sweep.pipe_axis(xy, 57.0, 58.0, 0.4)
    assert axis[:, 2] == pytest.approx([57.2, 57.45, 58.2])


def test_sweep_many_keeps_the_order_of_mixed_axes():
    axes = [np.array([[0, 0, 0], [5, 0, 0]], float), np.array([[0, 0, 0], [5, 0, 0], [5, 5, 0]], float),
            np.array([[0, 0, 0], [0, 0, 3]], float)]
    profiles = [sweep.circle_profile(0.1), sweep.circle_profile(0.2), sweep.rect_profile(1, 1)]
    meshes = sweep.sweep_many(axes, profiles)
    assert [len(m.vertices) for m in meshes] == [2 * 12 + 2, 3 * 12 + 2, 2 * 4 + 2]
    for m in meshes:
        solid(m)
    assert meshes[2].vertices[:, 2].max() == pytest.approx(3.0)


def test_interpolate_many_matches_one_by_one():
    lines = [np.array([[0, 0], [10, 0], [10, 30]], float), np.array([[5, 5], [5, 5]], float),
             np.array([[0, 0], [3, 4]], float)]
    start, end = np.array([57.0, 1.0, 10.0]), np.array([58.0, 2.0, 12.0])
    z = sweep.interpolate_many(np.vstack(lines), [3, 2, 2], start, end)
    expected = np.concatenate([sweep.interpolate_along(ln, a, b) for ln, a, b in zip(lines, start, end)])
    assert z == pytest.approx(expected)
    assert z == pytest.approx([57.0, 57.25, 58.0, 1.0, 2.0, 10.0, 12.0])

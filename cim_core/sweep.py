"""Pipe geometry kernels: centrelines at depth, and closed tubes swept along them.

Everything works on numpy arrays. `sweep_many` builds many tubes at once: axes with the same
number of vertices are stacked and framed, ringed and triangulated in one pass per group.
"""
from __future__ import annotations

from collections import defaultdict
from functools import lru_cache

import numpy as np

from .model import Mesh

CIRCLE_SIDES = 12
_EPS = 1e-9


def chainage(xy: np.ndarray) -> np.ndarray:
    """Cumulative horizontal distance along a polyline's vertices, starting at 0."""
    xy = np.asarray(xy, float)[:, :2]
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(xy, axis=0), axis=1))])


def interpolate_along(xy: np.ndarray, start: float, end: float) -> np.ndarray:
    """Values at each vertex, linear in horizontal distance from `start` to `end`."""
    s = chainage(xy)
    total = s[-1]
    f = s / total if total > _EPS else np.linspace(0.0, 1.0, len(s))
    return start + (end - start) * f


def interpolate_many(xy: np.ndarray, counts: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """`interpolate_along` for many polylines at once: xy (sum(counts), 2) holds their vertices one
    polyline after the other; returns the value at every vertex."""
    counts = np.asarray(counts, int)
    if not len(counts):
        return np.empty(0)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    owner = np.repeat(np.arange(len(counts)), counts)
    step = np.zeros(len(xy))
    step[1:] = np.linalg.norm(np.diff(np.asarray(xy, float)[:, :2], axis=0), axis=1)
    step[first] = 0.0
    s = np.cumsum(step)
    s -= s[first][owner]
    total = s[first + counts - 1][owner]
    rank = np.arange(len(xy)) - first[owner]
    # a polyline of zero length spreads its values evenly over its vertices
    f = np.where(total > _EPS, s / np.where(total > _EPS, total, 1.0), rank / np.maximum(counts[owner] - 1, 1))
    start, end = np.asarray(start, float), np.asarray(end, float)
    return start[owner] + (end - start)[owner] * f


@lru_cache(maxsize=1024)
def circle_profile(radius: float, sides: int = CIRCLE_SIDES) -> np.ndarray:
    """A regular polygon approximating a circle (shared between calls: do not modify)."""
    a = np.linspace(0.0, 2 * np.pi, sides, endpoint=False)
    return radius * np.column_stack([np.cos(a), np.sin(a)])


def rect_profile(width: float, height: float) -> np.ndarray:
    # same turning direction as circle_profile, so faces come out with the same orientation
    w, h = width / 2, height / 2
    return np.array([[w, h], [-w, h], [-w, -h], [w, -h]], float)


def _unit(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > _EPS, n, 1.0), n[..., 0]


def _frames(axes: np.ndarray):
    """Per-vertex tangent t, side u (horizontal), up v and mitre data for axes (K, N, 3)."""
    d, dlen = _unit(np.diff(axes, axis=1))  # (K, N-1, 3)
    # a zero-length step takes the direction of the whole axis, so rings stay well defined
    whole, _ = _unit(axes[:, -1] - axes[:, 0])
    whole = np.where(np.linalg.norm(whole, axis=-1, keepdims=True) > 0.5, whole, [1.0, 0.0, 0.0])
    d = np.where((dlen > _EPS)[..., None], d, whole[:, None, :])
    prev = np.concatenate([d[:, :1], d], axis=1)  # incoming direction at each vertex
    nxt = np.concatenate([d, d[:, -1:]], axis=1)  # outgoing direction
    t, tn = _unit(prev + nxt)
    t = np.where((tn > _EPS)[..., None], t, nxt)  # a full reversal: use the outgoing direction
    # side vector horizontal; vertical axes (manholes) use the x axis as reference instead
    u, un = _unit(np.cross(t, [0.0, 0.0, 1.0]))
    u_alt, _ = _unit(np.cross(t, [1.0, 0.0, 0.0]))
    u = np.where((un > 1e-6)[..., None], u, u_alt)
    v = np.cross(u, t)
    # mitre: in the bend plane the ring is stretched by 1/cos(half the bend angle)
    cos_half = np.clip(np.einsum("knj,knj->kn", t, prev), 0.2, 1.0)
    bend = nxt - prev
    bend -= np.einsum("knj,knj->kn", bend, t)[..., None] * t
    m, _ = _unit(bend)
    return t, u, v, m, cos_half


def _tube_faces(n_rings: int, sides: int) -> np.ndarray:
    """Triangles of a closed tube: side quads between consecutive rings and two fan caps.

    Vertex layout: ring r, side j at r * sides + j; then the start cap centre, then the end cap centre.
    """
    r = np.arange(n_rings - 1)[:, None]
    j = np.arange(sides)[None, :]
    a = r * sides + j
    b = r * sides + (j + 1) % sides
    c = a + sides
    e = b + sides
    side = np.stack([np.stack([a, c, b], -1), np.stack([b, c, e], -1)], axis=2).reshape(-1, 3)
    c0, c1 = n_rings * sides, n_rings * sides + 1
    jj = np.arange(sides)
    cap0 = np.column_stack([np.full(sides, c0), jj, (jj + 1) % sides])
    last = (n_rings - 1) * sides
    cap1 = np.column_stack([np.full(sides, c1), last + (jj + 1) % sides, last + jj])
    return np.vstack([side, cap0, cap1]).astype(np.uint32)


def _sweep_group(axes: np.ndarray, profiles: np.ndarray) -> np.ndarray:
    """Vertices (K, N*S + 2, 3) of K tubes: axes (K, N, 3), profiles (K, S, 2) in the (side, up) plane."""
    _, u, v, m, cos_half = _frames(axes)
    off = profiles[:, None, :, 0, None] * u[:, :, None, :] + profiles[:, None, :, 1, None] * v[:, :, None, :]
    along_m = np.einsum("knsj,knj->kns", off, m)
    off += ((1.0 / cos_half - 1.0)[..., None] * along_m)[..., None] * m[:, :, None, :]
    rings = axes[:, :, None, :] + off  # (K, N, S, 3)
    k, n, s, _ = rings.shape
    return np.concatenate([rings.reshape(k, n * s, 3), axes[:, :1], axes[:, -1:]], axis=1)


def sweep_many(axes: list[np.ndarray], profiles: list[np.ndarray]) -> list[Mesh]:
    """Closed tubes along many axes, each with its own cross-section profile (S, 2).

    Axes and profiles are grouped by (vertex count, side count) and built in one pass per group.
    """
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, (a, p) in enumerate(zip(axes, profiles)):
        if len(a) < 2:
            raise ValueError("an axis needs at least two vertices")
        groups[(len(a), len(p))].append(i)
    out: list[Mesh | None] = [None] * len(axes)
    for (n, s), idx in groups.items():
        verts = _sweep_group(np.stack([np.asarray(axes[i], float) for i in idx]),
                             np.stack([np.asarray(profiles[i], float) for i in idx]))
        faces = _tube_faces(n, s)
        for i, vv in zip(idx, verts):
            out[i] = Mesh(vv, faces)
    return out  # type: ignore[return-value]


def tube(axis: np.ndarray, radius: float, sides: int = CIRCLE_SIDES) -> Mesh:
    """A closed cylinder of `radius` along a polyline axis (N, 3)."""
    return sweep_many([axis], [circle_profile(radius, sides)])[0]


def box_tube(axis: np.ndarray, width: float, height: float) -> Mesh:
    """A closed box section (culvert) along a polyline axis; width horizontal, height vertical."""
    return sweep_many([axis], [rect_profile(width, height)])[0]


def vertical_cylinder(x: float, y: float, z0: float, z1: float, radius: float,
                      sides: int = CIRCLE_SIDES) -> Mesh:
    """A manhole shaft, tank or post: a closed vertical cylinder from z0 up to z1."""
    return tube(np.array([[x, y, z0], [x, y, max(z1, z0 + 0.01)]]), radius, sides)


def box(center, size: float, height: float | None = None) -> Mesh:
    """An axis-aligned box marker centred on `center` (valves, fittings, pumps)."""
    x, y, z = (float(c) for c in center)
    h = size if height is None else height
    return box_tube(np.array([[x - size / 2, y, z], [x + size / 2, y, z]]), size, h)


def pipe_axis(xy: np.ndarray, start_invert: float, end_invert: float, section_height: float) -> np.ndarray:
    """The 3D axis of a pipe: inverts interpolated along the vertices, raised by half the section height."""
    xy = np.asarray(xy, float)[:, :2]
    z = interpolate_along(xy, start_invert, end_invert) + section_height / 2
    return np.column_stack([xy, z])

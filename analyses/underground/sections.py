"""Cross-sections (横断面) and long sections (纵断面), as JSON and as SVG drawings (svg.py).

Cross-section: every pipe whose plan axis the section line crosses, at its chainage along the line, with
the depth below ground of its top and invert, its size, the cover above it and the clear gap to its
neighbours along the section (chainage difference less both half widths, measured along the line).

Long section: the run of gravity segments between two manholes (the shortest path by length through the
drainage network of their utility), oriented downstream (from the higher invert to the lower); per segment
its length, the inverts in the direction of travel and the slope; adverse slopes (倒坡: the invert rises
downstream) and steps (a segment starting higher than the one before ends, against the flow) are flagged.
"""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import shapely
import sqlalchemy as sa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from shapely.geometry import mapping

from cim_core.db import get_engine, storage_srid
from cim_core.errors import InputError, NotFoundError
from cim_core.network.columns import GRAVITY
from cim_core.network.graph import Network
from cim_core.network.queries import CURRENT

from . import svg
from .inputs import section_line
from .model import axis_z, ground_at, load_pipes

STEP_TOLERANCE_M = 0.01  # inverts at a manhole closer than this are level


def _colours(c: sa.Connection) -> dict[str, list[int]]:
    return {u: list(col) for u, col in c.execute(sa.text("select utility, color from pipe_categories")).all()}


def _r(v: float, digits: int = 3) -> float | None:
    return None if v is None or not np.isfinite(v) else round(float(v), digits)


def cross_section(line: Any, *, crs: str | int | None = None, engine: sa.Engine | None = None) -> dict:
    """The pipes a section line (GeoJSON LineString in `crs`, default the storage CRS) cuts, by chainage;
    `svg` holds the drawing."""
    engine = engine or get_engine()
    srid = storage_srid(engine)
    section = section_line(line, crs, srid)
    with engine.connect() as c:
        pipes = load_pipes(c, srid=srid, where="st_intersects(s.centerline, st_geomfromwkb(:line, :srid))",
                           params={"line": shapely.to_wkb(section)})
        colours = _colours(c)
    cut = shapely.intersection(pipes.lines, section)
    pts, idx = shapely.get_coordinates(cut, return_index=True)
    points = shapely.points(pts)
    chain = shapely.line_locate_point(section, points)
    order = np.argsort(chain, kind="stable")
    pts, idx, points, chain = pts[order], idx[order], points[order], chain[order]
    z = axis_z(pipes, idx, points)
    ground = ground_at(pipes, idx, points)
    hw, hh = pipes.half_width[idx], pipes.half_height[idx]
    gap = np.diff(chain) - hw[:-1] - hw[1:]
    rows = [{**pipes.record(i), "chainage_m": _r(chain[k]), "x": _r(pts[k, 0]), "y": _r(pts[k, 1]),
             "axis_z": _r(z[k]), "ground_z": _r(ground[k]), "top_depth_m": _r(ground[k] - z[k] - hh[k]),
             "invert_depth_m": _r(ground[k] - z[k] + hh[k]), "cover_m": _r(ground[k] - z[k] - hh[k]),
             "gap_before_m": _r(gap[k - 1]) if k else None, "gap_after_m": _r(gap[k]) if k < len(gap) else None,
             "color": colours.get(pipes.utility[i], [102, 0, 204])}
            for k, i in enumerate(idx)]
    result = {"length_m": round(section.length, 2), "crs": f"EPSG:{srid}", "pipes": rows,
              "line": mapping(section)}
    return {**result, "svg": svg.cross_section(result)}


def _node_index(net: Network, node: int | str) -> int:
    hit = np.flatnonzero(net.node_id == int(node)) if str(node).isdigit() else np.flatnonzero(net.node_key == node)
    if len(hit) != 1:
        raise NotFoundError(f"no single manhole {node!r} in the network" if not len(hit)
                            else f"manhole key {node!r} is not unique: give its id")
    return int(hit[0])


def _utility_of(c: sa.Connection, node: int | str) -> str:
    by = "n.object_id = :v" if str(node).isdigit() else "o.key = :v"
    u = c.scalars(sa.text(f"select n.utility from pipe_nodes n join city_objects o on o.id = n.object_id "
                          f"where {by} and {CURRENT}"), {"v": int(node) if str(node).isdigit() else node}).all()
    if not u:
        raise NotFoundError(f"no manhole {node!r}")
    if u[0] not in GRAVITY:
        raise InputError(f"manhole {node!r} belongs to {u[0]}, not to a gravity network ({', '.join(GRAVITY)})")
    return u[0]


def _path(net: Network, a: int, b: int) -> tuple[list[int], list[int]]:
    """(nodes, segments) of the shortest path by length from node a to node b."""
    u, v = net.edges
    n = net.n_vertices
    w = np.nan_to_num(net.length, nan=1.0) + 1e-6
    seg_of = {}
    for s, (x, y) in enumerate(zip(u, v)):
        if (x, y) not in seg_of or w[s] < w[seg_of[(x, y)]]:
            seg_of[(x, y)] = seg_of[(y, x)] = s
    graph = coo_matrix((np.concatenate([w, w]), (np.concatenate([u, v]), np.concatenate([v, u]))), shape=(n, n))
    dist, pred = dijkstra(graph.tocsr(), indices=a, return_predecessors=True)
    if not np.isfinite(dist[b]):
        raise InputError("the two manholes are not connected")
    nodes = [b]
    while nodes[-1] != a:
        nodes.append(int(pred[nodes[-1]]))
    nodes.reverse()
    return nodes, [seg_of[(x, y)] for x, y in itertools.pairwise(nodes)]


def long_section(start: int | str, end: int | str, *, engine: sa.Engine | None = None) -> dict:
    """The long section between two manholes (object ids or unique keys); `svg` holds the drawing."""
    engine = engine or get_engine()
    with engine.connect() as c:
        utility = _utility_of(c, start)
        if _utility_of(c, end) != utility:
            raise InputError("the two manholes belong to different networks")
    net = Network.load(engine, utility=utility)
    a, b = _node_index(net, start), _node_index(net, end)
    if a == b:
        raise InputError("pick two different manholes")
    nodes, segs = _path(net, a, b)
    if np.nan_to_num(net.node_invert[nodes[0]]) < np.nan_to_num(net.node_invert[nodes[-1]]):
        nodes, segs = nodes[::-1], segs[::-1]  # run downstream
    return _profile(net, nodes, segs, utility)


def _profile(net: Network, nodes: list[int], segs: list[int], utility: str) -> dict:
    chain = np.concatenate([[0.0], np.cumsum(np.nan_to_num(net.length[segs]))])
    rows, prev_end = [], None
    for k, s in enumerate(segs):
        forward = net.from_idx[s] == nodes[k]
        up, down = (net.start_invert[s], net.end_invert[s]) if forward else (net.end_invert[s], net.start_invert[s])
        slope = (up - down) / net.length[s] if net.length[s] else np.nan
        step = None if prev_end is None else up - prev_end
        rows.append({"id": int(net.segment_id[s]), "key": net.segment_key[s], "from_chainage_m": _r(chain[k]),
                     "to_chainage_m": _r(chain[k + 1]), "length_m": _r(net.length[s]), "diameter_mm":
                     _r(net.diameter_mm[s]), "invert_up": _r(up), "invert_down": _r(down),
                     "slope": _r(slope, 6), "adverse": bool(slope < 0), "drop_m": _r(-step) if step is not None
                     and step < -STEP_TOLERANCE_M else None,
                     "step": bool(step is not None and step > STEP_TOLERANCE_M)})
        prev_end = down
    manholes = [{"id": int(net.node_id[n]), "key": net.node_key[n], "type": net.node_type[n],
                 "chainage_m": _r(chain[k]), "ground_z": _r(net.node_ground[n]), "invert_z": _r(net.node_invert[n])}
                for k, n in enumerate(nodes)]
    result = {"utility": utility, "length_m": _r(chain[-1]), "manholes": manholes, "segments": rows,
              "adverse": [r["key"] for r in rows if r["adverse"]], "steps": [r["key"] for r in rows if r["step"]]}
    return {**result, "svg": svg.long_section(result)}

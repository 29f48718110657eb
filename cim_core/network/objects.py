"""City objects from a network's columns: typed pipe records, footprints and swept meshes; and writing them
as one dataset.

Engine facts a later analysis needs are kept in the attributes: `height_source` of each segment end (see
heights.py), `tee` on nodes the source calls a tee, `generated` on junctions where ends met without a node.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np
import shapely
import sqlalchemy as sa

from cim_core import sweep
from cim_core.findings import qa_counts
from cim_core.model import CityObject, DatasetInfo, Mesh, PipeNode, PipeSegment, QAFinding
from cim_core.store import WriteResult, write_dataset

from .columns import Nodes, Segments
from .heights import Heights
from .queries import utility_materials

# Drawing sizes of nodes (m).
MANHOLE_RADIUS = 0.5
VALVE_SIZE = 0.4
HYDRANT_RADIUS, HYDRANT_HEIGHT = 0.15, 0.9


def _num(v) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None


def _node_meshes(nodes: Nodes, hts: Heights) -> list[Mesh | None]:
    """Manholes as shafts from invert to ground, hydrants as posts above ground, valves and fittings as
    boxes on the pipe axis; all swept in one batch."""
    meshes: list[Mesh | None] = [None] * len(nodes)
    axes, profiles, which = [], [], []
    for i in range(len(nodes)):
        if i in nodes.meshes:
            meshes[i] = nodes.meshes[i]
            continue
        x, y = nodes.xy[i]
        g, inv, ax = hts.node_ground[i], hts.node_invert[i], hts.node_axis[i]
        t = nodes.node_type[i]
        if t == "manhole":
            axes.append(np.array([[x, y, min(inv, g - 0.1)], [x, y, g]]))
            profiles.append(sweep.circle_profile(MANHOLE_RADIUS))
        elif t == "hydrant":
            axes.append(np.array([[x, y, g], [x, y, g + HYDRANT_HEIGHT]]))
            profiles.append(sweep.circle_profile(HYDRANT_RADIUS))
        elif t in ("valve", "meter", "pump", "fitting", "outlet"):
            size = VALVE_SIZE if t in ("valve", "meter", "pump") else max(0.3, (ax - inv) * 2.4)
            axes.append(np.array([[x - size / 2, y, ax], [x + size / 2, y, ax]]))
            profiles.append(sweep.rect_profile(size, size))
        else:
            continue
        which.append(i)
    for i, m in zip(which, sweep.sweep_many(axes, profiles)):
        meshes[i] = m
    return meshes


def _dress(mesh: Mesh | None, materials: dict[str, list[dict]], utility: str) -> Mesh | None:
    """The utility's CJJ 61 colour on a mesh."""
    if mesh is not None:
        mesh.materials = materials.get(utility)
        mesh.face_materials = np.zeros(len(mesh.faces), "<u2") if mesh.materials else None
    return mesh


def node_objects(nodes: Nodes, hts: Heights, materials: dict[str, list[dict]], lod: int = 2
                 ) -> Iterator[CityObject]:
    meshes = _node_meshes(nodes, hts)
    for i in range(len(nodes)):
        u = str(nodes.utility[i])
        g = float(hts.node_ground[i])
        inv = float(hts.node_invert[i])
        attrs = nodes.attributes[i]
        if nodes.is_tee is not None and nodes.is_tee[i]:
            attrs = {**attrs, "tee": True}
        yield CityObject(
            key=nodes.keys[i], cls="pipe_node", uid=nodes.keys[i], lod=lod,
            name=nodes.names[i] if nodes.names else None, attributes=attrs,
            footprint=shapely.Point(nodes.xy[i]), mesh=_dress(meshes[i], materials, u),
            node=PipeNode(u, str(nodes.node_type[i]), (float(nodes.xy[i, 0]), float(nodes.xy[i, 1]), g),
                          depth=g - inv, ground_z=g, invert_z=inv))


def _segment_geometry(segs: Segments, hts: Heights) -> tuple[list[np.ndarray], np.ndarray, list[Mesh]]:
    """(axes at depth, 2D footprints, swept meshes) of all segments, each computed in one batch."""
    h = segs.section_height()
    rect = segs.shape == "rectangular"
    counts = np.array([len(ln) for ln in segs.lines], int)
    if not len(segs):
        return [], np.empty(0, object), []
    xy = np.vstack([ln[:, :2] for ln in segs.lines])
    z = sweep.interpolate_many(xy, counts, hts.axis[0], hts.axis[1])
    if segs.line_z:  # a line's bends (a dip under a crossing pipe): its vertices' rise over the chord of its ends
        src = np.concatenate([ln[:, 2] if ln.shape[1] > 2 else np.full(len(ln), np.nan) for ln in segs.lines])
        first = np.r_[0, np.cumsum(counts)[:-1]]
        z += np.nan_to_num(src - sweep.interpolate_many(xy, counts, src[first], src[first + counts - 1]))
    axes = np.split(np.column_stack([xy, z]), np.cumsum(counts)[:-1])
    footprints = shapely.linestrings(xy, indices=np.repeat(np.arange(len(segs)), counts))
    width = np.where(np.isfinite(segs.width_mm) & (segs.width_mm > 0), segs.width_mm / 1000, h)
    profiles = [sweep.rect_profile(width[i], h[i]) if rect[i] else sweep.circle_profile(float(h[i] / 2))
                for i in range(len(segs))]
    return axes, footprints, sweep.sweep_many(axes, profiles)


def segment_objects(segs: Segments, nodes: Nodes, hts: Heights, materials: dict[str, list[dict]],
                    lod: int = 2) -> Iterator[CityObject]:
    axes, footprints, meshes = _segment_geometry(segs, hts)
    rect = segs.shape == "rectangular"
    none = [None] * len(segs)
    cjj, material, owner, pressure, year = (segs.text.get(k, none) for k in (
        "cjj_code", "material", "owner", "pressure_class", "install_year"))
    # plain Python numbers for the records, converted once
    dia, wid, hei = ([_num(v) for v in col] for col in (segs.diameter_mm, segs.width_mm, segs.height_mm))
    inv0, inv1 = hts.invert[0].tolist(), hts.invert[1].tolist()
    dep0, dep1 = (hts.ground[0] - hts.invert[0]).tolist(), (hts.ground[1] - hts.invert[1]).tolist()
    frm = [nodes.keys[j] if j >= 0 else None for j in segs.from_idx]
    to = [nodes.keys[j] if j >= 0 else None for j in segs.to_idx]
    for i in range(len(segs)):
        u = str(segs.utility[i])
        attrs = dict(segs.attributes[i])
        attrs["height_source"] = [str(hts.source[0][i]), str(hts.source[1][i])]
        yield CityObject(
            key=segs.keys[i], cls="pipe_segment", uid=segs.keys[i], lod=lod,
            name=segs.names[i] if segs.names else None, attributes=attrs,
            footprint=footprints[i], mesh=_dress(meshes[i], materials, u),
            pipe=PipeSegment(
                utility=u, centerline=axes[i], cjj_code=cjj[i],
                shape="rectangular" if rect[i] else "circular",
                diameter_mm=dia[i], width_mm=wid[i], height_mm=hei[i], material=material[i],
                install_year=int(year[i]) if year[i] is not None else None, owner=owner[i],
                pressure_class=pressure[i], start_invert=inv0[i], end_invert=inv1[i], start_depth=dep0[i],
                end_depth=dep1[i], from_node=frm[i], to_node=to[i]))


def build_objects(segs: Segments, nodes: Nodes, hts: Heights, materials: dict[str, list[dict]],
                  *, lod: int = 2) -> Iterator[CityObject]:
    """City objects for nodes, then segments (which reference them)."""
    yield from node_objects(nodes, hts, materials, lod)
    yield from segment_objects(segs, nodes, hts, materials, lod)


def write_network(info: DatasetInfo, segs: Segments, nodes: Nodes, hts: Heights,
                  findings: Iterable[QAFinding] = (), *, engine: sa.Engine,
                  on_objects: Callable[[int], None] | None = None) -> WriteResult:
    """Store a network as one dataset, with findings of its source; the report gains the height sources
    (`heights`) and the findings' counts by rule (`qa`)."""
    findings = list(findings)
    info.report = {**info.report, "heights": hts.counts, "qa": qa_counts(findings)}
    return write_dataset(info, build_objects(segs, nodes, hts, utility_materials(engine)), findings,
                         engine=engine, progress=on_objects)

"""In-memory records that importers produce and the bulk writer stores.

Coordinates are always in the database's storage CRS (metres), heights as the source gives them.
Meshes are numpy arrays from the importer to the tile writer.
"""
from __future__ import annotations

import datetime as dt
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Classes of city object. IFC elements keep their IFC class in `ifc_class`.
OBJECT_CLASSES = (
    "building", "building_part", "site", "storey", "space", "element",
    "road", "landuse", "water", "green", "facility",
    "pipe_segment", "pipe_node",
)
UTILITIES = ("water", "rain", "sewage", "combined", "gas", "heat", "power", "telecom", "unknown")
NODE_TYPES = ("manhole", "valve", "hydrant", "fitting", "outlet", "junction", "tank", "reservoir", "pump", "meter")


@dataclass(slots=True)
class Mesh:
    """A triangle mesh: vertices (N, 3) float64 in the storage CRS, faces (M, 3) uint32.

    Optional per-face material index into `materials`, each {"name": str, "color": [r, g, b, a]} in 0..1.
    """
    vertices: np.ndarray
    faces: np.ndarray
    face_materials: np.ndarray | None = None
    materials: list[dict[str, Any]] | None = None

    def __post_init__(self):
        self.vertices = np.ascontiguousarray(self.vertices, dtype="<f8").reshape(-1, 3)
        self.faces = np.ascontiguousarray(self.faces, dtype="<u4").reshape(-1, 3)
        if self.face_materials is not None:
            self.face_materials = np.ascontiguousarray(self.face_materials, dtype="<u2").reshape(-1)

    @classmethod
    def concatenate(cls, meshes: list["Mesh"]) -> "Mesh":
        """One mesh from many; materials are merged by equal content."""
        verts, faces, fmat, mats, offset = [], [], [], [], 0
        index: dict[str, int] = {}
        for m in meshes:
            verts.append(m.vertices)
            faces.append(m.faces + offset)
            offset += len(m.vertices)
            local = m.materials or [{"name": "default", "color": [0.8, 0.8, 0.8, 1.0]}]
            remap = []
            for mat in local:
                key = repr(sorted(mat.items()))
                if key not in index:
                    index[key] = len(mats)
                    mats.append(mat)
                remap.append(index[key])
            fm = m.face_materials if m.face_materials is not None else np.zeros(len(m.faces), "<u2")
            fmat.append(np.asarray(remap, "<u2")[fm])
        if not meshes:
            return cls(np.zeros((0, 3)), np.zeros((0, 3)))
        return cls(np.vstack(verts), np.vstack(faces), np.concatenate(fmat), mats)


@dataclass(slots=True)
class PipeSegment:
    """Typed data of a pipe segment (CJJ 61). Depths are below ground, inverts are elevations."""
    utility: str
    centerline: np.ndarray  # (N, 3) pipe axis at depth, storage CRS
    cjj_code: str | None = None
    shape: str = "circular"  # circular | rectangular
    diameter_mm: float | None = None
    width_mm: float | None = None
    height_mm: float | None = None
    material: str | None = None
    install_year: int | None = None
    owner: str | None = None
    pressure_class: str | None = None
    start_invert: float | None = None
    end_invert: float | None = None
    start_depth: float | None = None
    end_depth: float | None = None
    from_node: str | None = None  # key of a pipe_node object in the same dataset
    to_node: str | None = None


@dataclass(slots=True)
class PipeNode:
    utility: str
    node_type: str
    point: tuple[float, float, float]  # at ground level (x, y, ground z)
    depth: float | None = None
    ground_z: float | None = None
    invert_z: float | None = None


@dataclass(slots=True)
class CityObject:
    """One city object. `key` is unique within its dataset; `parent` is the parent's key."""
    key: str
    cls: str
    uid: str | None = None
    name: str | None = None
    parent: str | None = None
    ifc_class: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    lod: int | None = None
    footprint: Any = None  # shapely geometry, 2D, storage CRS
    mesh: Mesh | None = None
    zmin: float | None = None
    zmax: float | None = None
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None
    pipe: PipeSegment | None = None
    node: PipeNode | None = None


@dataclass(slots=True)
class QAFinding:
    """A finding about a dataset's object (by key), made while importing it."""
    rule: str
    message: str
    object_key: str | None = None
    location: tuple[float, float] | None = None
    severity: str = "warning"
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class DatasetInfo:
    """What the writer records about one imported source."""
    name: str
    kind: str  # gis | ifc | cityjson | epanet | swmm | ...
    source_path: str  # the source as given; the writer stores its file name only (no server paths)
    sha256: str | Future[str]  # the content's SHA-256, or its computation under way
    source_crs: str | None = None
    report: dict[str, Any] = field(default_factory=dict)
    scenario: str | None = None  # the plan the dataset belongs to (cim_core.scenarios); None: as-is

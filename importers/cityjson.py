"""CityJSON 1.0/1.1/2.0 files and CityJSONSeq (.jsonl) streams: buildings and building parts.

Each Building/BuildingPart gets the geometry of its highest LoD (Solid, MultiSolid, CompositeSolid,
MultiSurface or CompositeSurface), triangulated surface by surface, with its semantic surfaces (roof,
wall, ground, ...) kept as per-face materials, its attributes, and its parent building. A building
without geometry of its own (its parts carry it) gets the union of its parts' footprints. Vertices are
decoded (index * scale + translate) and moved into the storage CRS horizontally; heights stay as given.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import shapely
import sqlalchemy as sa

from cim_core import mesh
from cim_core.crs import check_extent, crs_name, parse_crs, transformer
from cim_core.db import get_engine, storage_srid
from cim_core.errors import CimError, InputError
from cim_core.model import CityObject, DatasetInfo, Mesh
from cim_core.store import write_dataset

from .common import ImportResult, already_loaded, expand_sources, import_many, options_key

SUFFIXES = (".city.json", ".json", ".jsonl", ".city.jsonl")
VERSIONS = ("1.0", "1.1", "2.0")
TYPES = {"Building": "building", "BuildingPart": "building_part"}
# Semantic surface types in the order of their material index; anything else is "OtherSurface".
SEMANTIC = ("RoofSurface", "WallSurface", "GroundSurface", "OtherSurface")
OTHER = SEMANTIC.index("OtherSurface")
MATERIALS = [mesh.SURFACE_MATERIALS[s] for s in SEMANTIC]


def _read(path: Path) -> tuple[dict, dict[str, dict], np.ndarray, bool]:
    """(header, city objects, decoded vertices (N, 3), is a sequence) of a file or a sequence.

    A CityJSONSeq's features each bring their own vertices; they are appended to one array and the
    features' indices shifted accordingly.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc.strerror}") from None
    lines: list[bytes] = []
    try:
        head = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # a CityJSONSeq: a CityJSON header line, then one CityJSONFeature per line
        first, _, rest = raw.lstrip().partition(b"\n")
        try:
            head = orjson.loads(first)
        except orjson.JSONDecodeError:
            raise InputError(f"{path}: not valid JSON: {exc}") from None
        lines = rest.splitlines()
    if not isinstance(head, dict) or head.get("type") != "CityJSON":
        raise InputError(f"{path}: not a CityJSON file (no \"type\": \"CityJSON\")")
    version = str(head.get("version", ""))
    if version not in VERSIONS:
        raise InputError(f"{path}: CityJSON version {version or '(none)'} is not supported; "
                         f"supported: {', '.join(VERSIONS)}")
    scale = np.asarray(head.get("transform", {}).get("scale", [1, 1, 1]), float)
    translate = np.asarray(head.get("transform", {}).get("translate", [0, 0, 0]), float)
    objects: dict[str, dict] = dict(head.get("CityObjects") or {})
    chunks = [np.asarray(head.get("vertices") or np.zeros((0, 3)), float).reshape(-1, 3)]
    sequence = bool(lines) or path.suffix == ".jsonl"
    if sequence:
        offset = len(chunks[0])
        for lineno, line in enumerate(lines, start=2):
            if not line.strip():
                continue
            try:
                feat = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise InputError(f"{path}: line {lineno} is not valid JSON: {exc}") from None
            if feat.get("type") != "CityJSONFeature":
                raise InputError(f"{path}: line {lineno} is not a CityJSONFeature")
            v = np.asarray(feat.get("vertices") or np.zeros((0, 3)), float).reshape(-1, 3)
            for oid, o in (feat.get("CityObjects") or {}).items():
                if offset:
                    for g in o.get("geometry", []):
                        g["boundaries"] = _shift(g.get("boundaries", []), offset)
                objects[oid] = o
            chunks.append(v)
            offset += len(v)
    vertices = np.vstack(chunks) * scale + translate
    head["version"] = version
    return head, objects, vertices, sequence


def _shift(b, k: int):
    return [_shift(x, k) for x in b] if isinstance(b, list) else b + k


def _surfaces(geom: dict) -> tuple[list[list[list[int]]], list[Any]]:
    """The geometry's surfaces (each a list of rings of vertex indices) and each one's semantic value."""
    t, b = geom["type"], geom.get("boundaries", [])
    values = (geom.get("semantics") or {}).get("values")
    if t in ("MultiSurface", "CompositeSurface"):
        shells, vals = [b], [values]
    elif t == "Solid":
        shells, vals = b, values or [None] * len(b)
    else:  # MultiSolid, CompositeSolid: values per solid, per shell
        shells, vals = [], []
        for i, solid in enumerate(b):
            sv = values[i] if values else None
            shells += solid
            vals += [sv[j] if sv else None for j in range(len(solid))]
    surfaces, sem = [], []
    for shell, v in zip(shells, vals):
        surfaces += shell
        sem += v if isinstance(v, list) else [None] * len(shell)
    return surfaces, sem


def _lod(geom: dict) -> float:
    """The geometry's LoD (CityJSON: 0 to 4, e.g. "2.2"); 0 where it is none of these."""
    try:
        lod = float(geom.get("lod", 0))
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return lod if 0 <= lod <= 4 else 0.0


def _object_mesh(oid: str, geom: dict, vertices: np.ndarray, path: Path) -> tuple[Mesh, Any]:
    """Triangle mesh (local vertices, per-face semantic material) and 2D footprint of one geometry."""
    surfaces, sem = _surfaces(geom)
    kinds = [s.get("type") for s in (geom.get("semantics") or {}).get("surfaces", [])]
    tris, mats, ground, shadow = [], [], [], []
    for rings, v in zip(surfaces, sem):
        rings = [r for r in rings if len(r) >= 3]
        if not rings:
            continue
        try:
            idx = np.fromiter((i for r in rings for i in r), np.int64)
        except OverflowError:  # an index past 2**63
            idx = None
        if idx is None or idx.max() >= len(vertices) or idx.min() < 0:
            bad = max((i for r in rings for i in r), key=abs)
            raise InputError(f"{path}: object {oid!r} refers to vertex {bad}, but the file has {len(vertices)}")
        ends = np.cumsum([len(r) for r in rings])
        t = mesh.triangulate_surface(vertices[idx], ends)
        if not len(t):
            continue
        kind = kinds[v] if isinstance(v, int) and 0 <= v < len(kinds) else None
        m = SEMANTIC.index(kind) if kind in SEMANTIC else OTHER
        tris.append(idx[t])
        mats.append(np.full(len(t), m, np.uint16))
        if kind == "GroundSurface":
            outer = vertices[idx[:ends[0]], :2]
            holes = [vertices[idx[a:b], :2] for a, b in zip(ends[:-1], ends[1:])]
            ground.append(shapely.Polygon(outer, holes))
    if not tris:
        return None, None
    faces = np.vstack(tris)
    used, local = np.unique(faces, return_inverse=True)
    m = Mesh(vertices[used], local.reshape(-1, 3), np.concatenate(mats), MATERIALS)
    if ground:
        footprint = shapely.union_all(shapely.make_valid(np.array(ground, dtype=object)))
    else:  # no ground surface: the union of the non-vertical triangles seen from above
        tri = m.vertices[m.faces.astype(np.int64)]
        n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        flat = np.abs(n[:, 2]) > 1e-9
        footprint = shapely.union_all(shapely.make_valid(shapely.polygons(tri[flat][:, :, :2]))) if flat.any() \
            else shapely.convex_hull(shapely.multipoints(m.vertices[:, :2]))
    return m, _polygonal(footprint)


def _polygonal(g):
    """The polygons of a geometry (repairs may leave lines or points beside them), or None."""
    parts = shapely.get_parts(shapely.get_parts(g))
    polys = parts[shapely.get_type_id(parts) == shapely.GeometryType.POLYGON]
    return shapely.union_all(polys) if len(polys) else None


def _to_storage(vertices: np.ndarray, src, srid: int) -> np.ndarray:
    horizontal = src.sub_crs_list[0] if src.is_compound else src
    if horizontal.equals(parse_crs(srid)) or not len(vertices):
        return vertices
    t = transformer(crs_name(horizontal) if horizontal.to_authority() else horizontal.to_wkt(), srid)
    x, y = t.transform(vertices[:, 0], vertices[:, 1])
    return np.column_stack([x, y, vertices[:, 2]])


def _parse(path: Path, crs: str | None, options: dict) -> tuple[dict, Any, list[CityObject]]:
    """(report, source CRS, the buildings and parts as city objects) of a CityJSON file."""
    head, cos, vertices, sequence = _read(path)
    file_crs = (head.get("metadata") or {}).get("referenceSystem")
    if not crs and not file_crs:
        raise InputError(f"{path}: the file names no coordinate reference system (metadata.referenceSystem)",
                         hint="give it with --crs, e.g. EPSG:7415 for Dutch RD New + NAP")
    try:
        src = parse_crs(crs or file_crs)
    except CimError as exc:
        raise InputError(f"{path}: {exc}") from None
    srid = options["srid"]
    if len(vertices):
        check_extent(str(path), src, (*vertices[:, :2].min(0), *vertices[:, :2].max(0)), srid)
    vertices = _to_storage(vertices, src, srid)

    skipped = Counter(o.get("type", "?") for o in cos.values() if o.get("type") not in TYPES)
    report: dict[str, Any] = {"version": head["version"], "sequence": sequence, "crs": crs_name(src),
                              "skipped_types": dict(skipped), "lod": {}, "options": options_key(options)}
    if crs and file_crs and not parse_crs(file_crs).equals(src):
        report["crs_overridden"] = f"{file_crs} -> {crs_name(src)}"
    wanted = {oid: o for oid, o in cos.items() if o.get("type") in TYPES}
    built: dict[str, tuple[Mesh | None, Any, int | None]] = {}
    lods: Counter = Counter()
    for oid, o in wanted.items():
        geoms = [g for g in o.get("geometry", []) if g.get("type") in
                 ("Solid", "MultiSolid", "CompositeSolid", "MultiSurface", "CompositeSurface")]
        if not geoms:
            built[oid] = (None, None, None)
            continue
        g = max(geoms, key=_lod)
        m, fp = _object_mesh(oid, g, vertices, path)
        lods[str(g.get("lod"))] += 1
        built[oid] = (m, fp, int(_lod(g)) if m is not None else None)
    report["lod"] = dict(lods)

    def parent_of(o: dict) -> str | None:
        return next((p for p in o.get("parents", []) if p in wanted), None)

    children: dict[str, list[str]] = {}
    for oid, o in wanted.items():
        if (p := parent_of(o)) is not None:
            children.setdefault(p, []).append(oid)

    def objects() -> Iterator[CityObject]:
        for oid, o in wanted.items():
            m, fp, lod = built[oid]
            zmin = zmax = None
            if m is None and children.get(oid):  # a building drawn by its parts
                parts = [built[c] for c in children[oid] if built[c][0] is not None]
                if parts:
                    fp = _polygonal(shapely.union_all([p[1] for p in parts if p[1] is not None]))
                    zmin = min(float(p[0].vertices[:, 2].min()) for p in parts)
                    zmax = max(float(p[0].vertices[:, 2].max()) for p in parts)
            attrs = dict(o.get("attributes") or {})
            name = attrs.get("name")
            yield CityObject(key=oid, cls=TYPES[o["type"]], uid=oid, name=str(name) if name is not None else None,
                             parent=parent_of(o), attributes=attrs, lod=lod, footprint=fp, mesh=m,
                             zmin=zmin, zmax=zmax)

    return report, src, list(objects())


def import_file(path: str | Path, *, dataset: str | None = None, engine: sa.Engine | None = None,
                force: bool = False, on_objects: Callable[[int], None] | None = None,
                crs: str | None = None) -> ImportResult:
    """Import the buildings and building parts of one CityJSON file or CityJSONSeq as one dataset.

    crs: the source CRS when metadata.referenceSystem names none (it overrides the file's).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    engine = engine or get_engine()
    name = dataset or path.name.split(".")[0]
    options = {"crs": crs, "dataset": name, "srid": storage_srid(engine)}
    sha, done = already_loaded(path, force, options, engine)
    if done:
        return ImportResult(path=str(path), dataset=done["name"], skipped=True)
    try:
        report, src, objects = _parse(path, crs, options)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        # the document's structure is not what CityJSON specifies (a list where an object belongs...)
        raise InputError(f"{path}: malformed CityJSON: {type(exc).__name__}: {exc}") from None
    info = DatasetInfo(name=name, kind="cityjson", source_path=str(path), sha256=sha, source_crs=crs_name(src),
                       report=report)
    res = write_dataset(info, objects, engine=engine, progress=on_objects)
    return ImportResult(path=str(path), dataset=name, counts=res.counts, replaced=res.replaced, report=report)


def import_files(paths, *, workers: int = 1, force: bool = False,
                 on_file: Callable[[ImportResult], None] | None = None,
                 on_objects: Callable[[int], None] | None = None, **options) -> list[ImportResult]:
    """Many files (paths, directories, globs), one dataset each."""
    return import_many(import_file, expand_sources(paths, SUFFIXES), workers=workers, force=force,
                       on_file=on_file, on_objects=on_objects, **options)

"""IFC importer: a model's spatial tree, elements, properties, materials and geometry into the CIM.

One IFC file becomes one dataset. Objects: site, building, storey, space and element (keyed by
GlobalId), with parent links along the spatial tree; pipe and duct segments and fittings also as
pipe_segment objects in the pipe network. Geometry comes from the ifcopenshell.geom iterator in
world coordinates (metres, openings cut) and is placed in the storage CRS by importers.ifc_georef.
Objects stream into cim_core.store.write_dataset, so memory stays bounded for large files.

    import_file("duplex.ifc", crs=None, at=None, rotation=None) -> ImportResult
    import_files(["models/"], workers=2) -> list[ImportResult]
"""
from __future__ import annotations

import collections
import math
import os
import re
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import ifcopenshell
import ifcopenshell.geom
import ifcopenshell.util.element
import ifcopenshell.util.placement
import ifcopenshell.util.unit
import numpy as np
import shapely
import sqlalchemy as sa

from cim_core.db import get_engine, storage_srid
from cim_core.errors import InputError
from cim_core.model import CityObject, DatasetInfo, Mesh, PipeSegment
from cim_core.store import write_dataset

from .common import ImportResult, already_loaded, expand_sources, import_many, options_key
from .ifc_georef import Placement, resolve

SUFFIXES = (".ifc",)
# The iterator's own threads: on 2 shared cores 1 thread beat 2 (bench/ifc_import.py measures it).
THREADS = 1
# Products stored as city objects; openings only cut, virtual elements only bound spaces.
SKIP = ("IfcFeatureElementSubtraction", "IfcVirtualElement")
SPATIAL_CLASS = (("IfcSite", "site"), ("IfcBuildingStorey", "storey"), ("IfcBuilding", "building"),
                 ("IfcFacilityPart", "storey"), ("IfcFacility", "building"), ("IfcSpace", "space"),
                 ("IfcSpatialZone", "space"), ("IfcExternalSpatialElement", "space"))
PIPE_CLASSES = ("IfcPipeSegment", "IfcDuctSegment", "IfcFlowSegment", "IfcPipeFitting", "IfcDuctFitting",
                "IfcFlowFitting")
# What a GIS footprint shows: the outline of walls and floors, not roof overhangs or furniture.
OUTLINE_CLASSES = ("IfcWall", "IfcSlab", "IfcCurtainWall", "IfcColumn")
DEFAULT_MATERIAL = {"name": "default", "color": [0.8, 0.8, 0.8, 1.0]}
FAILED_LISTED = 200  # failed elements listed by name in the report; all are counted

# Utility from words in system types, names and descriptions; the first rule that matches wins.
# English words must start at a word boundary ("RETAINED" is no rain); Chinese terms have none.
UTILITY_WORDS = [
    ("rain", r"\b(?:storm|rain|surface ?water)|雨水"),
    ("sewage", r"\b(?:sewage|sewer|foul|waste ?water|soil)|污水"),
    ("combined", r"\b(?:drain|combined)|排水"),
    ("gas", r"\bgas\b|燃气"),
    ("heat", r"\b(?:heating|chilled|condenser|district heat)|热力|供热"),
    ("water", r"\b(?:water|potable|domestic|fire ?protection|hydrant|sprinkler)|给水|供水|消防"),
    ("power", r"\b(?:electric|power)|电力"),
    ("telecom", r"\b(?:telecom|communication|data\b)|通信|电信"),
]


def _open(path: Path) -> ifcopenshell.file:
    try:
        return ifcopenshell.open(str(path))
    except ifcopenshell.Error as exc:
        detail = str(exc).removesuffix(", check logs")
        # the parser's log says where: "[error] [time] token -1.#INF at offset 806 invalid valid token"
        errors = [ln for ln in ifcopenshell.get_log().splitlines() if ln.startswith("[error]")]
        if errors:
            detail += ": " + re.sub(r"^\[error\] \[[^]]*\] ", "", errors[-1]).replace(" invalid valid token", "")
        raise InputError(f"{path}: not a readable IFC file: {detail}") from None
    except (OSError, RuntimeError, ValueError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None


def _jsonable(v):
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items() if k != "id"}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, ifcopenshell.entity_instance):
        return str(v.wrappedValue) if hasattr(v, "wrappedValue") else v.is_a()
    return v


class _Properties:
    """Property and quantity sets of every object, read once per set (sets are shared)."""

    def __init__(self, model: ifcopenshell.file):
        self.own: dict[int, list] = {}
        self.typed: dict[int, ifcopenshell.entity_instance] = {}
        self._cache: dict[int, tuple[str, str, dict]] = {}
        for rel in model.by_type("IfcRelDefinesByProperties"):
            defs = rel.RelatingPropertyDefinition
            defs = defs if isinstance(defs, tuple) else (defs,)  # IFC4 IfcPropertySetDefinitionSet
            for obj in rel.RelatedObjects:
                self.own.setdefault(obj.id(), []).extend(defs)
        for rel in model.by_type("IfcRelDefinesByType"):
            for obj in rel.RelatedObjects:
                self.typed[obj.id()] = rel.RelatingType

    def _read(self, d) -> tuple[str, str, dict]:
        got = self._cache.get(d.id())
        if got is None:
            kind = "qtos" if d.is_a("IfcElementQuantity") else "psets"
            got = self._cache[d.id()] = (kind, d.Name or d.is_a(),
                                         _jsonable(ifcopenshell.util.element.get_property_definition(d)))
        return got

    def of(self, obj) -> tuple[dict, dict, ifcopenshell.entity_instance | None]:
        """(psets, qtos, type object); the type's sets are inherited, the occurrence's win."""
        out = {"psets": {}, "qtos": {}}
        typ = self.typed.get(obj.id())
        sources = list(getattr(typ, "HasPropertySets", None) or ()) if typ is not None else []
        for d in sources + self.own.get(obj.id(), []):
            kind, name, props = self._read(d)
            have = out[kind].get(name)
            out[kind][name] = {**have, **props} if have else props
        return out["psets"], out["qtos"], typ


class _Building:
    """Footprint and height range of one building, gathered from its elements' geometry."""

    def __init__(self):
        self.outline: list = []
        self.other: list = []
        self.has_slabs = False
        self.zmin, self.zmax = math.inf, -math.inf

    def add(self, hull, zmin: float, zmax: float, outline: bool, slab: bool) -> None:
        self.zmin, self.zmax = min(self.zmin, zmin), max(self.zmax, zmax)
        self.has_slabs |= slab
        parts = self.outline if outline else self.other
        parts.append(hull)
        if len(parts) >= 1000:  # keep memory bounded on big buildings
            parts[:] = [shapely.union_all(parts)]

    def footprint(self):
        parts = self.outline or self.other
        if not parts:
            return None
        union = shapely.union_all(parts)
        # close the hairline gaps between walls and slabs
        union = shapely.buffer(shapely.buffer(union, 0.05, join_style="mitre"), -0.05, join_style="mitre")
        out = []
        for p in getattr(union, "geoms", [union]):
            if not isinstance(p, shapely.Polygon) or p.is_empty:
                continue
            # a ring of walls without floors encloses the rooms: fill it; with floors, holes are courtyards
            holes = [r for r in p.interiors if shapely.Polygon(r).area > 1.0] if self.has_slabs else []
            out.append(shapely.Polygon(p.exterior, holes))
        if not out:
            return None
        return out[0] if len(out) == 1 else shapely.MultiPolygon(out)


def _utility(texts: list[str]) -> str | None:
    blob = " ".join(t for t in texts if t).lower()
    for utility, pattern in UTILITY_WORDS:
        if re.search(pattern, blob):
            return utility
    return None


def _diameter_mm(psets: dict, unit_m: float) -> float | None:
    """Nominal diameter from property sets: IFC's NominalDiameter, then any other diameter, then a DN label.

    Values are lengths in the project unit unless the property's name says millimetres (DiameterMm).
    """
    lengths, labels = [], []
    for props in psets.values():
        for name, v in props.items():
            n = re.sub(r"[_\s]+", " ", re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)).lower().strip()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 and "diameter" in n:
                rank = 0 if n == "nominal diameter" else 2 if "inner" in n or "outer" in n else 1
                mm = float(v) if n.endswith(" mm") or "(mm)" in n else v * unit_m * 1000
                if 5 <= mm <= 10000:  # anything else is a unit mix-up, not a pipe
                    lengths.append((rank, mm))
            elif isinstance(v, str) and re.fullmatch(r"(?:dn\s*)?\d{2,4}", v.strip().lower()) and (
                    "size" in n or n in ("dn", "nominal size")):
                labels.append(float(re.sub(r"\D", "", v)))
    if lengths:
        return min(lengths)[1]
    return labels[0] if labels else None


def _profile_mm(product, unit_m: float) -> dict:
    """Section from the body's swept profile: circular diameter or rectangular width/height, in mm."""
    for rep in (product.Representation.Representations if product.Representation else ()):
        for item in rep.Items:
            profile = getattr(item, "SweptArea", None)
            if profile is not None and profile.is_a("IfcCircleProfileDef"):
                return {"shape": "circular", "diameter_mm": 2 * profile.Radius * unit_m * 1000}
            if profile is not None and profile.is_a("IfcRectangleProfileDef"):
                return {"shape": "rectangular", "width_mm": profile.XDim * unit_m * 1000,
                        "height_mm": profile.YDim * unit_m * 1000}
            if item.is_a("IfcSweptDiskSolid"):
                return {"shape": "circular", "diameter_mm": 2 * item.Radius * unit_m * 1000}
    return {}


def _curve_points(curve) -> np.ndarray | None:
    """Vertices of a polyline-like curve in its own coordinates (arcs of indexed curves kept as chords)."""
    if curve is None:
        return None
    if curve.is_a("IfcPolyline"):
        pts = [tuple(pt.Coordinates) for pt in curve.Points]
    elif curve.is_a("IfcIndexedPolyCurve"):
        pts = [tuple(c) for c in curve.Points.CoordList]
    else:
        return None
    xyz = np.zeros((len(pts), 3))
    for i, pt in enumerate(pts):
        xyz[i, :len(pt)] = pt
    return xyz if len(xyz) >= 2 else None


def _position(axis2placement) -> np.ndarray:
    return np.eye(4) if axis2placement is None else ifcopenshell.util.placement.get_axis2placement(axis2placement)


def _directrix(product, unit_m: float) -> np.ndarray | None:
    """A segment's modelled centre line in world metres: its Axis curve or its swept solid's directrix."""
    if product.Representation is None or product.ObjectPlacement is None:
        return None
    reps = sorted(product.Representation.Representations, key=lambda r: r.RepresentationIdentifier != "Axis")
    for rep in reps:
        for item in rep.Items:
            if rep.RepresentationIdentifier == "Axis":
                local, pos = _curve_points(item), np.eye(4)
            elif item.is_a("IfcSweptDiskSolid") or hasattr(item, "Directrix"):
                local, pos = _curve_points(item.Directrix), _position(getattr(item, "Position", None))
            else:
                continue
            if local is None:
                continue
            m = ifcopenshell.util.placement.get_local_placement(product.ObjectPlacement) @ pos
            return (local @ m[:3, :3].T + m[:3, 3]) * unit_m
    return None


def _axis(v: np.ndarray) -> np.ndarray:
    """The centre line of a straight segment: its mesh's principal axis between the extreme vertices."""
    c = v.mean(axis=0)
    if len(v) < 2:
        return np.vstack([c, c])
    _, _, vt = np.linalg.svd(v - c, full_matrices=False)
    d = vt[0]
    t = (v - c) @ d
    # the centroid of a tessellated tube lies on its axis; the ends are the extreme projections
    return np.vstack([c + t.min() * d, c + t.max() * d])


class _Reader:
    """Streams one model's city objects; counts and failures land in `report` as it goes."""

    def __init__(self, model: ifcopenshell.file, path: Path, placement: Placement, threads: int,
                 progress: Callable[[int], None] | None):
        self.model, self.path, self.placement = model, path, placement
        self.threads, self.progress = threads, progress
        self.unit_m = ifcopenshell.util.unit.calculate_unit_scale(model)
        self.props = _Properties(model)
        self.failed: list[dict] = []
        self.failed_count = 0
        self.shapes = 0
        self.products = [p for p in model.by_type("IfcProduct") if self._stored(p)]
        self.keys: dict[int, str] = {}
        seen: set[str] = set()
        for p in self.products:
            key = p.GlobalId
            if key in seen:  # broken files repeat GlobalIds; keys must stay unique in a dataset
                key = f"{key}#{p.id()}"
            seen.add(key)
            self.keys[p.id()] = key
        self.ids = {k: i for i, k in self.keys.items()}
        self.parents = {p.id(): self._parent(p) for p in self.products}
        self.building_of: dict[int, int | None] = {}
        self.buildings: dict[int, _Building] = {p.id(): _Building() for p in self.products
                                                if self._cls(p) == "building"}
        project = next(iter(model.by_type("IfcProject")), None)
        self.project_words = [project.Name, project.LongName, project.Description] if project else []
        self.systems = self._systems()

    @staticmethod
    def _stored(p) -> bool:
        if p.is_a("IfcSpatialElement") or p.is_a("IfcSpatialStructureElement"):
            return True
        return p.is_a("IfcElement") and not any(p.is_a(c) for c in SKIP)

    @staticmethod
    def _cls(p) -> str:
        for ifc_class, cls in SPATIAL_CLASS:
            if p.is_a(ifc_class):
                return cls
        return "pipe_segment" if p.is_a() in PIPE_CLASSES else "element"

    def _parent(self, p) -> str | None:
        """The nearest stored ancestor: the aggregate, else the spatial container."""
        cur = p
        while True:
            up = ifcopenshell.util.element.get_aggregate(cur) or ifcopenshell.util.element.get_container(cur)
            if up is None:
                return None
            if up.id() in self.keys:
                return self.keys[up.id()]
            cur = up

    def _building(self, pid: int) -> int | None:
        if pid in self.building_of:
            return self.building_of[pid]
        chain, cur, found = [], pid, None
        while cur is not None:
            if cur in self.buildings:
                found = cur
                break
            if cur in self.building_of:
                found = self.building_of[cur]
                break
            chain.append(cur)
            parent = self.parents.get(cur)
            cur = self.ids.get(parent) if parent is not None else None
        for c in chain:
            self.building_of[c] = found
        return found

    def _systems(self) -> dict[int, list[str]]:
        """Words of the distribution systems each element is assigned to."""
        out: dict[int, list[str]] = {}
        for rel in self.model.by_type("IfcRelAssignsToGroup"):
            g = rel.RelatingGroup
            if not g.is_a("IfcSystem"):
                continue
            words = [g.Name, g.Description, g.ObjectType, getattr(g, "PredefinedType", None)]
            for o in rel.RelatedObjects:
                out.setdefault(o.id(), []).extend(str(w) for w in words if w)
        return out

    def _record(self, p) -> CityObject:
        psets, qtos, typ = self.props.of(p)
        cls = self._cls(p)
        attrs = {"GlobalId": p.GlobalId, "ifc_class": p.is_a()}
        for a in ("Description", "ObjectType", "LongName", "Tag", "PredefinedType"):
            v = getattr(p, a, None)
            if v is not None:
                attrs[a] = v
        if typ is not None:
            attrs["type"] = {"name": typ.Name, "ifc_class": typ.is_a(), "GlobalId": typ.GlobalId}
        mats = ifcopenshell.util.element.get_materials(p, should_inherit=True)
        if mats:
            attrs["materials"] = [m.Name for m in mats]
        attrs["psets"], attrs["qtos"] = psets, qtos
        if cls == "storey" and getattr(p, "Elevation", None) is not None:
            attrs["elevation"] = p.Elevation * self.unit_m
        if cls == "building":
            common = psets.get("Pset_BuildingCommon", {})
            for a in ("YearOfConstruction", "NumberOfStoreys"):
                if common.get(a) is not None:
                    attrs[a] = common[a]
        return CityObject(key=self.keys[p.id()], cls=cls, uid=p.GlobalId, name=p.Name,
                          parent=self.parents[p.id()], ifc_class=p.is_a(), attributes=attrs)

    def _pipe(self, p, obj: CityObject, v: np.ndarray) -> PipeSegment:
        psets = obj.attributes["psets"]
        texts = self.systems.get(p.id(), []) + [str(getattr(p, "PredefinedType", None) or ""), p.Name or "",
                                                 p.Description or "", p.ObjectType or ""]
        utility = _utility(texts) or _utility([str(x) for props in psets.values() for x in props.values()
                                              if isinstance(x, str)]) or _utility(self.project_words)
        if p.is_a().startswith("IfcDuct"):
            utility = _utility(texts) or "unknown"  # air ducts have no CJJ 61 category
        section = _profile_mm(p, self.unit_m)
        dn = _diameter_mm(psets, self.unit_m)
        if dn is not None:
            section = {"shape": "circular", "diameter_mm": dn}
        line = _directrix(p, self.unit_m)
        line = self.placement.apply(line) if line is not None else _axis(v)
        seg = PipeSegment(utility=utility or "unknown", centerline=line, **section)
        if seg.diameter_mm:
            seg.start_invert, seg.end_invert = (float(line[i, 2]) - seg.diameter_mm / 2000 for i in (0, -1))
        return seg

    def _mesh(self, geom) -> Mesh:
        v = np.frombuffer(geom.verts_buffer, "<f8").reshape(-1, 3)
        faces = np.frombuffer(geom.faces_buffer, "<i4").reshape(-1, 3)
        mids = np.frombuffer(geom.material_ids_buffer, "<i4")
        mats = []
        for m in geom.materials:
            d = m.diffuse
            t = m.transparency
            alpha = 1.0 if t is None or math.isnan(t) else 1.0 - float(t)
            mats.append({"name": m.name, "color": [d.r(), d.g(), d.b(), alpha]})
        if len(mids) != len(faces) or (mids < 0).any() or not mats:
            mats.append(DEFAULT_MATERIAL)
            mids = np.where((mids < 0) | (mids >= len(mats) - 1), len(mats) - 1, mids) \
                if len(mids) == len(faces) else np.full(len(faces), len(mats) - 1)
        return Mesh(self.placement.apply(v), faces, mids, mats)

    def _settings(self) -> ifcopenshell.geom.settings:
        s = ifcopenshell.geom.settings()
        s.set("use-world-coords", True)
        s.set("use-material-names", True)
        s.set("apply-default-materials", True)
        return s

    def objects(self) -> Iterator[CityObject]:
        by_id = {p.id(): p for p in self.products}
        done: set[int] = set()
        held: dict[int, CityObject] = {}  # buildings wait for their elements' footprints
        it = ifcopenshell.geom.iterator(self._settings(), self.model, self.threads,
                                        exclude=[c for c in SKIP])
        if it.initialize():
            while True:
                shape = it.get()
                p = by_id.get(shape.id)
                if p is not None and shape.id not in done:
                    done.add(shape.id)
                    obj = self._record(p)
                    mesh = self._mesh(shape.geometry)
                    if len(mesh.vertices):
                        obj.mesh = mesh
                        v = mesh.vertices
                        b = self._building(p.id())
                        slab = p.is_a("IfcSlab") and getattr(p, "PredefinedType", None) != "ROOF"
                        outline = p.is_a().startswith(OUTLINE_CLASSES) and (slab or not p.is_a("IfcSlab"))
                        # exact 2D hulls where they shape a building's outline; the writer's bounding
                        # box serves the rest (windows, furniture...) at a fraction of the cost
                        hull = shapely.convex_hull(shapely.multipoints(v[:, :2])) if outline else None
                        obj.footprint = hull
                        if b is not None and obj.cls in ("element", "pipe_segment"):
                            lo, hi = v.min(axis=0), v.max(axis=0)
                            self.buildings[b].add(hull if outline else shapely.box(lo[0], lo[1], hi[0], hi[1]),
                                                  float(lo[2]), float(hi[2]), outline, slab)
                        if obj.cls == "pipe_segment":
                            obj.pipe = self._pipe(p, obj, v)
                    self.shapes += 1
                    if obj.cls == "building":
                        held[p.id()] = obj
                    else:
                        yield obj
                    if self.progress:
                        self.progress(1)
                if not it.next():
                    break
        for p in self.products:
            if p.id() in done:
                continue
            obj = self._record(p)
            if obj.cls == "building":
                held[p.id()] = obj
                continue
            if _has_body(p):
                self.failed_count += 1
                if len(self.failed) < FAILED_LISTED:
                    self.failed.append({"ifc_class": p.is_a(), "GlobalId": p.GlobalId})
            yield obj
            if self.progress:
                self.progress(1)
        for pid, acc in self.buildings.items():
            obj = held.get(pid) or self._record(by_id[pid])
            if obj.footprint is None or obj.mesh is None:
                obj.footprint = acc.footprint()
            if acc.zmin <= acc.zmax:
                obj.zmin, obj.zmax = acc.zmin, acc.zmax
            yield obj
            if self.progress:
                self.progress(1)


def _has_body(p) -> bool:
    """Whether a product has 3D body geometry the iterator should have produced."""
    rep = p.Representation
    if rep is None:
        return False
    return any((r.RepresentationIdentifier or "Body") in ("Body", "Facetation", "Mesh")
               and r.ContextOfItems.ContextType in (None, "Model") for r in rep.Representations)


def import_file(path: str | Path, *, dataset: str | None = None, engine: sa.Engine | None = None,
                force: bool = False, on_objects: Callable[[int], None] | None = None, crs: str | None = None,
                at: tuple[float, ...] | None = None, rotation: float | None = None,
                threads: int = THREADS, scenario: str | None = None) -> ImportResult:
    """Import one IFC file as one dataset (named after the file unless `dataset` is given).

    Placement: `at` (E, N[, H]) and `rotation` (degrees, counter-clockwise) override the file's own
    georeference; `crs` names the CRS of the file's map coordinates (or of `at`) when the file does not.
    `on_objects` is called with the number of objects written as the import goes. `scenario` names the renewal
    plan the dataset belongs to (cim_core.scenarios); none: the as-is model.
    """
    path = Path(path)
    engine = engine or get_engine()
    name = dataset or path.stem
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    options = {"crs": crs, "at": [float(x) for x in at] if at else None,
               "rotation": float(rotation) if rotation is not None else None, "dataset": name,
               "srid": storage_srid(engine)}
    if scenario is not None:
        options["scenario"] = scenario
    sha, existing = already_loaded(path, force, options, engine)
    if existing:
        return ImportResult(path=str(path), dataset=existing["name"], skipped=True)
    model = _open(path)
    placement = resolve(model, str(path), storage_srid(engine), crs=crs, at=at, rotation=rotation)
    reader = _Reader(model, path, placement, threads, on_objects)
    report = {"schema": model.schema, "georef": placement.report(), "options": options_key(options)}
    info = DatasetInfo(name=name, kind="ifc", source_path=str(path), sha256=sha, source_crs=placement.crs,
                       report=report, scenario=scenario)

    def objects():
        yield from reader.objects()
        # failures are known once the stream is through; write_dataset stores the report at its end
        report.update(shapes=reader.shapes, failed_count=reader.failed_count, failed=reader.failed)

    res = write_dataset(info, objects(), engine=engine)
    return ImportResult(path=str(path), dataset=name, counts=res.counts, replaced=res.replaced, report=report)


def dataset_names(files: list[Path]) -> dict[str, str]:
    """Dataset name per file: its stem, or its path below the files' common folder where stems repeat
    (a/house.ifc and b/house.ifc become a-house and b-house), so no file replaces another's dataset."""
    stems = collections.Counter(f.stem for f in files)
    if all(n == 1 for n in stems.values()):
        return {str(f): f.stem for f in files}
    root = Path(os.path.commonpath([f.absolute().parent for f in files]))
    return {str(f): f.absolute().relative_to(root).with_suffix("").as_posix().replace("/", "-")
            if stems[f.stem] > 1 else f.stem for f in files}


def _import_named(names: dict[str, str], path: Path, **options) -> ImportResult:
    return import_file(path, dataset=options.pop("dataset", None) or names[str(path)], **options)


def import_files(paths, *, workers: int = 1, force: bool = False,
                 on_file: Callable[[ImportResult], None] | None = None,
                 on_objects: Callable[[int], None] | None = None, **options) -> list[ImportResult]:
    """Import IFC files, directories and globs, one dataset per file, in `workers` processes.

    `dataset` names the dataset only when there is one file.
    """
    files = expand_sources(paths, SUFFIXES)
    if not files:
        raise InputError(f"{', '.join(map(str, paths))}: no .ifc file found")
    if len(files) > 1 and options.get("dataset"):
        raise InputError("--dataset names one dataset; with several files each is named after its file")
    one = partial(_import_named, dataset_names(files))
    return import_many(one, files, workers=workers, force=force, on_file=on_file, on_objects=on_objects,
                       **options)

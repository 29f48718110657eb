"""Placing an IFC model in the storage CRS: from its own georeference or from the user's options.

Every method ends in the same form, an affine map from the model's world coordinates (metres, as
the ifcopenshell geometry iterator gives them) into a projected CRS, followed by a pyproj
transform into the storage CRS when that CRS differs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import ifcopenshell
import ifcopenshell.util.element
import ifcopenshell.util.placement
import ifcopenshell.util.unit
import numpy as np
from pyproj import Geod

from cim_core.crs import check_extent, crs_name, parse_crs, transform, transformer
from cim_core.errors import GeoreferenceError, InputError

# A map scale further from 1 than this is not a grid scale factor but a unit mistake.
SCALE_TOLERANCE = 0.05
NO_GEOREF_HINT = ("give --at E,N[,H] in the storage CRS (and --rotation DEG), or --crs EPSG:N when the model's "
                  "coordinates are already projected")


@dataclass
class Placement:
    """world metres -> `crs` by `matrix` @ p + `offset`, then -> storage CRS."""
    method: str
    crs: str  # 'EPSG:N' the affine map lands in
    storage_srid: int
    matrix: np.ndarray = field(default_factory=lambda: np.eye(3))
    offset: np.ndarray = field(default_factory=lambda: np.zeros(3))
    notes: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    def __post_init__(self):
        self._same_crs = parse_crs(self.crs) == parse_crs(self.storage_srid)
        self._linear = not np.allclose(self.matrix, np.eye(3)) or bool(np.any(self.offset))
        self.source = ""
        self._checked = False

    def apply(self, xyz: np.ndarray) -> np.ndarray:
        """(N, 3) world metres -> (N, 3) storage CRS (new array)."""
        out = xyz @ self.matrix.T + self.offset if self._linear else np.array(xyz, dtype=np.float64)
        if not self._checked and len(out):
            # model coordinates taken as they are (--crs) can only be checked once there are some
            lo, hi = out[:, :2].min(axis=0), out[:, :2].max(axis=0)
            check_extent(self.source, parse_crs(self.crs), (lo[0], lo[1], hi[0], hi[1]), self.storage_srid)
            self._checked = True
        if not self._same_crs:
            x, y, z = transformer(self.crs, self.storage_srid).transform(out[:, 0], out[:, 1], out[:, 2])
            out = np.column_stack([x, y, z])
        return out

    def check(self, source: str) -> None:
        """Refuse a placement whose origin lies outside the storage CRS's area of use."""
        self.source = source
        if self._linear:
            e, n = self.offset[0], self.offset[1]
            check_extent(source, parse_crs(self.crs), (e, n, e, n), self.storage_srid)
            self._checked = True

    def report(self) -> dict:
        return {"method": self.method, "crs": self.crs, **self.details, "notes": self.notes}


def _rotation(theta: float, k: float = 1.0, kz: float = 1.0) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[k * c, -k * s, 0.0], [k * s, k * c, 0.0], [0.0, 0.0, kz]])


def _crs_name(value: str | None, path: str, what: str) -> str | None:
    if not value:
        return None
    try:
        return crs_name(parse_crs(value))
    except InputError:
        raise GeoreferenceError(f"{path}: {what} names the CRS {value!r}, which is not known",
                                hint="give --crs EPSG:N") from None


def _map_unit_m(crs: str, ifc_unit) -> float:
    """Metres per map unit: from the CRS's axis, else the IFC MapUnit."""
    try:
        return float(parse_crs(crs).axis_info[0].unit_conversion_factor)
    except (IndexError, InputError):
        pass
    if ifc_unit is not None and ifc_unit.is_a("IfcSIUnit"):
        return ifcopenshell.util.unit.get_prefix_multiplier(ifc_unit.Prefix)
    return 1.0


def _grid_scale(scale: float | None, unit_m: float, map_m: float, notes: list[str]) -> float:
    """The metre-to-metre scale of a map conversion, recognising a unit conversion given upside down.

    IFC: map = E0 + Scale * local, with local in project units, so Scale should carry the unit
    conversion (0.001 for a millimetre project on a metre grid). Exporters also write the inverse
    (1000) or leave it out (1.0); of the readings, the one that gives a grid scale near 1 is used.
    """
    s = 1.0 if scale is None else float(scale)
    literal = s * map_m / unit_m
    if abs(literal - 1) <= SCALE_TOLERANCE:
        return literal
    readings = [(map_m / (s * unit_m), (f"Scale {s:g} is the inverse of the unit conversion "
                                        f"(length unit {unit_m:g} m); used {1 / s:g}")),
                (s, f"Scale {s:g} leaves out the unit conversion (length unit {unit_m:g} m); applied it")]
    for k, note in readings:
        if abs(k - 1) <= SCALE_TOLERANCE:
            notes.append(note)
            return k
    notes.append(f"Scale {s:g} gives a grid scale of {literal:g}; taken literally")
    return literal


def _model_context(model: ifcopenshell.file):
    ctxs = [c for c in model.by_type("IfcGeometricRepresentationContext", include_subtypes=False)
            if (c.ContextType or "Model") == "Model"]
    return ctxs[0] if ctxs else None


def _from_map_conversion(model, path, unit_m, crs_option, srid) -> Placement | None:
    if model.schema == "IFC2X3":
        return None
    ops = [op for op in model.by_type("IfcMapConversion")
           if op.SourceCRS is not None and op.SourceCRS.is_a("IfcGeometricRepresentationContext")]
    if not ops:
        return None
    ops.sort(key=lambda op: (op.SourceCRS.ContextType or "Model") != "Model")
    op = ops[0]
    target = op.TargetCRS
    notes: list[str] = []
    crs = _crs_name(target.Name if target is not None else None, path, "IfcProjectedCRS")
    if crs_option and crs and parse_crs(crs_option) != parse_crs(crs):
        notes.append(f"--crs {crs_option} replaces the file's {crs}")
    crs = crs_name(parse_crs(crs_option)) if crs_option else crs
    if crs is None:
        raise GeoreferenceError(f"{path}: IfcMapConversion has no target CRS", hint="give --crs EPSG:N")
    map_m = _map_unit_m(crs, getattr(target, "MapUnit", None))
    k = _grid_scale(op.Scale, unit_m, map_m, notes)
    kx = ky = kz = 1.0
    if op.is_a("IfcMapConversionScaled"):
        kx, ky, kz = op.FactorX, op.FactorY, op.FactorZ
    a, b = op.XAxisAbscissa, op.XAxisOrdinate
    theta = math.atan2(b, a) if a is not None and b is not None else 0.0
    m = _rotation(theta, k, kz)
    m[:, 0] *= kx
    m[:, 1] *= ky
    off = np.array([op.Eastings, op.Northings, op.OrthogonalHeight or 0.0], float) * map_m
    return Placement("IfcMapConversion", crs, srid, m, off, notes,
                     {"eastings": op.Eastings, "northings": op.Northings, "height": op.OrthogonalHeight,
                      "rotation_deg": round(math.degrees(theta), 6), "scale": k, "file_scale": op.Scale})


def _from_epset(model, path, unit_m, crs_option, srid) -> Placement | None:
    holders = model.by_type("IfcProject") + model.by_type("IfcSite")
    for h in holders:
        mc = ifcopenshell.util.element.get_pset(h, "ePSet_MapConversion")
        if not mc or mc.get("Eastings") is None or mc.get("Northings") is None:
            continue
        pc = ifcopenshell.util.element.get_pset(h, "ePSet_ProjectedCRS") or {}
        for other in holders:
            pc = pc or ifcopenshell.util.element.get_pset(other, "ePSet_ProjectedCRS") or {}
        notes: list[str] = []
        crs = crs_name(parse_crs(crs_option)) if crs_option else _crs_name(pc.get("Name"), path, "ePSet_ProjectedCRS")
        if crs is None:
            raise GeoreferenceError(f"{path}: ePSet_MapConversion has no ePSet_ProjectedCRS Name",
                                    hint="give --crs EPSG:N")
        map_m = _map_unit_m(crs, None)
        k = _grid_scale(mc.get("Scale"), unit_m, map_m, notes)
        a, b = mc.get("XAxisAbscissa"), mc.get("XAxisOrdinate")
        theta = math.atan2(b, a) if a is not None and b is not None else 0.0
        off = np.array([mc["Eastings"], mc["Northings"], mc.get("OrthogonalHeight") or 0.0], float) * map_m
        return Placement("ePSet_MapConversion", crs, srid, _rotation(theta, k), off, notes,
                         {"eastings": mc["Eastings"], "northings": mc["Northings"],
                          "height": mc.get("OrthogonalHeight"), "rotation_deg": round(math.degrees(theta), 6),
                          "scale": k})
    return None


def _dms(v) -> float | None:
    if not v:
        return None
    parts = list(v) + [0] * (4 - len(v))
    return parts[0] + parts[1] / 60 + parts[2] / 3600 + parts[3] / 3.6e9


def _from_site(model, path, unit_m, srid) -> Placement | None:
    site = next(iter(model.by_type("IfcSite")), None)
    if site is None:
        return None
    lat, lon = _dms(site.RefLatitude), _dms(site.RefLongitude)
    if lat is None or lon is None or (lat == 0 and lon == 0):  # (0, 0) is an exporter's default, not a place
        return None
    if site.ObjectPlacement is not None:
        origin = ifcopenshell.util.placement.get_local_placement(site.ObjectPlacement)[:3, 3] * unit_m
    else:
        origin = np.zeros(3)
    ctx = _model_context(model)
    tn = np.array([0.0, 1.0])
    if ctx is not None and ctx.TrueNorth is not None:
        tn = np.array(ctx.TrueNorth.DirectionRatios[:2], float)
        tn /= np.linalg.norm(tn)
    check_extent(str(path), parse_crs("OGC:CRS84"), (lon, lat, lon, lat), srid)
    # The projection's local Jacobian maps metres east/north at the reference point to grid metres;
    # it carries the grid convergence (true vs grid north) and the point scale factor.
    geod = Geod(ellps="WGS84")
    step = 10.0
    lons, lats, _ = geod.fwd([lon, lon], [lat, lat], [90, 0], [step, step])  # a point east, one north
    gx, gy = transform(4326, srid, np.array([lon, *lons]), np.array([lat, *lats]))
    jac = np.array([[gx[1] - gx[0], gx[2] - gx[0]], [gy[1] - gy[0], gy[2] - gy[0]]]) / step
    # local (x, y) -> (east, north): the model's true north `tn` becomes north.
    enu = np.array([[tn[1], -tn[0]], [tn[0], tn[1]]])
    m = np.eye(3)
    m[:2, :2] = jac @ enu
    elevation = (site.RefElevation or 0.0) * unit_m
    off = np.array([gx[0], gy[0], elevation]) - m @ origin
    grid_north = math.degrees(math.atan2(-(jac @ [0, 1])[0], (jac @ [0, 1])[1]))
    rot = math.degrees(math.atan2(m[1, 0], m[0, 0]))
    return Placement("IfcSite reference", f"EPSG:{srid}", srid, m, off, [],
                     {"latitude": round(lat, 8), "longitude": round(lon, 8), "elevation": elevation,
                      "true_north_deg": round(math.degrees(math.atan2(-tn[0], tn[1])), 6),
                      "grid_convergence_deg": round(-grid_north, 6), "rotation_deg": round(rot, 6)})


def resolve(model: ifcopenshell.file, path: str, storage_srid: int, *, crs: str | None = None,
            at: tuple[float, ...] | None = None, rotation: float | None = None) -> Placement:
    """The placement of a model: --at, else the file's own georeference (first that applies), else --crs.

    `at` and `rotation` (degrees, counter-clockwise from grid east to the model's x axis, as
    IfcMapConversion's XAxisAbscissa/XAxisOrdinate) are in `crs`, or the storage CRS.
    """
    path = str(path)
    unit_m = ifcopenshell.util.unit.calculate_unit_scale(model)
    own = None
    if at is None:
        own = (_from_map_conversion(model, path, unit_m, crs, storage_srid)
               or _from_epset(model, path, unit_m, crs, storage_srid)
               or _from_site(model, path, unit_m, storage_srid))
    if own is not None:
        if rotation is not None:
            own.notes.append("--rotation ignored: the file is georeferenced (give --at to override)")
        own.check(path)
        own.details["length_unit_m"] = unit_m
        return own
    target = crs_name(parse_crs(crs)) if crs else f"EPSG:{storage_srid}"
    if at is not None:
        if len(at) not in (2, 3):
            raise InputError(f"--at {','.join(map(str, at))}: give E,N or E,N,H")
        theta = math.radians(rotation or 0.0)
        off = np.array([at[0], at[1], at[2] if len(at) == 3 else 0.0], float)
        p = Placement("--at", target, storage_srid, _rotation(theta), off, [],
                      {"eastings": float(off[0]), "northings": float(off[1]), "height": float(off[2]),
                       "rotation_deg": rotation or 0.0, "length_unit_m": unit_m})
    elif crs:
        p = Placement("--crs", target, storage_srid, notes=["model coordinates taken as " + target],
                      details={"length_unit_m": unit_m})
    else:
        raise GeoreferenceError(f"{path}: no georeference (no IfcMapConversion, ePSet_MapConversion or IfcSite "
                                f"RefLatitude/RefLongitude)", hint=NO_GEOREF_HINT)
    p.check(path)
    return p

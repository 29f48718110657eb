"""IFC4 buildings standing on footprints of the district, built with ifcopenshell.api.

Each building has a site, storeys at their elevations, rooms (IfcSpace), exterior and partition walls,
floor and roof slabs, windows and doors filling openings cut in the walls, surface styles (transparent
glazing), materials, Pset_BuildingCommon and an IfcMapConversion to EPSG:4547 whose origin is a corner
of the footprint, so the model lands on its footprint in the GeoPackage. Service pipes (IfcPipeSegment in
an IfcDistributionSystem) may run from the building to nodes of the street networks.

Geometry is written as plain extrusions and swept disks directly (fast, and exactly what is meant);
spatial structure, relations, property sets, styles, materials, systems and georeferencing go through
ifcopenshell.api. GlobalIds derive from the seed, so the same seed writes the same file.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

import ifcopenshell
import ifcopenshell.api.aggregate
import ifcopenshell.api.context
import ifcopenshell.api.feature
import ifcopenshell.api.georeference
import ifcopenshell.api.material
import ifcopenshell.api.project
import ifcopenshell.api.pset
import ifcopenshell.api.root
import ifcopenshell.api.spatial
import ifcopenshell.api.style
import ifcopenshell.api.system
import ifcopenshell.api.unit
import ifcopenshell.guid

from .layout import CRS

TIME_STAMP = "2024-01-01T00:00:00+08:00"  # fixed, so that a seed always writes the same bytes
# Per use: room length along the building (m), room name, window width and height (m), window spacing
# (m), sill height (m), wall thickness (m), wall colour (RGB 0-1), wall material.
IFC_USE = {
    "education": {
        "room": 9.0,
        "room_name": "教室",
        "window": (2.4, 1.8),
        "spacing": 3.6,
        "sill": 0.9,
        "wall": 0.3,
        "colour": (0.93, 0.90, 0.84),
        "material": "reinforced concrete",
    },
    "medical": {
        "room": 7.2,
        "room_name": "病房",
        "window": (1.8, 1.6),
        "spacing": 3.6,
        "sill": 0.9,
        "wall": 0.3,
        "colour": (0.95, 0.95, 0.95),
        "material": "reinforced concrete",
    },
    "office": {
        "room": 8.4,
        "room_name": "办公室",
        "window": (3.2, 2.6),
        "spacing": 4.2,
        "sill": 0.5,
        "wall": 0.3,
        "colour": (0.55, 0.62, 0.70),
        "material": "reinforced concrete",
    },
    "residential": {
        "room": 6.6,
        "room_name": "住宅",
        "window": (1.5, 1.5),
        "spacing": 3.3,
        "sill": 0.9,
        "wall": 0.24,
        "colour": (0.72, 0.55, 0.45),
        "material": "brick",
    },
}
STYLES = {  # name: (RGB, transparency)
    "glass": ((0.55, 0.74, 0.86), 0.65),
    "door": ((0.45, 0.30, 0.20), 0.0),
    "slab": ((0.75, 0.75, 0.72), 0.0),
    "space": ((0.90, 0.90, 0.60), 0.85),
    "partition": ((0.96, 0.96, 0.94), 0.0),
    # CJJ 61-2017 pipe colours
    "water": ((0.0, 1.0, 1.0), 0.0),
    "sewage": ((76 / 255, 57 / 255, 38 / 255), 0.0),
    "rain": ((76 / 255, 57 / 255, 38 / 255), 0.0),
}
SYSTEMS = {  # utility: (IfcDistributionSystem PredefinedType, name, CJJ 61 code)
    "water": ("WATERSUPPLY", "给水系统", "JS"),
    "sewage": ("SEWAGE", "污水系统", "WS"),
    "rain": ("STORMWATER", "雨水系统", "YS"),
}
SLAB = 0.15  # floor slab thickness (m)
ROOF = 0.2
PARTITION = 0.12
DOOR = {"residential": (1.2, 2.2), "other": (2.4, 2.7)}  # width, height (m)
STAIRWELL = 13.0  # m of a residential slab per entrance


@dataclass
class Lateral:
    """A service pipe from the building to a node of a street network."""

    utility: str  # water | sewage | rain
    node_id: str
    end: tuple[float, float, float]  # world x, y and the pipe's centreline elevation at the node
    diameter_mm: int
    material: str
    # The run's points before the end (m from the riser in plan, axis elevation), from the riser's foot; none:
    # straight from the foot level with the end (water) or falling 1 % to it (drains).
    bends: tuple[tuple[float, float], ...] = ()


@dataclass
class BuildingModel:
    key: str  # file stem
    name: str
    use: str
    building_id: str
    rect: tuple[float, float, float, float]  # footprint in EPSG:4547
    floors: int
    storey_h: float
    year: int
    structure: str
    ground_z: float
    scenario: str = "as-is"
    colour: tuple[float, float, float] | None = None
    wall: float | None = None
    window: tuple[float, float] | None = None
    laterals: list[Lateral] = field(default_factory=list)

    def frame(self) -> tuple[float, float, float, float, float, float]:
        """(origin x, origin y, cos, sin, length, depth): the local x axis runs along the long side."""
        x0, y0, x1, y1 = self.rect
        if x1 - x0 >= y1 - y0:
            return x0, y0, 1.0, 0.0, x1 - x0, y1 - y0
        return x1, y0, 0.0, 1.0, y1 - y0, x1 - x0

    def to_local(self, x: float, y: float, z: float) -> tuple[float, float, float]:
        ox, oy, c, s, _, _ = self.frame()
        dx, dy = x - ox, y - oy
        return (c * dx + s * dy, -s * dx + c * dy, z - self.ground_z)

    def riser(self, lat: Lateral) -> tuple[float, float]:
        """Where the lateral's riser stands (local x, y): 0.8 m inside the wall facing the node (a rain
        downpipe 0.15 m outside it)."""
        _, _, _, _, lx, ly = self.frame()
        ex, ey, _ = self.to_local(*lat.end)
        inset = -0.15 if lat.utility == "rain" else (self.wall or IFC_USE[self.use]["wall"]) + 0.8
        return min(max(ex, inset), lx - inset), min(max(ey, inset), ly - inset)

    def to_world(self, x: float, y: float) -> tuple[float, float]:
        ox, oy, c, s, _, _ = self.frame()
        return ox + c * x - s * y, oy + s * x + c * y


class _Writer:
    def __init__(self, model: BuildingModel):
        self.m = model
        self.spec = dict(IFC_USE[model.use])
        for k in ("colour", "wall", "window"):
            if getattr(model, k) is not None:
                self.spec[k] = getattr(model, k)
        f = self.f = ifcopenshell.api.project.create_file(version="IFC4")
        f.header.file_name.time_stamp = TIME_STAMP
        f.header.file_name.name = f"{model.key}.ifc"
        self.project = ifcopenshell.api.root.create_entity(
            f, ifc_class="IfcProject", name=f"驻马店中心城区 {model.name}"
        )
        units = [
            ifcopenshell.api.unit.add_si_unit(f, unit_type=t)
            for t in ("LENGTHUNIT", "AREAUNIT", "VOLUMEUNIT")
        ]
        ifcopenshell.api.unit.assign_unit(f, units=units)
        model_ctx = ifcopenshell.api.context.add_context(f, context_type="Model")
        self.body = ifcopenshell.api.context.add_context(
            f, context_type="Model", context_identifier="Body", target_view="MODEL_VIEW", parent=model_ctx
        )
        self.z_dir = f.createIfcDirection((0.0, 0.0, 1.0))
        self.styles = {k: self._style(k, rgb, t) for k, (rgb, t) in STYLES.items()}
        self.styles["wall"] = self._style("wall", self.spec["colour"], 0.0)
        self.materials: dict[str, list] = {}
        # Placements are set only after the api has related everything: its relating functions would
        # otherwise recompute every placement already in place (slow, and needless here).
        self.placements: list[tuple] = []

    # -- small geometry helpers ---------------------------------------------------------------------

    def _style(self, name, rgb, transparency):
        style = ifcopenshell.api.style.add_style(self.f, name=name)
        ifcopenshell.api.style.add_surface_style(
            self.f,
            style=style,
            ifc_class="IfcSurfaceStyleShading",
            attributes={
                "SurfaceColour": {"Name": None, "Red": rgb[0], "Green": rgb[1], "Blue": rgb[2]},
                "Transparency": transparency,
            },
        )
        return style

    def _point(self, xyz):
        return self.f.createIfcCartesianPoint(tuple(round(float(v), 4) for v in xyz))

    def _placement(self, rel, xyz=(0.0, 0.0, 0.0)):
        return self.f.createIfcLocalPlacement(rel, self.f.createIfcAxis2Placement3D(self._point(xyz)))

    def _shape(self, product, item, style=None, rep_type="SweptSolid"):
        f = self.f
        if style is not None:
            f.createIfcStyledItem(item, [style], None)
        rep = f.createIfcShapeRepresentation(self.body, "Body", rep_type, [item])
        product.Representation = f.createIfcProductDefinitionShape(None, None, [rep])

    def _box(self, dx, dy, dz):
        f = self.f
        profile = f.createIfcRectangleProfileDef(
            "AREA",
            None,
            f.createIfcAxis2Placement2D(self._point((dx / 2, dy / 2))),
            round(dx, 4),
            round(dy, 4),
        )
        return f.createIfcExtrudedAreaSolid(
            profile, f.createIfcAxis2Placement3D(self._point((0, 0, 0))), self.z_dir, round(dz, 4)
        )

    def place(self, product, rel, at=(0.0, 0.0, 0.0)):
        placement = self._placement(rel, at)
        self.placements.append((product, placement))
        return placement

    def element(self, ifc_class, rel, at, size, style, name=None, material=None, predefined_type=None):
        e = ifcopenshell.api.root.create_entity(
            self.f, ifc_class=ifc_class, name=name, predefined_type=predefined_type
        )
        self.place(e, rel, at)
        self._shape(e, self._box(*size), self.styles[style])
        if material:
            self.materials.setdefault(material, []).append(e)
        return e

    # -- the building ------------------------------------------------------------------------------

    def build(self) -> ifcopenshell.file:
        f, m = self.f, self.m
        ox, oy, c, s, lx, ly = m.frame()
        site = ifcopenshell.api.root.create_entity(f, ifc_class="IfcSite", name="驿城区中心城区")
        site.RefElevation = m.ground_z
        site_at = self.place(site, None)
        building = ifcopenshell.api.root.create_entity(f, ifc_class="IfcBuilding", name=m.name)
        building.Description = m.use
        building_at = self.place(building, site_at)
        ifcopenshell.api.aggregate.assign_object(f, products=[site], relating_object=self.project)
        ifcopenshell.api.aggregate.assign_object(f, products=[building], relating_object=site)
        self._georeference(ox, oy, c, s)
        self._building_psets(building)
        self._storeys(building, building_at, lx, ly)
        if m.laterals:
            self._laterals(site, site_at)
        for name, products in self.materials.items():
            material = ifcopenshell.api.material.add_material(f, name=name)
            ifcopenshell.api.material.assign_material(
                f, products=products, type="IfcMaterial", material=material
            )
        for product, placement in self.placements:
            product.ObjectPlacement = placement
        return f

    def _georeference(self, ox, oy, c, s):
        """An IfcMapConversion of the local origin (a corner of the footprint) onto EPSG:4547."""
        f = self.f
        ifcopenshell.api.georeference.add_georeferencing(f, ifc_class="IfcMapConversion", name=CRS)
        length_unit = next(u for u in f.by_type("IfcSIUnit") if u.UnitType == "LENGTHUNIT")
        ifcopenshell.api.georeference.edit_georeferencing(
            f,
            projected_crs={
                "Name": CRS,
                "Description": "CGCS2000 / 3-degree Gauss-Kruger CM 114E",
                "GeodeticDatum": "CGCS2000",
                "VerticalDatum": "1985 National Height Datum",
                "MapUnit": length_unit,
            },
            coordinate_operation={
                "Eastings": round(ox, 3),
                "Northings": round(oy, 3),
                "OrthogonalHeight": round(self.m.ground_z, 3),
                "XAxisAbscissa": c,
                "XAxisOrdinate": s,
                "Scale": 1.0,
            },
        )

    def _building_psets(self, building):
        f, m = self.f, self.m
        pset = ifcopenshell.api.pset.add_pset(f, product=building, name="Pset_BuildingCommon")
        ifcopenshell.api.pset.edit_pset(
            f,
            pset=pset,
            properties={
                "BuildingID": m.building_id,
                "YearOfConstruction": str(m.year),
                "NumberOfStoreys": m.floors,
                "OccupancyType": m.use,
            },
        )
        pset = ifcopenshell.api.pset.add_pset(f, product=building, name="CIM_Sample")
        ifcopenshell.api.pset.edit_pset(
            f,
            pset=pset,
            properties={
                "FootprintId": m.building_id,
                "Scenario": m.scenario,
                "Structure": m.structure,
                "Use": m.use,
            },
        )

    def _storeys(self, building, building_at, lx, ly):
        """The storeys with their elements, and the roof on the top one."""
        f, m = self.f, self.m
        walls, windows = [], []
        storeys = []
        for k in range(m.floors):
            z = round(k * m.storey_h, 3)
            storey = ifcopenshell.api.root.create_entity(f, ifc_class="IfcBuildingStorey", name=f"{k + 1}F")
            storey.Elevation = z
            storeys.append((storey, self.place(storey, building_at, (0, 0, z))))
            contained, w, win = self._storey(*storeys[-1], k, lx, ly)
            walls += w
            windows += win
            ifcopenshell.api.spatial.assign_container(f, products=contained, relating_structure=storey)
        ifcopenshell.api.aggregate.assign_object(
            f, products=[s for s, _ in storeys], relating_object=building
        )
        top, top_at = storeys[-1]
        roof = self.element(
            "IfcSlab",
            top_at,
            (0, 0, m.storey_h),
            (lx, ly, ROOF),
            "slab",
            "屋面板",
            "reinforced concrete",
            predefined_type="ROOF",
        )
        ifcopenshell.api.spatial.assign_container(f, products=[roof], relating_structure=top)
        self._shared_pset(walls, "Pset_WallCommon", {"IsExternal": True, "LoadBearing": True})
        self._shared_pset(windows, "Pset_WindowCommon", {"IsExternal": True})

    def _storey(self, storey, rel, k, lx, ly):
        """Storey k: its floor slab, exterior walls with doors and windows, rooms and partitions.

        Returns the elements it contains, its exterior walls and its windows."""
        floor = self.element(
            "IfcSlab",
            rel,
            (0, 0, -SLAB),
            (lx, ly, SLAB),
            "slab",
            f"{k + 1}F楼板",
            "reinforced concrete",
            predefined_type="FLOOR",
        )
        fills, walls, windows = self._exterior_walls(rel, k, lx, ly)
        partitions = self._rooms(storey, rel, k, lx, ly)
        return [floor, *fills, *partitions], walls, windows

    def _exterior_walls(self, rel, k, lx, ly):
        """South and north walls full length, west and east between them, with their doors and windows.

        Returns the walls with their doors and windows (in order), the walls, and the windows."""
        m, spec = self.m, self.spec
        t, h = spec["wall"], m.storey_h
        sides = {  # (at, size, along x)
            "S": ((0, 0, 0), (lx, t, h), True),
            "N": ((0, ly - t, 0), (lx, t, h), True),
            "W": ((0, t, 0), (t, ly - 2 * t, h), False),
            "E": ((lx - t, t, 0), (t, ly - 2 * t, h), False),
        }
        contained, walls, windows = [], [], []
        doors = self._door_positions(lx) if k == 0 else {}
        ww, wh = spec["window"]
        dw, dh = DOOR["residential" if m.use == "residential" else "other"]
        for side, (at, size, along_x) in sides.items():
            wall = self.element(
                "IfcWall",
                rel,
                at,
                size,
                "wall",
                f"{k + 1}F外墙{side}",
                spec["material"],
                predefined_type="SOLIDWALL",
            )
            wall_at = self.placements[-1][1]
            walls.append(wall)
            contained.append(wall)
            wall_len = size[0] if along_x else size[1]
            door_spans = [(x - dw / 2 - 0.3, x + dw / 2 + 0.3) for x in doors.get(side, [])]
            for x in doors.get(side, []):
                contained.append(
                    self._fill(wall, wall_at, rel, at, along_x, x - dw / 2, 0.0, dw, dh, "IfcDoor", "door")
                )
            n = int((wall_len - 1.2) // spec["spacing"])
            for j in range(n):
                x = (wall_len - n * spec["spacing"]) / 2 + spec["spacing"] * (j + 0.5) - ww / 2
                if any(a < x + ww and x < b for a, b in door_spans):
                    continue
                win = self._fill(
                    wall, wall_at, rel, at, along_x, x, spec["sill"], ww, wh, "IfcWindow", "glass"
                )
                windows.append(win)
                contained.append(win)
        return contained, walls, windows

    def _rooms(self, storey, rel, k, lx, ly):
        """Rooms along the building (aggregated in the storey), with partitions between them, returned."""
        spec, t, h = self.spec, self.spec["wall"], self.m.storey_h
        n_rooms = max(1, round((lx - 2 * t) / spec["room"]))
        rw = (lx - 2 * t) / n_rooms
        spaces, partitions = [], []
        for r in range(n_rooms):
            space = self.element(
                "IfcSpace",
                rel,
                (t + r * rw, t, 0),
                (rw, ly - 2 * t, h - SLAB),
                "space",
                f"{k + 1}{r + 1:02d}",
            )
            space.LongName = spec["room_name"]
            spaces.append(space)
            if r:
                partitions.append(
                    self.element(
                        "IfcWall",
                        rel,
                        (t + r * rw - PARTITION / 2, t, 0),
                        (PARTITION, ly - 2 * t, h - SLAB),
                        "partition",
                        f"{k + 1}F隔墙{r}",
                        "brick",
                        predefined_type="PARTITIONING",
                    )
                )
        ifcopenshell.api.aggregate.assign_object(self.f, products=spaces, relating_object=storey)
        return partitions

    def _door_positions(self, lx) -> dict[str, list[float]]:
        """Ground-floor doors along the wall: residential stairwells face north, other entrances south."""
        if self.m.use == "residential":
            n = max(1, round(lx / STAIRWELL))
            return {"N": [lx * (u + 0.5) / n for u in range(n)]}
        return {"S": [lx / 2]}

    def _fill(self, wall, wall_placement, rel, wall_at, along_x, x, z, w, h, ifc_class, style):
        """An opening through the wall at x (along the wall) and height z, filled by a door or window."""
        t = self.spec["wall"]
        f = self.f
        if along_x:
            o_at, o_size, p_at, p_size = (x, -0.05, z), (w, t + 0.1, h), (x, t / 2 - 0.03, z), (w, 0.06, h)
        else:
            o_at, o_size, p_at, p_size = (-0.05, x, z), (t + 0.1, w, h), (t / 2 - 0.03, x, z), (0.06, w, h)
        opening = ifcopenshell.api.root.create_entity(f, ifc_class="IfcOpeningElement")
        self.place(opening, wall_placement, o_at)
        self._shape(opening, self._box(*o_size))
        ifcopenshell.api.feature.add_feature(f, feature=opening, element=wall)
        at = tuple(a + b for a, b in zip(wall_at, p_at))
        filling = self.element(
            ifc_class, rel, at, p_size, style, None, "glass" if ifc_class == "IfcWindow" else "wood"
        )
        filling.OverallWidth, filling.OverallHeight = round(w, 3), round(h, 3)
        ifcopenshell.api.feature.add_filling(f, opening=opening, element=filling)
        return filling

    def _shared_pset(self, products, name, properties):
        if not products:
            return
        pset = ifcopenshell.api.pset.add_pset(self.f, product=products[0], name=name)
        ifcopenshell.api.pset.edit_pset(self.f, pset=pset, properties=properties)
        rel = pset.DefinesOccurrence[0]
        rel.RelatedObjects = list(rel.RelatedObjects) + products[1:]

    def _laterals(self, site, site_at):
        """Service pipes: from a riser (rain: a downpipe outside the wall) down and out to the street node,
        through the lateral's bends."""
        f, m = self.f, self.m
        systems = {}
        for lat in m.laterals:
            ex, ey, ez = m.to_local(*lat.end)
            rx, ry = m.riser(lat)
            run = ((ex - rx) ** 2 + (ey - ry) ** 2) ** 0.5
            fall = 0.0 if lat.utility == "water" else 0.01 * run  # drains fall 1 % towards the street
            top = {"water": 0.5, "sewage": 0.0, "rain": m.floors * m.storey_h + ROOF}[lat.utility]
            out = [(rx + (ex - rx) * d / run, ry + (ey - ry) * d / run, z - m.ground_z) for d, z in lat.bends]
            pts = [(rx, ry, top), *(out or [(rx, ry, ez + fall)]), (ex, ey, ez)]
            pipe = ifcopenshell.api.root.create_entity(
                f, ifc_class="IfcPipeSegment", name=f"{lat.utility}入户管", predefined_type="RIGIDSEGMENT"
            )
            self.place(pipe, site_at)
            solid = f.createIfcSweptDiskSolid(
                f.createIfcPolyline([self._point(p) for p in pts]), lat.diameter_mm / 2000.0, None, None, None
            )
            self._shape(pipe, solid, self.styles[lat.utility], "AdvancedSweptSolid")
            self.materials.setdefault(lat.material, []).append(pipe)
            pset = ifcopenshell.api.pset.add_pset(f, product=pipe, name="Pset_PipeSegmentTypeCommon")
            ifcopenshell.api.pset.edit_pset(
                f, pset=pset, properties={"NominalDiameter": lat.diameter_mm / 1000.0}
            )
            pset = ifcopenshell.api.pset.add_pset(f, product=pipe, name="CIM_Pipe")
            kind, label, code = SYSTEMS[lat.utility]
            ifcopenshell.api.pset.edit_pset(
                f,
                pset=pset,
                properties={
                    "Utility": lat.utility,
                    "CJJCode": code,
                    "DiameterMm": lat.diameter_mm,
                    "Material": lat.material,
                    "StreetNodeId": lat.node_id,
                },
            )
            ifcopenshell.api.spatial.assign_container(f, products=[pipe], relating_structure=site)
            if lat.utility not in systems:
                system = ifcopenshell.api.system.add_system(f, ifc_class="IfcDistributionSystem")
                system.Name, system.PredefinedType = label, kind
                systems[lat.utility] = system
            ifcopenshell.api.system.assign_system(f, products=[pipe], system=systems[lat.utility])


def write_ifc(model: BuildingModel, path: Path, seed: int) -> dict[str, int]:
    """Write the building to path; returns counts of its main element classes."""
    f = _Writer(model).build()
    # The api fills unordered SETs (related objects, units) in hash order; sort them by entity id.
    for e in f.by_type("IfcRelationship") + f.by_type("IfcUnitAssignment"):
        for k, v in enumerate(e):
            if isinstance(v, tuple) and v and all(isinstance(x, ifcopenshell.entity_instance) for x in v):
                e[k] = sorted(v, key=lambda x: x.id())
    for k, e in enumerate(f.by_type("IfcRoot")):
        e.GlobalId = ifcopenshell.guid.compress(
            uuid.uuid5(uuid.NAMESPACE_URL, f"cim-sample/{seed}/{model.key}/{k}").hex
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    f.write(str(path))
    return {
        c: len(f.by_type(c))
        for c in (
            "IfcBuildingStorey",
            "IfcSpace",
            "IfcWall",
            "IfcSlab",
            "IfcWindow",
            "IfcDoor",
            "IfcPipeSegment",
        )
    }

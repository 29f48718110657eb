"""The feature collections: one per kind of city object, one per pipe utility, and pipe nodes.

Each collection knows its FROM clause, its geometry column, its typed properties and how a
property name of a filter or sortby reads in SQL. Extents and attribute keys (for queryables)
cost a scan, so they are cached until change_log says the model changed.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa

from cim_core import schema
from cim_core.errors import NotFoundError

from .cql2 import FilterError, Prop

objects, datasets = schema.city_objects, schema.datasets
segments, nodes = schema.pipe_segments, schema.pipe_nodes

_KINDS = {sa.Text: "string", sa.Float: "number", sa.BigInteger: "integer", sa.Integer: "integer",
          sa.SmallInteger: "integer", sa.Date: "date", sa.Boolean: "boolean"}
JSON_SCHEMA = {"string": {"type": "string"}, "number": {"type": "number"}, "integer": {"type": "integer"},
               "date": {"type": "string", "format": "date"}, "boolean": {"type": "boolean"}}


def kind_of(col: sa.Column) -> str:
    return next(k for t, k in _KINDS.items() if isinstance(col.type, t))


# Typed properties of every city object, in output order: (property name, column).
BASE_PROPS = [("name", objects.c.name), ("class", objects.c["class"]), ("ifc_class", objects.c.ifc_class),
              ("uid", objects.c.uid), ("dataset", datasets.c.name), ("parent_id", objects.c.parent_id),
              ("lod", objects.c.lod), ("zmin", objects.c.zmin), ("zmax", objects.c.zmax),
              ("valid_from", objects.c.valid_from), ("valid_to", objects.c.valid_to)]


def _typed_columns(table: sa.Table) -> list[tuple[str, sa.Column]]:
    """Every non-geometry column of a table joined to city_objects, as (property name, column)."""
    return [(str(c.name), c) for c in table.c if c.name != "object_id" and not isinstance(c.type, schema.Geometry)]


SEGMENT_PROPS = _typed_columns(segments)
NODE_PROPS = _typed_columns(nodes)

OBJECT_COLLECTIONS = [
    # id, title, classes, description
    ("buildings", "Buildings", ("building", "building_part"), "Building and building part footprints"),
    ("roads", "Roads", ("road",), "Road surfaces and centrelines"),
    ("landuse", "Land use", ("landuse",), "Land-use parcels"),
    ("water", "Water bodies", ("water",), "Rivers, lakes and ponds"),
    ("green", "Green spaces", ("green",), "Parks and green spaces"),
    ("facilities", "Facilities", ("facility",), "Public service facilities"),
    ("sites", "Sites", ("site",), "IFC sites"),
    ("storeys", "Storeys", ("storey",), "Building storeys from BIM models"),
    ("spaces", "Spaces", ("space",), "Rooms and spaces from BIM models"),
    ("bim_elements", "BIM elements", ("element",), "Building elements from BIM models (walls, slabs, ...)"),
    ("sensors", "Sensors", ("sensor",), "Lifeline monitoring sensors; attributes: code, kind, unit, period_s"),
]
# The feature collection (and so the access layer) of each object class that is not a pipe or node.
CLASS_LAYER = {cls: cid for cid, _, classes, _ in OBJECT_COLLECTIONS for cls in classes}


@dataclass(frozen=True)
class Collection:
    id: str
    title: str
    description: str
    kind: str  # objects | pipes | nodes
    classes: tuple[str, ...] = ()
    utility: str | None = None

    @property
    def typed(self) -> list[tuple[str, sa.ColumnElement]]:
        extra = SEGMENT_PROPS if self.kind == "pipes" else NODE_PROPS if self.kind == "nodes" else []
        return [("id", objects.c.id), *BASE_PROPS, *extra]

    @property
    def geometry(self) -> sa.ColumnElement:
        return {"objects": objects.c.footprint, "pipes": segments.c.centerline, "nodes": nodes.c.geom}[self.kind]

    @property
    def geometry_type(self) -> str:
        return self.geometry.type.geometry_type

    def from_clause(self):
        j = objects.join(datasets, datasets.c.id == objects.c.dataset_id)
        if self.kind == "pipes":
            j = j.join(segments, segments.c.object_id == objects.c.id)
        elif self.kind == "nodes":
            j = j.join(nodes, nodes.c.object_id == objects.c.id)
        return j

    def scope(self, utilities: list[str] | None = None) -> sa.ColumnElement:
        """The WHERE clause selecting this collection's rows; nodes only of the given utilities."""
        if self.kind == "pipes":
            return segments.c.utility == sa.literal(self.utility)
        if self.kind == "nodes":
            return nodes.c.utility.in_(utilities or [])
        if len(self.classes) == 1:
            return objects.c["class"] == sa.literal(self.classes[0])
        return objects.c["class"].in_(self.classes)

    def resolve(self, name: str, attribute_keys: set[str]) -> Prop:
        """A property by name, for filters and sortby; 400 when the collection has no such property."""
        if name in ("geometry", "geom", "footprint", "centerline"):
            return Prop(self.geometry, "geometry")
        for pname, col in self.typed:
            if pname == name:
                return Prop(col, kind_of(col))
        if name in attribute_keys:
            return Prop(objects.c.attributes[sa.literal(name)], "json")
        raise FilterError(f"collection {self.id!r} has no queryable property {name!r}",
                          hint=f"see /api/collections/{self.id}/queryables")


def _cache_token(conn: sa.Connection) -> tuple:
    # Every write path logs to change_log, so its last id changes whenever the model does.
    return conn.execute(sa.text("select coalesce(max(id), 0), (select count(*) from datasets) from change_log")).one()


# How often a process asks change_log whether the model changed (one cheap query, not per request).
CHECK_SECONDS = 1.0


class Registry:
    """The collections of one database, with extents and attribute keys cached per model version."""

    def __init__(self):
        self.lock = threading.Lock()
        self.token: tuple | None = None
        self.checked = -1e9
        self.srid: int | None = None
        self.collections: dict[str, Collection] = {}
        self.extents: dict[str, list[float] | None] = {}
        self.attr_keys: dict[str, dict[str, str]] = {}
        self.temporal: dict[str, list] = {}

    def refresh(self, conn: sa.Connection) -> None:
        if self.token is not None and time.monotonic() - self.checked < CHECK_SECONDS:
            return
        token = _cache_token(conn)
        if token != self.token:
            with self.lock:
                if token != self.token:
                    self._build(conn)
                    self.token = token
        self.checked = time.monotonic()

    def _build(self, conn: sa.Connection) -> None:
        cols = {c[0]: Collection(c[0], c[1], c[3], "objects", c[2]) for c in OBJECT_COLLECTIONS}
        for u, name_en, code in conn.execute(sa.text(
                "select utility, name_en, cjj_code from pipe_categories order by utility")):
            cols[f"pipes_{u}"] = Collection(f"pipes_{u}", f"Pipes: {name_en}",
                                            f"{name_en} pipe segments (CJJ 61 code {code}), 3D centrelines",
                                            "pipes", utility=u)
        cols["pipe_nodes"] = Collection("pipe_nodes", "Pipe nodes", "Manholes, valves, hydrants and other "
                                        "nodes of the pipe networks you may read", "nodes")
        srid = self.srid = int(conn.scalar(sa.text("select value from cim_meta where key = 'srid'")))
        utilities = _all_utilities(cols)
        kv = sa.func.jsonb_each(objects.c.attributes).table_valued("key", "value").alias("kv")
        extents, keys, temporal = {}, {}, {}
        for c in cols.values():
            box = sa.func.ST_Transform(sa.func.ST_SetSRID(sa.cast(sa.func.ST_Extent(c.geometry), schema.Geometry()),
                                                          srid), 4326)
            sub = (sa.select(box.label("e"), sa.func.min(objects.c.valid_from).label("tmin"),
                             sa.func.max(objects.c.valid_to).label("tmax"))
                   .select_from(c.from_clause()).where(c.scope(utilities)).subquery())
            e = conn.execute(sa.select(sa.func.ST_XMin(sub.c.e), sa.func.ST_YMin(sub.c.e), sa.func.ST_XMax(sub.c.e),
                                       sa.func.ST_YMax(sub.c.e), sub.c.tmin, sub.c.tmax)).one()
            extents[c.id] = [round(v, 7) for v in e[:4]] if e[0] is not None else None
            temporal[c.id] = [e[4].isoformat() if e[4] else None, e[5].isoformat() if e[5] else None]
            keys[c.id] = dict(conn.execute(
                sa.select(kv.c.key, sa.func.min(sa.func.jsonb_typeof(kv.c.value)))
                .select_from(c.from_clause().join(kv, sa.true())).where(c.scope(utilities))
                .group_by(kv.c.key)).all())
        self.collections, self.extents, self.attr_keys, self.temporal = cols, extents, keys, temporal

    def get(self, conn: sa.Connection, cid: str) -> Collection:
        self.refresh(conn)
        c = self.collections.get(cid)
        if c is None:
            raise NotFoundError(f"no collection {cid!r}", hint="/api/collections lists them")
        return c


def _all_utilities(cols: dict[str, Collection]) -> list[str]:
    return [c.utility for c in cols.values() if c.kind == "pipes"]


registries: dict[str, Registry] = {}


def registry(engine: sa.Engine) -> Registry:
    return registries.setdefault(str(engine.url), Registry())

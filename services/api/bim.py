"""BIM and object detail: a building with its storey/space/element tree, any object by id, and search."""
from __future__ import annotations

from collections import Counter
from typing import Annotated

import orjson
import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request, Response

from cim_core import scenarios
from cim_core.errors import InputError, NotFoundError
from services import auth

from .collections import CLASS_LAYER, registry
from .features import int_id

router = APIRouter(tags=["BIM and objects"])
Caller = Annotated[auth.Caller, Depends(auth.caller)]
MAX_DEPTH = 12  # site > building > part > storey > space > element > sub-element: far below this

_OBJECT = """
    select o.id, o.uid, o.name, o.class, o.ifc_class, o.parent_id, o.attributes, o.lod, o.zmin, o.zmax,
           o.valid_from, o.valid_to, d.name dataset, d.kind dataset_kind, d.source_path, d.imported_at,
           st_asgeojson(st_transform(coalesce(p.centerline, n.geom, o.footprint), 4326), 7)::json geometry,
           case when o.footprint is not null then array[st_xmin(b), st_ymin(b), st_xmax(b), st_ymax(b)] end bbox,
           p.utility seg_utility, n.utility node_utility
    from city_objects o join datasets d on d.id = o.dataset_id
    left join pipe_segments p on p.object_id = o.id left join pipe_nodes n on n.object_id = o.id
    cross join lateral (select st_transform(st_envelope(coalesce(p.centerline, o.footprint)), 4326) b) e
    where o.id = :id"""


def _json(doc) -> Response:
    return Response(orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS), media_type="application/json")


def _split_attributes(attrs: dict) -> tuple[dict, dict]:
    """Plain attributes and property sets (attribute values that are objects, e.g. Pset_WallCommon)."""
    psets = {k: v for k, v in attrs.items() if isinstance(v, dict)}
    return {k: v for k, v in attrs.items() if k not in psets}, psets


def _record(row) -> dict:
    plain, psets = _split_attributes(row.attributes or {})
    return {"id": row.id, "uid": row.uid, "name": row.name, "class": row._mapping["class"], "ifc_class": row.ifc_class, "parent_id": row.parent_id, "lod": row.lod,
            "height_range": {"zmin": row.zmin, "zmax": row.zmax},
            "valid_from": row.valid_from.isoformat() if row.valid_from else None,
            "valid_to": row.valid_to.isoformat() if row.valid_to else None,
            "dataset": {"name": row.dataset, "kind": row.dataset_kind, "source": row.source_path,
                        "imported_at": row.imported_at.isoformat()},
            "attributes": plain, "property_sets": psets, "geometry": row.geometry,
            "bbox": [round(v, 7) for v in row.bbox] if row.bbox else None}


def _fetch(conn, oid: int | None, what: str):
    row = conn.execute(sa.text(_OBJECT), {"id": oid}).first() if oid is not None else None
    if row is None:
        raise NotFoundError(f"no {what} with id {oid!r}")
    return row


def _guard(request: Request, who: auth.Caller, row) -> None:
    """Every object is as restricted as the collection it belongs to (nodes also as their utility's pipes)."""
    if row.seg_utility is not None:
        layers = [f"pipes_{row.seg_utility}"]
    elif row.node_utility is not None:
        layers = ["pipe_nodes", f"pipes_{row.node_utility}"]
    else:
        layers = [CLASS_LAYER.get(row._mapping["class"])]
    for layer in filter(None, layers):
        auth.require_layer(request, who, layer, object_id=row.id)


def readable_classes(who: auth.Caller, engine) -> list[str]:
    """The object classes (pipes and nodes aside) whose collection the caller may read."""
    return [cls for cls, layer in CLASS_LAYER.items() if auth.may_read(who, layer, engine)]


def _elevation(storey) -> float | None:
    """The storey's declared elevation (IfcBuildingStorey.Elevation, in metres) or else its lowest point."""
    declared = (storey["attributes"] or {}).get("elevation")
    return declared if isinstance(declared, (int, float)) else storey["zmin"]


@router.get("/buildings/{buildingId}", summary="A building with its storeys, spaces and elements")
def building(request: Request, who: Caller, buildingId: str,
             expand: str | None = Query(None, description="comma-separated: `elements` lists each storey's "
                                                           "elements, `psets` adds their property sets")):
    wanted = {e.strip() for e in (expand or "").split(",") if e.strip()}
    if wanted - {"elements", "psets"}:
        raise InputError(f"expand: unknown value(s) {', '.join(sorted(wanted - {'elements', 'psets'}))}; "
                         "use elements, psets")
    engine = auth.current_engine()
    with engine.connect() as conn:
        row = _fetch(conn, int_id(buildingId), "building")
        if row._mapping["class"] not in ("building", "building_part"):
            raise NotFoundError(f"object {row.id} is a {row._mapping['class']}, not a building",
                                hint=f"/api/objects/{row.id} shows any object")
        _guard(request, who, row)
        tree = _Tree(conn.execute(sa.text(TREE_SQL), {"id": row.id, "max": MAX_DEPTH, "psets": "psets" in wanted,
                                                      "classes": readable_classes(who, engine)}).mappings().all())
    doc = _record(row)
    doc["globalId"] = row.uid
    storeys, spaces, unplaced = tree.storeys("elements" in wanted, "psets" in wanted)
    doc["parts"] = [tree.brief(r) for r in tree.rows if r["class"] == "building_part"]
    doc["storeys"] = storeys
    doc["elements_outside_storeys"] = dict(sorted(unplaced.items()))
    doc["counts"] = {"storeys": len(storeys), "spaces": len(spaces),
                     "elements": sum(1 for r in tree.rows if r["class"] == "element")}
    doc["ifc_global_ids"] = {"building": row.uid, "storeys": [s["uid"] for s in storeys if s["uid"]]}
    doc["links"] = [{"rel": "self", "href": str(request.url.remove_query_params("key"))},
                    {"rel": "object", "href": f"{str(request.base_url).rstrip('/')}/api/objects/{row.id}"}]
    return _json(doc)


# A building's descendants, down to MAX_DEPTH levels, of the classes the caller may read; element
# attributes only when psets are asked for.
TREE_SQL = """
    with recursive t as (
        select id, parent_id, class, ifc_class, name, uid, zmin, zmax, attributes, 1 depth
        from city_objects where parent_id = :id
        union all
        select c.id, c.parent_id, c.class, c.ifc_class, c.name, c.uid, c.zmin, c.zmax, c.attributes, t.depth + 1
        from city_objects c join t on c.parent_id = t.id where t.depth < :max)
    select id, parent_id, class, ifc_class, name, uid, zmin, zmax,
           case when class <> 'element' or :psets then attributes end attributes
    from t where class = any(:classes) order by id"""


class _Tree:
    """A building's descendants (rows of TREE_SQL), grouped by storey and space."""

    def __init__(self, rows):
        self.rows = rows
        self.by_id = {r["id"]: r for r in rows}

    def storey_of(self, r) -> int | None:
        seen = 0
        while r is not None and seen < MAX_DEPTH:
            if r["class"] == "storey":
                return r["id"]
            r, seen = self.by_id.get(r["parent_id"]), seen + 1
        return None

    def space_of(self, r) -> int | None:
        p = self.by_id.get(r["parent_id"])
        return p["id"] if p is not None and p["class"] == "space" else None

    @staticmethod
    def brief(r, attributes: bool = True) -> dict:
        d = {"id": r["id"], "uid": r["uid"], "name": r["name"], "ifc_class": r["ifc_class"]}
        if attributes and r["attributes"] is not None:
            d["attributes"], d["property_sets"] = _split_attributes(r["attributes"])
        return d

    def storeys(self, elements: bool, psets: bool) -> tuple[list[dict], dict, Counter]:
        """Storeys by elevation with their spaces and element counts, the spaces, elements in no storey."""
        storeys = {r["id"]: {**self.brief(r), "elevation": _elevation(r),
                             "height_range": {"zmin": r["zmin"], "zmax": r["zmax"]},
                             "spaces": [], "element_classes": Counter(), "element_count": 0}
                   for r in self.rows if r["class"] == "storey"}
        spaces = {}
        for r in self.rows:
            if r["class"] == "space":
                s = spaces[r["id"]] = {**self.brief(r), "element_count": 0}
                if (sid := self.storey_of(r)) is not None:
                    storeys[sid]["spaces"].append(s)
        unplaced: Counter = Counter()
        for r in self.rows:
            if r["class"] != "element":
                continue
            cls = r["ifc_class"] or "element"
            if (sp := self.space_of(r)) is not None:
                spaces[sp]["element_count"] += 1
            sid = self.storey_of(r)
            if sid is None:
                unplaced[cls] += 1
                continue
            st = storeys[sid]
            st["element_classes"][cls] += 1
            st["element_count"] += 1
            if elements:
                st.setdefault("elements", []).append(self.brief(r, psets))
        ordered = sorted(storeys.values(), key=lambda s: (s["elevation"] is None, s["elevation"] or 0.0, s["id"]))
        for s in ordered:
            s["element_classes"] = dict(sorted(s["element_classes"].items()))
        return ordered, spaces, unplaced


@router.get("/objects/{objectId}", summary="Any city object; a pipe with its nodes and neighbouring segments")
def city_object(request: Request, who: Caller, objectId: str):
    engine = auth.current_engine()
    with engine.connect() as conn:
        row = _fetch(conn, int_id(objectId), "object")
        _guard(request, who, row)
        doc = _record(row)
        doc["ancestors"] = [dict(r) for r in conn.execute(sa.text("""
            with recursive a as (
                select p.id, p.parent_id, p.class, p.name, 1 depth from city_objects c
                join city_objects p on p.id = c.parent_id where c.id = :id
                union all
                select p.id, p.parent_id, p.class, p.name, a.depth + 1 from city_objects p join a on p.id = a.parent_id
                where a.depth < :max)
            select id, class, name from a order by depth"""), {"id": row.id, "max": MAX_DEPTH}).mappings()]
        doc["children"] = dict(conn.execute(sa.text(
            "select class, count(*) from city_objects where parent_id = :id group by class"), {"id": row.id}).all())
        if row.seg_utility is not None:
            seg = conn.execute(sa.text("select * from pipe_segments where object_id = :id"), {"id": row.id}).mappings().one()
            doc["pipe"] = {k: v for k, v in seg.items() if k not in ("object_id", "centerline")}
            doc["nodes"] = {end: _node(conn, seg[f"{end}_node"]) for end in ("from", "to")}
            doc["neighbours"] = [dict(r) for r in conn.execute(sa.text("""
                select o.id, o.name, s.utility, s.diameter_mm, s.from_node, s.to_node
                from pipe_segments s join city_objects o on o.id = s.object_id
                where (s.from_node = any(:n) or s.to_node = any(:n)) and s.object_id <> :id order by o.id"""),
                {"n": [n for n in (seg["from_node"], seg["to_node"]) if n is not None], "id": row.id}).mappings()]
        elif row.node_utility is not None:
            doc["node"] = _node(conn, row.id)
            doc["segments"] = [dict(r) for r in conn.execute(sa.text("""
                select o.id, o.name, s.utility, s.diameter_mm, s.from_node, s.to_node
                from pipe_segments s join city_objects o on o.id = s.object_id
                where s.from_node = :id or s.to_node = :id order by o.id"""), {"id": row.id}).mappings()]
    return _json(doc)


def _node(conn, node_id: int | None) -> dict | None:
    if node_id is None:
        return None
    r = conn.execute(sa.text("""
        select n.object_id id, o.name, o.uid, n.utility, n.node_type, n.depth, n.ground_z, n.invert_z,
               st_asgeojson(st_transform(n.geom, 4326), 7)::json geometry
        from pipe_nodes n join city_objects o on o.id = n.object_id where n.object_id = :id"""),
        {"id": node_id}).mappings().first()
    return dict(r) if r else None


@router.get("/search", summary="Find objects by name, uid (IFC GlobalId) or id, for the viewer's search box")
def search(request: Request, who: Caller,
           q: str = Query(..., min_length=1, max_length=200, description="part of a name, a uid, or an id"),
           limit: int = Query(20, ge=1, le=100),
           scenario: str | None = Query(None, description="renewal scenario (plan) to search; default as-is")):
    engine = auth.current_engine()
    reg = registry(engine)
    with engine.connect() as conn:
        reg.refresh(conn)
    utilities = [c.utility for c in reg.collections.values() if c.kind == "pipes" and auth.may_read(who, c.id, engine)]
    node_utilities = utilities if auth.may_read(who, "pipe_nodes", engine) else []
    text = q.strip()
    if not text:
        raise InputError("q: give part of a name, a uid or an id")
    like = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    with engine.connect() as conn:
        in_model = scenarios.visible(scenarios.resolve(conn, scenario))
        rows = conn.execute(sa.text(f"""
            select o.id, o.class, o.name, o.uid, o.ifc_class,
                   case when o.footprint is not null then
                        array[st_xmin(b), st_ymin(b), st_xmax(b), st_ymax(b)] end bbox
            from city_objects o
            left join pipe_segments p on p.object_id = o.id left join pipe_nodes n on n.object_id = o.id
            cross join lateral (select st_transform(st_envelope(o.footprint), 4326) b) e
            where (o.name ilike :contains or o.uid = :q or o.id = :qid)
              and (o.class = any(:classes) or p.utility = any(:u) or n.utility = any(:nu)) and {in_model}
            order by o.id = :qid desc, o.uid = :q desc, o.name ilike :prefix desc, length(o.name), o.id
            limit :n"""), {"contains": f"%{like}%", "prefix": f"{like}%", "q": text, "qid": int_id(text),
                           "u": utilities, "nu": node_utilities, "classes": readable_classes(who, engine),
                           "n": limit}).mappings().all()
    return _json({"query": text, "results": [
        {**dict(r), "bbox": [round(v, 7) for v in r["bbox"]] if r["bbox"] else None} for r in rows]})

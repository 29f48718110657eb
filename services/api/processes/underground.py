"""Underground processes (issue 13): excavation, clearance checks, cross-section and long section over
analyses.underground. They read the pipe networks, restricted layers: the caller must be allowed to read
every pipe layer and the pipe nodes."""
from __future__ import annotations

import sqlalchemy as sa

from analyses.underground import clearances, excavation, sections
from cim_core.db import get_engine

from . import Context, Process, register

GEOJSON = {"type": "object", "required": ["type"], "properties": {"type": {"type": "string"}}}
BBOX = {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4}
CRS = {"title": "CRS of the geometry", "description": "e.g. EPSG:4490; default: the storage CRS",
       "schema": {"type": "string", "minLength": 1}, "minOccurs": 0}


def require_pipes(ctx: Context) -> None:
    """The analysis reads every pipe network: the caller must be allowed to read them all."""
    with get_engine().connect() as c:
        utilities = c.scalars(sa.text("select utility from pipe_categories order by utility")).all()
    ctx.require(*(f"pipes_{u}" for u in utilities), "pipe_nodes")


def _excavate(inputs: dict, ctx: Context) -> dict:
    require_pipes(ctx)
    return excavation.excavate(inputs["polygon"], inputs["depth"], crs=inputs.get("crs"),
                               building_distance=inputs.get("building_distance", excavation.BUILDING_DISTANCE_M),
                               engine=get_engine(), requested_by=ctx.requested_by)


def _clearances(inputs: dict, ctx: Context) -> dict:
    require_pipes(ctx)
    bbox = inputs.get("bbox")
    return clearances.check(bbox=tuple(bbox) if bbox else None, dataset=inputs.get("dataset"), engine=get_engine(),
                            requested_by=ctx.requested_by)


def _section(inputs: dict, ctx: Context) -> dict:
    require_pipes(ctx)
    return sections.cross_section(inputs["line"], crs=inputs.get("crs"), engine=get_engine())


def _profile(inputs: dict, ctx: Context) -> dict:
    require_pipes(ctx)
    return sections.long_section(inputs["start"], inputs["end"], engine=get_engine())


register(Process(
    id="underground-excavation",
    title="Excavation (开挖分析)",
    description="What a pit of a given outline and depth below ground reaches: every pipe segment and node "
                "with the depths of its top and invert inside the pit and the length inside, the buildings "
                "within a distance, the earth volume and a verdict per utility (clear / conflict). Stored as "
                "an analysis run.",
    keywords=("underground", "excavation", "pipes"),
    inputs={"polygon": {"title": "Pit outline", "description": "a GeoJSON Polygon (or Feature)", "schema": GEOJSON},
            "depth": {"title": "Depth below ground (m)", "schema": {"type": "number"}},
            "crs": CRS,
            "building_distance": {"title": "List buildings this close (m)", "minOccurs": 0,
                                  "schema": {"type": "number", "minimum": 0, "maximum": 1000}}},
    outputs={k: {"title": t, "schema": {"type": s}} for k, t, s in (
        ("pit", "area, depth, earth volume", "object"), ("utilities", "verdict per utility", "object"),
        ("segments", "pipe segments reached or crossed", "array"), ("nodes", "pipe nodes inside", "array"),
        ("buildings", "buildings nearby", "array"), ("run_id", "the stored run", "integer"))},
    execute=_excavate,
))

register(Process(
    id="underground-clearances",
    title="Clearance, cover and clash checks",
    description="Horizontal clearances between pipes alongside each other and from buildings (GB 50289-2016 "
                "Table 4.1.9), vertical clearances at crossings (Table 4.1.14), pipe-top cover under carriageway "
                "and footway (GB 50014-2021 5.3.7) and 3D clashes, against the loaded rules; pairs without a rule "
                "are reported as such. Stores the findings as a run; returns its summary.",
    keywords=("underground", "clearance", "GB 50289"),
    inputs={"bbox": {"title": "Box (storage CRS)", "description": "xmin, ymin, xmax, ymax", "schema": BBOX,
                     "minOccurs": 0},
            "dataset": {"title": "Only this pipe dataset", "schema": {"type": "string", "minLength": 1},
                        "minOccurs": 0}},
    outputs={"run_id": {"title": "The stored run", "schema": {"type": "integer"}},
             "summary": {"title": "Pairs examined and found, by check and utility pair", "schema": {"type": "object"}},
             "findings": {"title": "Findings by rule", "schema": {"type": "object"}}},
    execute=_clearances,
))

register(Process(
    id="underground-cross-section",
    title="Cross-section (横断面)",
    description="Every pipe a section line cuts: chainage, depths of top and invert, size, cover, the gaps to "
                "its neighbours, and an SVG drawing to scale in the CJJ 61 colours.",
    keywords=("underground", "section"),
    inputs={"line": {"title": "Section line", "description": "a GeoJSON LineString (or Feature)", "schema": GEOJSON},
            "crs": CRS},
    outputs={"pipes": {"title": "Pipes by chainage", "schema": {"type": "array"}},
             "length_m": {"title": "Length of the line", "schema": {"type": "number"}},
             "line": {"title": "The line (storage CRS)", "schema": {"type": "object"}},
             "crs": {"title": "Storage CRS", "schema": {"type": "string"}},
             "svg": {"title": "Drawing", "schema": {"type": "string", "contentMediaType": "image/svg+xml"}}},
    execute=_section,
))

MANHOLE = {"oneOf": [{"type": "integer"}, {"type": "string", "minLength": 1}]}
register(Process(
    id="underground-long-section",
    title="Long section (纵断面)",
    description="The gravity run between two manholes, downstream: ground and invert lines, slopes, manholes, "
                "drops; adverse slopes (倒坡) and steps flagged; with an SVG drawing.",
    keywords=("underground", "section", "drainage"),
    inputs={"start": {"title": "A manhole (object id or unique key)", "schema": MANHOLE},
            "end": {"title": "The other manhole", "schema": MANHOLE}},
    outputs={k: {"title": k, "schema": {"type": s}} for k, s in (
        ("utility", "string"), ("length_m", "number"), ("manholes", "array"), ("segments", "array"),
        ("adverse", "array"), ("steps", "array"), ("svg", "string"))},
    execute=_profile,
))

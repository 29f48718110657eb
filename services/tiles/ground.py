"""The `ground` tile layer: the city's own map drawn flat on the ground under the buildings.

Roads (their ribbons, or centre lines widened by road class), water, green spaces and land-use parcels
coloured by their GB 50137 class, and residential compounds as a boundary band. Colours and the small
lifts that keep coplanar surfaces from flickering are data (data/ground_styles.csv, with sources).
"""
from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

import numpy as np
import shapely
import sqlalchemy as sa

from cim_core import scenarios
from cim_core import mesh as kernels

from .builder import derive_offset
from .source import Feature

CLASSES = ("road", "water", "green", "landuse")
STYLES = Path(__file__).parent / "data" / "ground_styles.csv"
# Road widths by class where a centre line has none (metres; our assumption, in the range GB 51328-2018
# gives per class: arterial 主干路, secondary 次干路, local 支路).
ROAD_WIDTH = {"arterial": 40.0, "主干路": 40.0, "secondary": 24.0, "次干路": 24.0, "local": 14.0, "支路": 14.0}
ROAD_WIDTH_DEFAULT = 10.0
LINE_WIDTH_M = 2.0  # other lines without a width (river banks, ditches): a thin band
# Above the stored ground, so that the globe's surface (which the vertical offset puts there) does not
# flicker through; each kind adds its own lift from the data file.
GROUND_LIFT_M = 0.2
COMPOUND_BAND_M = 1.5  # a compound's boundary is drawn as a band this wide along its edge
# English land-use names of the sources we know, to GB 50137-2011 major classes.
LANDUSE_CODE = {"residential": "R", "commercial": "B", "business": "B", "retail": "B", "education": "A",
                "medical": "A", "public": "A", "administrative": "A", "industrial": "M", "logistics": "W",
                "warehouse": "W", "transport": "S", "utility": "U", "green": "G", "park": "G", "water": "E"}


@lru_cache(maxsize=1)
def styles() -> dict[str, tuple[tuple[float, float, float, float], float]]:
    """key -> (RGBA 0..1, lift in metres), from the data file."""
    with STYLES.open(encoding="utf-8") as f:
        rows = csv.DictReader(line for line in f if not line.startswith("#"))
        return {r["key"]: ((int(r["r"]) / 255, int(r["g"]) / 255, int(r["b"]) / 255, 1.0), float(r["lift_m"]))
                for r in rows}


def landuse_code(value) -> str:
    """The GB 50137 major class (one letter) of a land-use value: a code such as R2 or A33, or a name."""
    text = str(value or "").strip()
    if text[:1].upper() in "RABMWSUGEH" and (len(text) == 1 or text[1:2].isdigit()):
        return text[0].upper()
    return LANDUSE_CODE.get(text.lower(), "")


def _style_key(cls: str, attrs: dict) -> tuple[str, str | None]:
    """(style key, kind shown as a property)."""
    if cls == "road":
        return "road", attrs.get("road_class")
    if cls != "landuse":
        return cls, attrs.get("kind")
    if "landuse" not in attrs and ("households" in attrs or "compound" in str(attrs.get("id", "")).lower()):
        return "compound", "compound"
    code = landuse_code(attrs.get("landuse") or attrs.get("land_use") or attrs.get("class"))
    return f"landuse:{code}", code or None


def _surface(cls: str, key: str, attrs: dict, geom):
    """The polygon drawn for an object: roads widened, compounds as a band along their boundary."""
    if geom is None or shapely.is_empty(geom):
        return None
    if key == "compound":
        return shapely.buffer(shapely.boundary(geom), COMPOUND_BAND_M / 2)
    if shapely.get_type_id(geom) in (1, 2, 5):  # lines: a ribbon of their width
        try:
            width = float(attrs.get("width_m") or attrs.get("width") or 0)
        except (TypeError, ValueError):
            width = 0.0
        if not width:
            width = ROAD_WIDTH.get(str(attrs.get("road_class")), ROAD_WIDTH_DEFAULT) if cls == "road" else LINE_WIDTH_M
        return shapely.buffer(geom, width / 2, cap_style="flat", join_style="mitre", mitre_limit=2.0)
    return geom if shapely.get_type_id(geom) in (3, 6) else None


def _polygonal(geom):
    """A valid polygon or multipolygon of a surface (make_valid may return a collection)."""
    geom = shapely.make_valid(geom)
    if shapely.get_type_id(geom) == 7:
        geom = shapely.union_all([g for g in geom.geoms if shapely.get_type_id(g) in (3, 6)])
    return geom


def load_ground(conn: sa.Connection, scenario_id: int | None = None) -> list[Feature]:
    """Road, water, green and land-use objects as flat, coloured, pickable surfaces at their ground height
    (of the as-is model, or of a scenario's)."""
    rows = conn.execute(sa.text(f"""
        select o.id, o.class, o.name, o.attributes, o.zmin, st_asbinary(o.footprint) fp
        from city_objects o where o.class in ('road', 'water', 'green', 'landuse') and {scenarios.current(scenario_id)}
          and o.footprint is not null order by o.id""")).all()
    table = styles()
    # GIS layers without heights are stored at z = 0: such a surface lies at the district's median ground,
    # where the tiles put the globe's surface, rather than tens of metres beneath it.
    median = -derive_offset(conn)
    picked, surfaces, heights = [], [], []
    for r in rows:
        attrs = r.attributes or {}
        key, kind = _style_key(r[1], attrs)
        s = _surface(r[1], key, attrs, shapely.from_wkb(bytes(r.fp)))
        if s is None or s.area <= 0:
            continue
        color, lift = table.get(key, table["landuse:"])
        picked.append((r, kind, color))
        surfaces.append(_polygonal(s))
        z = r.zmin if r.zmin is not None and (r.zmin != 0 or abs(median) < 1) else median
        heights.append(z + GROUND_LIFT_M + lift)
    out = []
    if not picked:
        return out
    batch = kernels.flat(np.array(surfaces, dtype=object), np.array(heights)).meshes()
    for (r, kind, color), m, s in zip(picked, batch, surfaces):
        if len(m.faces) == 0:
            continue
        v = m.vertices
        out.append(Feature(
            id=r.id, cls=r[1], name=r.name, vertices=v, faces=m.faces.astype(np.int64),
            face_colors=np.zeros(len(m.faces), np.int64), colors=[color],
            props={"kind": kind, "area_m2": round(float(s.area), 1)},
            footprint=s, zmin=float(v[:, 2].min()), zmax=float(v[:, 2].max()),
            # left out of a parent, a flat surface is missed by about its half width however long it runs:
            # 2 area / perimeter, the inradius of a polygon with an incircle (a road's half width)
            size=float(2 * s.area / s.length) if s.length else 0.0,
        ))
    return out

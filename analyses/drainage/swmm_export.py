"""A stored drainage network as a runnable EPA SWMM 5 model (.inp).

The network sections (junctions, outfalls, storage, dividers, conduits and the other links, cross
sections, coordinates, vertices) are written from the stored network: node inverts and rims, link ends
and inverts (offsets), section sizes. A network imported from SWMM keeps the rest of its rows (initial
depths, outfall types, roughness, ...) and its other sections (options, rain gages, subcatchments,
time series, ...), in the model's own units, so that its export runs as the source did. Any other
network is written in metres (FLOW_UNITS CMS) with the defaults below; a storm and subcatchments are
added by the caller (`extra`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import shapely
import sqlalchemy as sa

from cim_core import scenarios
from cim_core.db import get_engine
from cim_core.errors import InputError, NotFoundError
from cim_core.network.columns import GRAVITY
from cim_core.network.queries import CURRENT, in_dataset

from .network import scenario_id

FEET = 0.3048
US_UNITS = ("CFS", "GPM", "MGD")
NODE_SECTION = {"outlet": "OUTFALLS", "tank": "STORAGE"}  # every other node type is a junction
LINK_SECTION = {"conduit": "CONDUITS", "pump": "PUMPS", "orifice": "ORIFICES", "weir": "WEIRS", "outlet": "OUTLETS"}
SECTION_ORDER = ("TITLE", "OPTIONS", "EVAPORATION", "RAINGAGES", "SUBCATCHMENTS", "SUBAREAS", "INFILTRATION",
                 "JUNCTIONS", "OUTFALLS", "DIVIDERS", "STORAGE", "CONDUITS", "PUMPS", "ORIFICES", "WEIRS",
                 "OUTLETS", "XSECTIONS", "LOSSES", "CURVES", "TIMESERIES")
# Defaults for networks not imported from SWMM (metric, dynamic wave routing). Surcharged pipes by the
# Preissmann slot (SURCHARGE_METHOD SLOT, SWMM 5.1.013 and later; user manual, [OPTIONS]) rather than EXTRAN's
# node continuity: in the sample district's storms EXTRAN left hundreds of manholes "flooding" for a few
# seconds in spikes of numerical instability (199 over 0.1 m3 at scale 1, against 2 with the slot).
ROUGHNESS = 0.013  # Manning's n of concrete sewers (GB 50014-2021 table of roughness: 0.013-0.014)
DEFAULT_OPTIONS = {"FLOW_UNITS": "CMS", "INFILTRATION": "HORTON", "FLOW_ROUTING": "DYNWAVE",
                   "SURCHARGE_METHOD": "SLOT",
                   "LINK_OFFSETS": "DEPTH", "ALLOW_PONDING": "NO", "START_DATE": "01/01/2024",
                   "START_TIME": "00:00:00", "REPORT_START_DATE": "01/01/2024", "REPORT_START_TIME": "00:00:00",
                   "END_DATE": "01/01/2024", "END_TIME": "06:00:00", "REPORT_STEP": "00:01:00",
                   "WET_STEP": "00:01:00", "DRY_STEP": "01:00:00", "ROUTING_STEP": "0:00:05",
                   "VARIABLE_STEP": "0.75", "MIN_SURFAREA": "1.167", "INERTIAL_DAMPING": "PARTIAL",
                   "NORMAL_FLOW_LIMITED": "BOTH"}
CIRCULAR = {"CIRCULAR", "FORCE_MAIN", "FILLED_CIRCULAR", "EGG", "HORSESHOE", "GOTHIC", "CATENARY",
            "SEMIELLIPTICAL", "BASKETHANDLE", "SEMICIRCULAR"}
# Planner settings for the export's read, local to its transaction. The planner cannot know a dataset's size
# from its name: it took a dataset for a quarter of city_objects, scanned the whole table (11 ms per
# subquery in the bench's database) and, the plan's cost estimate over jit_above_cost, spent 19 ms compiling
# it (PostgreSQL JIT); otherwise it hashed the drainage rows of every dataset. With these, Example1's read
# takes 1 ms instead of 49 ms there and the scale-1 district's the same 0.3 s (docs/drainage.md, Performance).
PLANNER = "select set_config('jit', 'off', true), set_config('enable_seqscan', 'off', true)"
BOXES = {"RECT_CLOSED", "RECT_OPEN", "RECT_TRIANGULAR", "RECT_ROUND", "MODBASKETHANDLE", "TRAPEZOIDAL",
         "TRIANGULAR", "PARABOLIC", "POWER", "ARCH", "HORIZ_ELLIPSE", "VERT_ELLIPSE"}


def num(v: float) -> str:
    """A number as SWMM reads it back exactly enough (6 decimals, no trailing zeros)."""
    if v is None or not math.isfinite(v):
        return "0"
    s = f"{v:.6f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def name(v: str) -> str:
    return f'"{v}"' if any(c.isspace() for c in v) else v


@dataclass
class Model:
    """The lines of every section of the model to write, and the object id and place of every SWMM name."""
    sections: dict[str, list[str]] = field(default_factory=dict)
    node_ids: dict[str, int] = field(default_factory=dict)
    node_xy: dict[str, tuple[float, float]] = field(default_factory=dict)
    link_ids: dict[str, int] = field(default_factory=dict)
    length_factor: float = 1.0  # metres per model length unit

    def add(self, section: str, line: str) -> None:
        self.sections.setdefault(section, []).append(line)

    def text(self) -> str:
        order = [s for s in SECTION_ORDER if s in self.sections]
        order += [s for s in self.sections if s not in order]
        return "\n".join(f"[{s}]\n" + "\n".join(self.sections[s]) + "\n" for s in order)


def _rows(engine: sa.Engine, dataset: str, scenario_id: int | None = None) -> tuple[dict, list, list]:
    """(dataset report, node rows, segment rows) of a dataset's drainage network (in a scenario: what the plan
    keeps of it and its own datasets' drainage objects), in one statement (one snapshot; a small model's export
    is dominated by its fixed costs). The pipe rows are looked up per object of the dataset (a lateral subquery
    the planner cannot flatten, `offset 0`), under PLANNER's settings."""
    current = CURRENT if scenario_id is None else scenarios.current(scenario_id)
    where = f"{in_dataset(scenario_id, 'd.id')} and {current}"
    with engine.connect() as c:
        c.execute(sa.text(PLANNER))
        ds = c.execute(sa.text(f"""
            select d.report,
              (select coalesce(json_agg(t order by t.id), '[]') from (
                 select o.id, coalesce(o.name, o.key) as name, o.attributes, n.node_type, n.ground_z, n.invert_z,
                        st_x(n.geom) x, st_y(n.geom) y
                 from city_objects o cross join lateral (
                   select * from pipe_nodes n where n.object_id = o.id and n.utility = any(:g) offset 0) n
                 where {where}) t) as nodes,
              (select coalesce(json_agg(t order by t.id), '[]') from (
                 select o.id, coalesce(o.name, o.key) as name, o.attributes, s.shape, s.diameter_mm, s.width_mm,
                        s.height_mm, s.start_invert, s.end_invert, s.from_node, s.to_node, s.length_m,
                        encode(st_asbinary(st_force2d(s.centerline)), 'hex') line
                 from city_objects o cross join lateral (
                   select * from pipe_segments s where s.object_id = o.id and s.utility = any(:g) offset 0) s
                 where {where}) t) as segs
            from datasets d where d.name = :n"""),
                       {"n": dataset, "g": list(GRAVITY)}).first()
    if ds is None:
        raise NotFoundError(f"no dataset named {dataset!r}", hint="`cim datasets` lists them")
    return dict(ds.report or {}), ds.nodes, ds.segs


def _node_inverts(nodes: list, segs: list) -> dict[int, float | None]:
    """Node inverts: stored, else the lowest end of the segments that meet there."""
    own = {n["id"]: n["invert_z"] for n in nodes}
    low: dict[int, float] = {}
    for s in segs:
        for node, z in ((s["from_node"], s["start_invert"]), (s["to_node"], s["end_invert"])):
            if z is not None:
                low[node] = min(low.get(node, z), z)
    return {i: z if z is not None else low.get(i) for i, z in own.items()}


def _write_nodes(m: Model, nodes: list, inverts: dict[int, float], k: float) -> dict[int, str]:
    """Node rows and coordinates; returns the SWMM name of every node id."""
    names = {}
    for n in nodes:
        a, nm = n["attributes"] or {}, name(n["name"].removeprefix("node:"))
        names[n["id"]] = nm
        m.node_ids[nm.strip('"')] = n["id"]
        m.node_xy[nm.strip('"')] = (n["x"], n["y"])
        inv = inverts[n["id"]]
        if inv is None:
            raise InputError(f"node {n['name']}: no invert elevation (neither its own nor its pipes')")
        row = a.get("swmm_row")
        same = row is not None and abs(a.get("invert_elevation", math.nan) - inv) < 1e-6
        depth = a["max_depth"] if same else (n["ground_z"] - inv if n["ground_z"] is not None else 0.0)
        section = row and a.get("swmm_type", "").upper() + "S"
        section = section if section in ("JUNCTIONS", "OUTFALLS", "STORAGE", "DIVIDERS") \
            else NODE_SECTION.get(n["node_type"], "JUNCTIONS")
        rest = row[3:] if row and section in ("JUNCTIONS", "STORAGE") else row[2:] if row else None
        if section in ("JUNCTIONS", "STORAGE"):
            m.add(section, " ".join([nm, num(inv / k), num(depth / k), *(rest or ["0", "0", "0"])]))
        else:
            m.add(section, " ".join([nm, num(inv / k), *(rest or ["FREE", "NO"])]))
        m.add("COORDINATES", f"{nm} {num(n['x'])} {num(n['y'])}")
    return names


def _xsection(s, a: dict, k: float) -> str:
    """The XSECTIONS row: the source's, with the stored size; else from the stored shape."""
    row = a.get("swmm_xsection")
    d, w, h = (s[c] for c in ("diameter_mm", "width_mm", "height_mm"))
    if row is not None:
        row = list(row)
        shape = row[1].upper() if len(row) > 1 else ""
        if shape in CIRCULAR and d is not None and len(row) > 2:
            row[2] = num(d / 1000 / k)
        elif shape in BOXES and h is not None and len(row) > 3:
            row[2], row[3] = num(h / 1000 / k), num((w or h) / 1000 / k)
        return " ".join(name(t) if i == 0 else t for i, t in enumerate(row))
    nm = name(s["name"])
    if s["shape"] == "rectangular" and h:
        return f"{nm} RECT_CLOSED {num(h / 1000 / k)} {num((w or h) / 1000 / k)} 0 0 1"
    return f"{nm} CIRCULAR {num((d or 300.0) / 1000 / k)} 0 0 0 1"


def _write_links(m: Model, segs: list, names: dict[int, str], inverts: dict[int, float], k: float,
                 elevation_offsets: bool) -> None:
    for s in segs:
        a = s["attributes"] or {}
        if s["from_node"] not in names or s["to_node"] not in names:
            raise InputError(f"pipe {s['name']}: both ends need a node to be written to SWMM (run `cim qa`)")
        a_nm, b_nm, nm = names[s["from_node"]], names[s["to_node"]], name(s["name"])
        m.link_ids[s["name"]] = s["id"]
        section = LINK_SECTION.get(a.get("swmm_type", "conduit"), "CONDUITS")
        row = a.get("swmm_row")
        if section != "CONDUITS":
            m.add(section, " ".join([nm, a_nm, b_nm, *row[3:]]))
        else:
            offsets = []
            for z, node in ((s["start_invert"], s["from_node"]), (s["end_invert"], s["to_node"])):
                base = 0.0 if elevation_offsets else inverts[node]
                offsets.append(num(max(z - base, 0.0) / k) if z is not None else "0")
            length = a.get("length_m") or s["length_m"]
            rough = a.get("roughness", ROUGHNESS)
            m.add(section, " ".join([nm, a_nm, b_nm, num(length / k), num(rough), *offsets,
                                     *(row[7:] if row else ["0", "0"])]))
        if section != "PUMPS":
            m.add("XSECTIONS", _xsection(s, a, k))
        inner = shapely.get_coordinates(shapely.from_wkb(s["line"]))[1:-1]
        for x, y in inner:
            m.add("VERTICES", f"{nm} {num(x)} {num(y)}")


def build(dataset: str, *, engine: sa.Engine | None = None, extra: dict[str, list[str]] | None = None,
          options: dict[str, str] | None = None, scenario: str | None = None) -> str:
    """The .inp text of a dataset's drainage network (in a scenario's model: what the plan keeps of it and its
    own datasets' drainage objects). `extra`: more section lines (a storm, subcatchments); `options`: OPTIONS
    to set (over the source's or the defaults)."""
    return build_model(dataset, engine=engine, extra=extra, options=options, scenario=scenario).text()


def build_model(dataset: str, *, engine: sa.Engine | None = None, extra: dict[str, list[str]] | None = None,
                options: dict[str, str] | None = None, scenario: str | None = None) -> Model:
    """The model of a dataset's drainage network (see `build`)."""
    engine = engine or get_engine()
    report, nodes, segs = _rows(engine, dataset, scenario_id(engine, scenario))
    if not nodes:
        raise InputError(f"dataset {dataset!r} has no drainage network (rain, sewage or combined)")
    if not any(n["node_type"] == "outlet" for n in nodes):
        raise InputError(f"dataset {dataset!r}: the drainage network has no outfall; SWMM needs one",
                         hint="`cim drainage outfalls` shows the pieces without one")
    kept = report.get("swmm_model")
    k = FEET if kept is not None and report.get("flow_units") in US_UNITS else 1.0
    m = Model(length_factor=k)
    opts = dict(DEFAULT_OPTIONS) if kept is None else {}
    for sec, lines in (kept or {"TITLE": [f"{dataset} (exported by cim)"]}).items():
        if sec == "OPTIONS":
            opts.update((ln.split(None, 1) + [""])[:2] for ln in lines)
        else:
            m.sections[sec] = list(lines)
    opts.update(options or {})
    m.sections["OPTIONS"] = [f"{key:<20} {v}" for key, v in opts.items()]
    inverts = _node_inverts(nodes, segs)
    names = _write_nodes(m, nodes, inverts, k)
    _write_links(m, segs, names, inverts, k, opts.get("LINK_OFFSETS", "DEPTH").upper() == "ELEVATION")
    for sec, lines in (extra or {}).items():
        m.sections.setdefault(sec, []).extend(lines)
    return m


def export(dataset: str, path: str | Path, *, engine: sa.Engine | None = None, **kw) -> Path:
    """Write a dataset's drainage network as a SWMM .inp file (see `build`)."""
    path = Path(path)
    path.write_text(build(dataset, engine=engine, **kw), encoding="utf-8")
    return path

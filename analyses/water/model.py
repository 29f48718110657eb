"""The hydraulic model of a stored water network, and its export as a runnable EPANET input file.

Whichever importer brought a network in, `build_model` turns the current network (a utility, a dataset
and/or a box) into a WNTR model: elements an EPANET import kept (`attributes.hydraulic`, WNTR's record in
SI units) come back as they were, with the stored diameter (a renewal may have changed it); elements of
GIS surveys or IFC pipes become junctions at their ground elevation and pipes of their stored length and
diameter, with a Hazen-Williams C from their material (data/roughness.csv, with sources). The model-wide
parts (options and times, patterns, curves, controls, sources) come from the datasets the network was read
from (cim_core.network.hydraulics); a network without them gets WNTR's defaults and a 24 h duration.

Every connected piece of the exported network must hold a source (reservoir or tank): a piece without one
cannot be solved, and the export refuses it with the piece's size and a node in it.
"""
from __future__ import annotations

import csv
import datetime as dt
import re
import threading
import tomllib
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import sqlalchemy as sa

from cim_core.db import get_engine, id_array
from cim_core.errors import InputError, NotFoundError
from cim_core.network.graph import Network
from cim_core.network.hydraulics import models_of

from .service import service

DATA = Path(__file__).parent / "data"
DEFAULT_DURATION_S = 24 * 3600  # a day of extended-period simulation when the model says nothing
SOURCES = ("Reservoir", "Tank")
_ID = re.compile(r"[\s;\"]+")  # EPANET ids: no blanks, semicolons or quotes (EPANET 2.2 manual, s. C.2)


@dataclass
class HydraulicModel:
    """A WNTR model of a stored network, the network it came from, and what the export did."""
    wn: Any  # wntr.network.WaterNetworkModel
    network: Network
    node_names: list[str]
    link_names: list[str]
    units: str
    report: dict[str, Any]
    lock: threading.RLock = field(default_factory=threading.RLock)


@lru_cache
def roughness_table() -> dict[str, dict]:
    """Hazen-Williams C by material (lower case), with its source."""
    with open(DATA / "roughness.csv", newline="", encoding="utf-8") as f:
        return {r["material"].lower(): {"c": float(r["hazen_williams_c"]), "source": r["source"]}
                for r in csv.DictReader(f)}


@lru_cache
def roughness_by_age() -> dict[str, list[tuple[float, float]]]:
    """(max age in years, Hazen-Williams C) ascending, by material (lower case): mains whose C falls with age
    (data/roughness_age.csv, with sources)."""
    out: dict[str, list[tuple[float, float]]] = {}
    with open(DATA / "roughness_age.csv", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            out.setdefault(r["material"].lower(), []).append((float(r["max_age_years"]), float(r["hazen_williams_c"])))
    return {k: sorted(v) for k, v in out.items()}


def hazen_williams_c(material: str | None, install_year: int | None, year: int) -> tuple[str, float]:
    """The table row (material, or material@age band) and C of a main of this material and install year."""
    table, aged = roughness_table(), roughness_by_age()
    m = (material or "unknown").lower()
    m = m if m in table else "unknown"
    if m in aged and install_year is not None:
        age = max(year - install_year, 0)
        limit, c = next((b for b in aged[m] if age <= b[0]), aged[m][-1])
        return f"{m}, age <= {limit:g}", c
    return m, table[m]["c"]


@lru_cache
def source_head() -> float:
    """Head (m) above ground of a surveyed source node (data/service.toml)."""
    with open(DATA / "service.toml", "rb") as f:
        return float(tomllib.load(f)["source_head"]["value_m"])


def _node_records(net: Network, demand: np.ndarray) -> tuple[list[str], list[dict]]:
    """Node records: as an EPANET import kept them, or junctions with the demand of the buildings they
    serve (m3/s) and reservoirs at the source head."""
    names = [_ID.sub("_", str(n or k)) for n, k in zip(net.node_attributes["name"], net.node_key)]
    records = []
    for i, (name, rec) in enumerate(zip(names, net.node_attributes["hydraulic"])):
        xy = [float(net.node_xy[i, 0]), float(net.node_xy[i, 1])]
        if rec:
            records.append({**rec, "name": name, "coordinates": xy})
            continue
        ground = float(net.node_ground[i]) if np.isfinite(net.node_ground[i]) else 0.0
        if net.node_type[i] == "reservoir":  # a surveyed source: the waterworks' outlet head above ground
            records.append({"name": name, "node_type": "Reservoir", "coordinates": xy,
                            "base_head": ground + source_head()})
            continue
        records.append({"name": name, "node_type": "Junction", "coordinates": xy, "elevation": ground,
                        "demand_timeseries_list": [{"base_val": float(demand[i]), "pattern_name": None,
                                                    "category": "buildings" if demand[i] > 0 else None}]})
    return names, records


def _segment_materials(engine: sa.Engine, ids: np.ndarray) -> dict[int, tuple[str | None, int | None]]:
    if not len(ids):
        return {}
    with engine.connect() as c:
        rows = c.execute(sa.text("select object_id, material, install_year from pipe_segments "
                                 "where object_id = any(cast(:i as bigint[]))"), {"i": id_array(ids)}).all()
    return {r[0]: (r[1], r[2]) for r in rows}


def _link_records(net: Network, node_names: list[str], engine: sa.Engine) -> tuple[list[str], list[dict], dict]:
    """Links of every segment; loose segment ends get a junction of their own (appended to node_names)."""
    bare = np.array([not r for r in net.segment_attributes["hydraulic"]], bool)  # those need a C from material
    materials = _segment_materials(engine, net.segment_id[bare])
    year = dt.date.today().year
    u, v = net.edges
    loose = {}
    names, records, used = [], [], {}
    for s in range(net.n_segments):
        name = _ID.sub("_", str(net.segment_attributes["name"][s] or net.segment_key[s]))
        rec = dict(net.segment_attributes["hydraulic"][s] or {})
        ends = []
        for vertex, invert in ((u[s], net.start_invert[s]), (v[s], net.end_invert[s])):
            if vertex < net.n_nodes:
                ends.append(node_names[vertex])
            else:
                loose[vertex] = (f"{name}_end{len(ends)}", float(invert) if np.isfinite(invert) else 0.0)
                ends.append(loose[vertex][0])
        dia = net.diameter_mm[s] / 1000
        if not rec:
            band, c = hazen_williams_c(*materials.get(int(net.segment_id[s]), (None, None)), year)
            used[band] = c
            rec = {"link_type": "Pipe", "length": float(net.length[s]), "roughness": c,
                   "diameter": float(dia) if np.isfinite(dia) and dia > 0 else 0.1, "minor_loss": 0.0,
                   "initial_status": "Open", "check_valve": False}
        elif rec.get("link_type") == "Pipe" and np.isfinite(dia) and dia > 0:
            rec["diameter"] = float(dia)
        names.append(name)
        records.append({**rec, "name": name, "start_node_name": ends[0], "end_node_name": ends[1]})
    extra = [{"name": n, "node_type": "Junction", "elevation": z,
              "demand_timeseries_list": [{"base_val": 0.0, "pattern_name": None, "category": None}]}
             for n, z in loose.values()]
    return names, records, {"loose_end_junctions": extra, "roughness": used}


def _controls(controls: list[dict], present: set[str]) -> tuple[list[dict], int]:
    """The simple controls whose every named element is in the export (a box may leave some out)."""
    kept = []
    for ctl in controls:
        lines = [ctl.get("condition", "")] + list(ctl.get("then_actions", []))
        words = [ln.split() for ln in lines if ln]
        named = [w[1] for w in words if len(w) > 1 and w[0].upper() in ("LINK", "PIPE", "PUMP", "VALVE", "NODE",
                                                                        "JUNCTION", "TANK", "RESERVOIR")]
        if ctl.get("type") != "simple" or all(n in present for n in named):
            kept.append(ctl)
    return kept, len(controls) - len(kept)


def _model_parts(models: list[dict]) -> tuple[dict, str, list[str]]:
    """Options of the first model; patterns, curves, controls and sources of all (by name, first wins)."""
    if not models:
        return ({"options": {"time": {"duration": DEFAULT_DURATION_S}}, "patterns": [], "curves": [],
                 "controls": [], "sources": []}, "LPS", [])
    parts: dict[str, Any] = {"options": models[0]["options"], "controls": []}
    for key in ("patterns", "curves", "sources"):
        seen: dict[str, dict] = {}
        for m in models:
            for item in m[key]:
                seen.setdefault(item["name"], item)
        parts[key] = list(seen.values())
    for m in models:
        parts["controls"] += m["controls"]
    return parts, models[0]["units"], [m["dataset"] for m in models]


def _stored_records(engine: sa.Engine, net: Network) -> None:
    """The `name` and `hydraulic` attributes of the network's nodes and segments, in one query (`hydraulic`
    read as text: orjson parses it faster than the driver's JSON)."""
    ids = np.concatenate([net.node_id, net.segment_id])
    with engine.connect() as c:
        rows = {r[0]: r[1:] for r in c.execute(sa.text(
            "select id, attributes ->> 'name', (attributes -> 'hydraulic')::text from city_objects "
            "where id = any(cast(:i as bigint[]))"), {"i": id_array(ids)})}
    for attributes, part in ((net.node_attributes, net.node_id), (net.segment_attributes, net.segment_id)):
        found = [rows.get(i, (None, None)) for i in part.tolist()]
        attributes["name"] = [r[0] for r in found]
        attributes["hydraulic"] = [orjson.loads(r[1]) if r[1] else None for r in found]


def _check_sources(net: Network, records: list[dict], names: list[str]) -> None:
    """Refuse a network with a piece that holds no reservoir or tank."""
    comp = net.components()
    label = comp.node if comp.count else np.empty(0, int)
    is_source = np.array([r["node_type"] in SOURCES for r in records[:net.n_nodes]], bool)
    fed = np.unique(label[is_source])
    dry = np.setdiff1d(np.unique(label), fed)
    if len(dry):
        first = int(np.flatnonzero(np.isin(label, dry))[0])
        sizes = np.bincount(label)[dry]
        raise InputError(f"the network has {len(dry)} connected piece(s) without a reservoir or tank "
                         f"({int(sizes.sum())} nodes; first node {names[first]!r}); a hydraulic model needs a source "
                         "in every piece", hint="export a box that includes their source, or connect them")


def _nn(v):
    return None if v != v else v  # NaN (pandas' missing) -> None


def _add_junction(wn, node: dict) -> None:
    """A junction record (WNTR's to_dict form) added as from_dict adds it, without its per-element dir()."""
    dl = node.get("demand_timeseries_list") or [{}]
    wn.add_junction(node["name"], dl[0].get("base_val", 0.0), _nn(dl[0].get("pattern_name")), node.get("elevation", 0.0),
                    node.get("coordinates") or [], _nn(dl[0].get("category")))
    j = wn.get_node(node["name"])
    for attr in ("emitter_coefficient", "initial_quality", "minimum_pressure", "pressure_exponent", "required_pressure"):
        setattr(j, attr, node.get(attr))
    j.tag = _nn(node.get("tag"))
    for d in dl[1:]:
        j.add_demand(d.get("base_val", 0.0), _nn(d.get("pattern_name")), _nn(d.get("category")))


def _add_pipe(wn, link: dict) -> None:
    wn.add_pipe(link["name"], link["start_node_name"], link["end_node_name"], link.get("length", 304.8),
                link.get("diameter", 0.3048), link.get("roughness", 100.0), link.get("minor_loss", 0.0),
                link.get("initial_status", "OPEN"), link.get("check_valve", False))
    p = wn.get_link(link["name"])
    p.bulk_coeff, p.wall_coeff, p.tag = link.get("bulk_coeff"), link.get("wall_coeff"), _nn(link.get("tag"))
    p.vertices = link.get("vertices") or []


def _to_wn(d: dict):
    """wntr.network.from_dict, with junctions and pipes (nearly all of a network) added directly: from_dict
    looks up dir() of every element, which costs more than the rest of the export (bench/water.py). Nodes
    keep their order; tanks, reservoirs, pumps, valves, sources and controls go through from_dict."""
    from wntr.network.io import from_dict

    empty = {"curves": [], "patterns": [], "nodes": [], "links": [], "sources": [], "controls": []}
    wn = from_dict({**d, **empty, "curves": d["curves"], "patterns": d["patterns"]})
    others: list[dict] = []
    for node in d["nodes"]:
        if node["node_type"] != "Junction":
            others.append(node)
            continue
        if others:
            from_dict({**d, **empty, "nodes": others}, append=wn)
            others = []
        _add_junction(wn, node)
    if others:
        from_dict({**d, **empty, "nodes": others}, append=wn)
    for link in d["links"]:
        if link["link_type"] == "Pipe":
            _add_pipe(wn, link)
    return from_dict({**d, **empty, "sources": d["sources"], "controls": d["controls"],
                      "links": [link for link in d["links"] if link["link_type"] != "Pipe"]}, append=wn)


def build_model(engine: sa.Engine | None = None, *, utility: str = "water", dataset: str | None = None,
                bbox: tuple[float, float, float, float] | None = None) -> HydraulicModel:
    """The WNTR model of the current stored network of a utility (a dataset, a box)."""
    import wntr

    engine = engine or get_engine()
    net = Network.load(engine, utility=utility, dataset=dataset, bbox=bbox)
    if not net.n_segments:
        raise NotFoundError(f"no {utility} pipes" + (f" in dataset {dataset!r}" if dataset else "")
                            + (" in the box" if bbox else ""))
    _stored_records(engine, net)
    demand = np.zeros(net.n_nodes)
    if not all(net.node_attributes["hydraulic"]):  # a surveyed network: the buildings it serves
        demand = service(engine, net).node_demand(net.n_nodes)
    node_names, nodes = _node_records(net, demand)
    _check_sources(net, nodes, node_names)
    link_names, links, extra = _link_records(net, node_names, engine)
    nodes += extra["loose_end_junctions"]
    parts, units, read = _model_parts(models_of(np.concatenate([net.node_id, net.segment_id]), engine))
    parts["controls"], dropped = _controls(parts["controls"], set(node_names) | set(link_names))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            wn = _to_wn({"version": f"wntr-{wntr.__version__}", "comment": "", "name": utility,
                         "references": [], "nodes": nodes, "links": links, **parts})
        except (ValueError, KeyError, RuntimeError) as exc:
            raise InputError(f"the stored {utility} network does not make a hydraulic model: {exc}") from None
    report = {"nodes": len(nodes), "links": len(links), "building_demand_m3s": round(float(demand.sum()), 6), "models_from": read, "controls_left_out": dropped,
              "loose_end_junctions": len(extra["loose_end_junctions"]), "roughness": extra["roughness"]}
    return HydraulicModel(wn, net, node_names, link_names, units, report)


def export_epanet(path: str | Path, *, utility: str = "water", dataset: str | None = None,
                  bbox: tuple[float, float, float, float] | None = None, units: str | None = None,
                  engine: sa.Engine | None = None) -> dict[str, Any]:
    """Write the stored network as an EPANET 2.2 input file (in the flow units of the imported model, or
    `units`); returns what was written."""
    import wntr

    model = build_model(engine, utility=utility, dataset=dataset, bbox=bbox)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    units = units or model.units
    wntr.network.write_inpfile(model.wn, str(path), units=units, version=2.2)
    return {"path": str(path), "units": units, **model.report}

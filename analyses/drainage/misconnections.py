"""Misconnections of the drainage networks (错接混接) as findings of a run: rain into sewage and the
reverse, sewage reaching a rain outfall, combined pipes inside a separated area, pipes joining against
the flow, and step-ups (an outgoing invert above an incoming one). The rules and their sources are data
(data/misconnection_rules.toml); each finding names both objects.
"""
from __future__ import annotations

import json
import tomllib
from collections import defaultdict
from pathlib import Path

import numpy as np
import shapely
import sqlalchemy as sa

from cim_core import scenarios
from cim_core.db import get_engine
from cim_core.errors import InputError
from cim_core.network.graph import Network
from cim_core.runs import Finding, now, record_run

from . import network as dn
from .tracing import Tracer

RULES_FILE = Path(__file__).parent / "data" / "misconnection_rules.toml"
OTHER = {"rain": "sewage", "sewage": "rain"}


def rules() -> dict[str, dict]:
    return tomllib.loads(RULES_FILE.read_text(encoding="utf-8"))


class Junctions:
    """Per node: the segments whose flow enters it and those whose flow leaves it."""

    def __init__(self, net: Network):
        self.net = net
        up, down = net.flow
        self.into: dict[int, list[int]] = defaultdict(list)
        self.out: dict[int, list[int]] = defaultdict(list)
        for s, v in enumerate(down.tolist()):
            if v < net.n_nodes:
                self.into[v].append(s)
        for s, v in enumerate(up.tolist()):
            if v < net.n_nodes:
                self.out[v].append(s)

    def invert_in(self, s: int) -> float:
        """The invert where a segment's flow leaves it."""
        return float(self.net.end_invert[s] if self.net.forward[s] else self.net.start_invert[s])

    def invert_out(self, s: int) -> float:
        """The invert where a segment's flow enters it."""
        return float(self.net.start_invert[s] if self.net.forward[s] else self.net.end_invert[s])


def _finding(net: Network, rule: str, message: str, s: int, node: int, related: int | None,
             details: dict, source: str) -> Finding:
    return Finding(rule, message, int(net.segment_id[s]), related, tuple(net.node_xy[node]),
                   details={**details, "source": source})


def cross_connections(j: Junctions, table: dict) -> list[Finding]:
    """rain_into_sewage / sewage_into_rain: a pipe of one system whose flow enters the other's node or pipe."""
    net, out = j.net, []
    util = net.utility.astype(str)
    for node, incoming in j.into.items():
        for s in incoming:
            other = OTHER.get(util[s])
            if other is None:
                continue
            target = [o for o in j.out.get(node, []) if util[o] == other]
            rule = f"{util[s]}_into_{other}"
            if target:
                related, what = int(net.segment_id[target[0]]), f"{other} pipe {net.segment_key[target[0]]}"
            elif net.node_utility[node] == other:
                related, what = int(net.node_id[node]), f"{other} node {net.node_key[node]}"
            else:
                continue
            out.append(_finding(net, rule, f"{util[s]} pipe {net.segment_key[s]} discharges into {what}", s, node,
                                related, {"node": int(net.node_id[node])}, table[rule]["source"]))
    return out


def sewage_to_rain_outfalls(j: Junctions, table: dict) -> list[Finding]:
    """Rain outfalls that sewage pipes drain to; the finding names the outfall and the sewage pipe whose flow
    leaves the sewage network on the way (the most downstream sewage pipe)."""
    net, tracer, out = j.net, Tracer(j.net), []
    util = net.utility.astype(str)
    for node in dn.outfall_nodes(net):
        if net.node_utility[node] != "rain":
            continue
        segs = np.flatnonzero(np.isin(net.segment_id, tracer.upstream(int(node)).segments))
        sewage = segs[util[segs] == "sewage"]
        for s in sewage:
            down = int(net.flow[1][s])
            if down < net.n_nodes and any(util[o] == "sewage" for o in j.out.get(down, [])):
                continue  # not the last sewage pipe on its way
            out.append(Finding("sewage_to_rain_outfall", f"sewage pipe {net.segment_key[s]} drains to rain "
                               f"outfall {net.node_key[node]}", int(net.node_id[node]), int(net.segment_id[s]),
                               tuple(net.node_xy[node]),
                               details={"sewage_segments_upstream": len(sewage),
                                        "source": table["sewage_to_rain_outfall"]["source"]}))
    return out


def combined_in_areas(net: Network, areas: list[tuple[int | None, str, object]], table: dict) -> list[Finding]:
    """Combined pipes that intersect a separated area ((object id or None, name, polygon) each)."""
    combined = np.flatnonzero(net.utility == "combined")
    if not len(combined) or not areas:
        return []
    out = []
    for area_id, name, poly in areas:
        hit = combined[shapely.intersects(net.centerlines[combined], poly)]
        for s in hit:
            mid = shapely.line_interpolate_point(net.centerlines[s], 0.5, normalized=True)
            out.append(Finding("combined_in_separated_area", f"combined pipe {net.segment_key[s]} lies in "
                               f"separated area {name}", int(net.segment_id[s]), area_id, (mid.x, mid.y),
                               details={"area": name, "source": table["combined_in_separated_area"]["source"]}))
    return out


def _direction(line, forward: bool, leaving: bool) -> np.ndarray:
    """Unit plan vector of the flow where it leaves (or enters) a pipe."""
    p = shapely.get_coordinates(line)
    if not forward:
        p = p[::-1]
    v = p[-1] - p[-2] if leaving else p[1] - p[0]
    return v / (np.linalg.norm(v) or 1.0)


def against_flow(j: Junctions, table: dict) -> list[Finding]:
    """lateral_against_flow: at junctions (two or more pipes in), pipes whose flow turns by more than the
    limit into the largest outgoing pipe (GB 50014 water-flow angle; small pipes with a drop exempt)."""
    net, rule, out = j.net, table["lateral_against_flow"], []
    for node, incoming in j.into.items():
        outgoing = j.out.get(node, [])
        if len(incoming) < 2 or not outgoing:
            continue
        main = max(outgoing, key=lambda o: np.nan_to_num(net.diameter_mm[o]))
        leave = _direction(net.centerlines[main], bool(net.forward[main]), leaving=False)
        for s in incoming:
            turn = float(np.degrees(np.arccos(np.clip(
                _direction(net.centerlines[s], bool(net.forward[s]), leaving=True) @ leave, -1, 1))))
            drop = j.invert_in(s) - j.invert_out(main)
            exempt = net.diameter_mm[s] <= rule["exempt_diameter_mm"] and drop > rule["exempt_drop_m"]
            if turn > rule["max_turn_deg"] and not exempt:
                out.append(_finding(net, "lateral_against_flow", f"{net.segment_key[s]} joins "
                                    f"{net.segment_key[main]} at {net.node_key[node]} against the flow (turn "
                                    f"{turn:.0f}° > {rule['max_turn_deg']:g}°)", s, node,
                                    int(net.segment_id[main]),
                                    {"turn_deg": round(turn, 1), "max_turn_deg": rule["max_turn_deg"]},
                                    rule["source"]))
    return out


def step_ups(j: Junctions, table: dict) -> list[Finding]:
    """step_up: an outgoing pipe whose invert at the node lies above an incoming pipe's invert there."""
    net, rule, out = j.net, table["step_up"], []
    for node, incoming in j.into.items():
        for o in j.out.get(node, []):
            for s in incoming:
                rise = j.invert_out(o) - j.invert_in(s)
                if rise > rule["tolerance_m"]:
                    out.append(_finding(net, "step_up", f"{net.segment_key[o]} leaves {net.node_key[node]} "
                                        f"{rise:.2f} m above the invert of {net.segment_key[s]}", o, node,
                                        int(net.segment_id[s]),
                                        {"rise_m": round(rise, 3), "tolerance_m": rule["tolerance_m"]},
                                        rule["source"]))
    return out


def separated_areas(engine: sa.Engine, table: dict, scenario_id: int | None = None) -> list[tuple[int, str, object]]:
    """Stored objects declared separated areas (attribute drainage_system = 'separated'), in the model of a
    scenario (None: as-is)."""
    spec = table["combined_in_separated_area"]
    with engine.connect() as c:
        rows = c.execute(sa.text(f"""
            select o.id, coalesce(o.name, o.key), st_asbinary(o.footprint) from city_objects o
            where o.footprint is not null and o.attributes ->> cast(:a as text) = :v
              and {scenarios.current(scenario_id)}"""),
                         {"a": spec["area_attribute"], "v": spec["area_value"]}).all()
    return [(int(i), str(n), shapely.from_wkb(bytes(g))) for i, n, g in rows]


def check(dataset: str | None = None, *, areas: list[dict] | None = None, scenario: str | None = None,
          engine: sa.Engine | None = None, requested_by: str | None = None) -> dict:
    """Run every misconnection rule over the current drainage networks (of one dataset, if given) of the as-is
    model or a scenario's, and store the findings as a run. `areas`: extra separated areas, each {"name", "geometry": GeoJSON polygon in the
    storage CRS}. Returns the run id and the findings' counts by rule."""
    engine = engine or get_engine()
    t0, table = now(), rules()
    net = dn.load(engine, dataset=dataset, geometry=True, scenario=scenario)
    given = []
    for i, a in enumerate(areas or []):
        try:
            given.append((None, str(a.get("name", f"area {i + 1}")), shapely.from_geojson(_geojson(a["geometry"]))))
        except (KeyError, TypeError, shapely.errors.GEOSException) as exc:
            raise InputError(f"areas[{i}]: needs a name and a GeoJSON polygon geometry ({exc})") from None
    j = Junctions(net)
    found = [*cross_connections(j, table), *sewage_to_rain_outfalls(j, table),
             *combined_in_areas(net, separated_areas(engine, table, dn.scenario_id(engine, scenario)) + given, table), *against_flow(j, table),
             *step_ups(j, table)]
    counts = {r: sum(f.rule == r for f in found) for r in table}
    run = record_run("drainage-misconnections", {"dataset": dataset, "scenario": scenario, "areas": areas or []},
                     table, found,
                     {"findings": counts, "segments": net.n_segments}, started_at=t0, requested_by=requested_by,
                     engine=engine)
    return {"run_id": run.id, "findings": counts}


def _geojson(geometry) -> str:
    return geometry if isinstance(geometry, str) else json.dumps(geometry)

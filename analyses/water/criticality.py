"""Criticality of every water pipe: what a burst on it takes out of service (Walski's segment criticality).

A burst shuts the pipe's valve segment (isolation.py) and with it every part that the segment alone joins to
a source. Per pipe: the segment's pipes, length and demand, and those of the parts cut off with it; the
larger, the more critical. The run is recorded; the most critical pipes become findings.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import sqlalchemy as sa

from cim_core.db import get_engine
from cim_core.runs import Finding, now, record_run

from .isolation import INOPERABLE, SOURCE_TYPES, Isolation, load

TOP_FINDINGS = 20  # the most critical pipes reported as findings


def segment_table(iso: Isolation) -> dict[str, np.ndarray]:
    """Per segment: pipes, length (m), demand (m3/s) of the segment and of what its closing cuts off."""
    seg, net = iso.segments, iso.net
    k = seg.count
    node_seg = seg.node[:net.n_nodes]
    own = {"pipes": np.bincount(seg.link, minlength=k).astype(float),
           "length_m": np.bincount(seg.link, weights=np.nan_to_num(net.length), minlength=k),
           "demand_m3s": np.bincount(node_seg, weights=iso.node_demand, minlength=k)}
    cut = {name: np.zeros(k) for name in own}
    degree = np.diff(seg.graph.indptr)
    # a segment with one neighbour cannot part the rest, unless it holds a source
    for s in np.union1d(np.flatnonzero(degree > 1), iso.source_segments):
        lost, _ = iso.cut_off_segments(int(s))
        for name, col in own.items():
            cut[name][s] = col[lost].sum()
    return {**own, **{f"cut_off_{n}": v for n, v in cut.items()}, "source_assumed": np.array([not len(iso.source_segments)])}


def criticality(*, utility: str = "water", dataset: str | None = None, valves: list[tuple[str, str]] | None = None,
                requested_by: str | None = None, engine: sa.Engine | None = None) -> dict[str, Any]:
    """Criticality of every pipe (by object id), recorded as a run (analysis `pipe-criticality`)."""
    engine = engine or get_engine()
    t0 = now()
    iso = load(engine, utility=utility, dataset=dataset, valves=valves)
    table = segment_table(iso)
    s = iso.segments.link
    out_length = table["length_m"][s] + table["cut_off_length_m"][s]
    pipes = [{"id": int(i), "segment": int(seg), "pipes": int(table["pipes"][seg]),
              "length_m": round(float(table["length_m"][seg]), 1), "demand_m3s": float(table["demand_m3s"][seg]),
              "cut_off_pipes": int(table["cut_off_pipes"][seg]),
              "cut_off_length_m": round(float(table["cut_off_length_m"][seg]), 1),
              "cut_off_demand_m3s": float(table["cut_off_demand_m3s"][seg]),
              "out_of_service_m": round(float(out), 1)}
             for i, seg, out in zip(iso.net.segment_id, s, out_length)]
    worst = np.argsort(-out_length, kind="stable")[:TOP_FINDINGS]
    found = [Finding("critical_pipe", f"{iso.net.segment_key[i]}: a burst takes {out_length[i]:.0f} m of main out of "
                     "service", int(iso.net.segment_id[i]), severity="info", details=pipes[i]) for i in worst]
    summary = {"pipes": len(pipes), "segments": iso.segments.count,
               "max_out_of_service_m": round(float(out_length.max()), 1) if len(pipes) else 0.0,
               "source_assumed": bool(table["source_assumed"][0])}
    run = record_run("pipe-criticality", {"utility": utility, "dataset": dataset,
                                          "valves": "given" if valves is not None else "valve nodes"},
                     {"inoperable_status": list(INOPERABLE), "sources": list(SOURCE_TYPES),
                      "source": "segment criticality: Walski (1993), Giswater mincut"},
                     found, summary, started_at=t0, requested_by=requested_by, engine=engine)
    return {"run_id": run.id, **summary, "by_pipe": pipes}

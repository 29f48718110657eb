"""Hydraulic simulation on demand: the stored network's model (model.py) run with WNTR's EPANET solver.

Pressures, heads and demands at every node, flows and velocities in every link, at every reporting step
(SI units), are stored as the run's results (`hydraulic_results`); junctions whose lowest pressure falls
below the minimum service pressure (data/service.toml, with its source) become findings.
"""
from __future__ import annotations

import tempfile
import threading
import tomllib
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from cim_core.db import get_engine
from cim_core.runs import Finding, now, record_run

from .model import DATA, HydraulicModel, build_model

NODE_QUANTITIES = {"pressure": "pressure", "head": "head", "demand": "demand"}
LINK_QUANTITIES = {"flow": "flowrate", "velocity": "velocity"}
DEFAULT_DURATION_H = 24.0
CACHE_SIZE = 4
_MODELS: dict = {}
_LOCK = threading.Lock()


@lru_cache
def service_levels() -> dict:
    with open(DATA / "service.toml", "rb") as f:
        return tomllib.load(f)


def compiled_model(engine: sa.Engine, *, utility: str = "water", dataset: str | None = None,
                   bbox: tuple[float, float, float, float] | None = None) -> HydraulicModel:
    """The model of the stored network, kept in memory until the model's change log moves on (building a
    large model costs seconds; edits through the importers and the store log their change)."""
    with engine.connect() as c:
        version = c.scalar(sa.text("select max(id) from change_log"))
    key = (str(engine.url), utility, dataset, bbox)
    with _LOCK:
        hit = _MODELS.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
    model = build_model(engine, utility=utility, dataset=dataset, bbox=bbox)
    with _LOCK:
        _MODELS[key] = (version, model)
        while len(_MODELS) > CACHE_SIZE:
            _MODELS.pop(next(iter(_MODELS)))
    return model


def run_epanet(model: HydraulicModel, duration_h: float | None = None):
    """WNTR's EPANET simulation of a model (duration in hours; default: a day). One simulation of a model
    at a time: a kept model is shared."""
    import wntr

    with model.lock, tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.wn.options.time.duration = round((duration_h or DEFAULT_DURATION_H) * 3600)
        return wntr.sim.EpanetSimulator(model.wn).run_sim(file_prefix=str(Path(tmp) / "run"))


def pressure_drop(engine: sa.Engine, closed: list[int], *, utility: str = "water", dataset: str | None = None,
                  skip: list[int] = (), duration_h: float | None = None, top: int = 10) -> dict[str, Any]:
    """How far the lowest pressure of each junction over a day falls with the links `closed` (object ids)
    shut, against the network as it is, under pressure-dependent demand (EPANET 2.2 PDD, full demand at
    the minimum service pressure); nodes in `skip` (the isolated area) are left out."""
    import wntr

    model = compiled_model(engine, utility=utility, dataset=dataset)
    net, wn = model.network, model.wn
    index = {int(i): k for k, i in enumerate(net.segment_id)}
    links = [wn.get_link(model.link_names[index[i]]) for i in closed if i in index]
    hyd = wn.options.hydraulic
    with model.lock:
        saved = [(lk, lk.initial_status) for lk in links], (hyd.demand_model, hyd.required_pressure)
        hyd.demand_model, hyd.required_pressure = "PDD", service_levels()["min_service_pressure"]["value_m"]
        try:
            base = run_epanet(model, duration_h).node["pressure"]
            for lk in links:
                lk.initial_status = wntr.network.LinkStatus.Closed
            shut = run_epanet(model, duration_h).node["pressure"]
        finally:
            for lk, status in saved[0]:
                lk.initial_status = status
            hyd.demand_model, hyd.required_pressure = saved[1]
    skipped = {int(i) for i in skip}
    keep = [k for k, i in enumerate(net.node_id) if int(i) not in skipped
            and wn.get_node(model.node_names[k]).node_type == "Junction"]
    cols = [model.node_names[k] for k in keep]
    drop = base[cols].min().to_numpy() - shut[cols].min().to_numpy()
    worst = np.argsort(-drop)[:top]
    return {"max_drop_m": round(float(drop.max()), 3) if len(drop) else 0.0,
            "nodes_over_1m": int((drop > 1.0).sum()), "demand_model": "PDD",
            "worst": [{"id": int(net.node_id[keep[k]]), "key": str(net.node_key[keep[k]]),
                       "drop_m": round(float(drop[k]), 3)} for k in worst if drop[k] > 0]}


def _low_pressure(model: HydraulicModel, pressure, minimum: float, source: str) -> list[Finding]:
    """A finding per junction whose lowest pressure is below the minimum."""
    net = model.network
    found = []
    junctions = [i for i, n in enumerate(model.node_names) if model.wn.get_node(n).node_type == "Junction"]
    values = pressure[[model.node_names[i] for i in junctions]].to_numpy()
    times = pressure.index.to_numpy()
    low = values.min(axis=0)
    for col in np.flatnonzero(low < minimum):
        i = junctions[col]
        t = int(times[int(np.argmin(values[:, col]))])
        found.append(Finding("low_pressure", f"{net.node_key[i]}: pressure {low[col]:.1f} m at {t // 3600:02d}:"
                             f"{t % 3600 // 60:02d} is below the minimum service pressure {minimum:g} m",
                             int(net.node_id[i]), location=tuple(net.node_xy[i]), severity="warning",
                             details={"measured_m": round(float(low[col]), 3), "required_m": minimum,
                                      "time_s": t, "source": source}))
    return found


def _store_results(engine: sa.Engine, run_id: int, model: HydraulicModel, results) -> int:
    """Every node's and link's series, in one COPY."""
    net = model.network
    rows = []
    for names, ids, frames, quantities in (
            (model.node_names, net.node_id, results.node, NODE_QUANTITIES),
            (model.link_names, net.segment_id, results.link, LINK_QUANTITIES)):
        for q, col in quantities.items():
            values = frames[col][names].to_numpy().T
            rows += [(run_id, int(i), q, v.tolist()) for i, v in zip(ids, values)]
    raw = engine.raw_connection()
    try:
        with raw.driver_connection.cursor() as cur, \
                cur.copy("copy hydraulic_results (run_id, object_id, quantity, series) from stdin") as cp:
            for r in rows:
                cp.write_row(r)
        raw.commit()
    finally:
        raw.close()
    return len(rows)


def simulate(*, utility: str = "water", dataset: str | None = None,
             bbox: tuple[float, float, float, float] | None = None, duration_h: float | None = None,
             min_pressure: float | None = None, requested_by: str | None = None,
             engine: sa.Engine | None = None) -> dict[str, Any]:
    """Simulate the stored network (a day by default), store the results as a run (`hydraulics`) and the
    junctions below the minimum service pressure as findings."""
    engine = engine or get_engine()
    t0 = now()
    model = compiled_model(engine, utility=utility, dataset=dataset, bbox=bbox)
    results = run_epanet(model, duration_h)
    rule = service_levels()["min_service_pressure"]
    minimum = rule["value_m"] if min_pressure is None else min_pressure
    source = rule["source"] if min_pressure is None else "given with the request"
    found = _low_pressure(model, results.node["pressure"], minimum, source)
    pressure = results.node["pressure"][model.node_names]
    times = [int(t) for t in results.node["pressure"].index]
    summary = {"times_s": times, "nodes": len(model.node_names), "links": len(model.link_names),
               "min_pressure_m": round(float(np.nanmin(pressure.to_numpy())), 3), "low_pressure_nodes": len(found),
               **{k: v for k, v in model.report.items() if k != "roughness"}}
    inputs = {"utility": utility, "dataset": dataset, "bbox": list(bbox) if bbox else None,
              "duration_h": duration_h or DEFAULT_DURATION_H}
    rules = {"min_service_pressure_m": minimum, "source": source, "solver": "EPANET 2.2 via WNTR",
             "roughness": model.report["roughness"]}
    run = record_run("hydraulics", inputs, rules, found, summary, started_at=t0, requested_by=requested_by,
                     engine=engine)
    stored = _store_results(engine, run.id, model, results)
    return {"run_id": run.id, **summary, "series_stored": stored, "times_s": times}


def results_of(run_id: int, object_id: int, engine: sa.Engine | None = None) -> dict[str, list[float]]:
    """The stored series of one object in a simulation run, by quantity."""
    engine = engine or get_engine()
    with engine.connect() as c:
        rows = c.execute(sa.text("select quantity, series from hydraulic_results where run_id = :r and "
                                 "object_id = :o order by quantity"), {"r": run_id, "o": object_id}).all()
    return {q: list(s) for q, s in rows}

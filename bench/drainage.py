"""Drainage: SWMM export + run through the platform against pyswmm on the same .inp, and traces.

In an embedded database of the bench's own (CIM_HOME under the work folder, stopped at the end):
1. SWMM Example1 and the state-plane model (tests/data) imported; ours = export from the database + run +
   per-object results (analyses.drainage: swmm_export.export, swmm_run.simulate); anchor = pyswmm running
   the original file in one stride (`sim.step_advance`, its fastest) and reading the same statistics through
   its public API (Nodes/Links); also the engine alone (swmm-toolkit swmm_run, no statistics read) as a
   floor. Medians of interleaved runs (SWMM_FILES).
2. The sample district's drainage network (scale N) under a 3-year 60-minute design storm: ours = the
   storm model built from the database + run + results; anchor = pyswmm on the .inp we wrote.
   Above scale 1 (STORM_MAX_SCALE) the storm is left out.
3. A downstream trace from every manhole of the district (one loaded network), and single traces through
   the API process (in-process ASGI client, 200 requests from random manholes): p50/p95.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).parent.parent
API_TRACES = 200


def _pyswmm(inp: Path) -> float:
    """Seconds for pyswmm to run a model and read every node's and conduit's statistics."""
    from pyswmm import Links, Nodes, Simulation

    from analyses.drainage.swmm_run import STRIDE_S

    t0 = time.perf_counter()
    with Simulation(str(inp)) as sim:
        sim.step_advance(STRIDE_S)  # pyswmm at its fastest: the run in one stride, as ours
        for _ in sim:
            pass
        _ = [n.statistics for n in Nodes(sim)] + [lk.conduit_statistics for lk in Links(sim) if lk.is_conduit()]
    return time.perf_counter() - t0


def _engine_only(inp: Path) -> float:
    """Seconds for the SWMM engine alone (swmm-toolkit's swmm_run, statistics left in the report): a floor."""
    from swmm.toolkit import solver

    t0 = time.perf_counter()
    solver.swmm_run(str(inp), str(inp.with_suffix(".engine.rpt")), str(inp.with_suffix(".engine.out")))
    return time.perf_counter() - t0


FT = 0.3048
# The SWMM files of tests/data, how tests/test_drainage_swmm.py places them, and how many interleaved runs
# the medians take: Example1 runs in tens of ms, where a shared machine's noise is +-30 %; the state-plane
# model's run takes about a minute.
SWMM_FILES = {
    "example1": ("swmm_Example1_runnable.inp", {"offset": (501000, 3649000)}, 21),
    "state-plane": ("swmm_model_state_plane.inp", {"scale": FT, "utility": "sewage", "offset": (
        501800 - 2745633.581 * FT, 3649500 - 1116753.856 * FT)}, 3),
}
# The district storm takes minutes at scale 1 (SWMM's dynamic wave): above it, only the traces are measured
# (the scale-30 goal: a downstream trace from every manhole).
STORM_MAX_SCALE = 1.0


def _swmm_file(work: Path, engine, dataset: str) -> dict:
    """A SWMM file imported; ours (export from the database + run + per-object results) against pyswmm on the
    original file, medians of interleaved runs."""
    from analyses.drainage import swmm_export
    from analyses.drainage.swmm_run import simulate
    from importers import swmm

    file, kw, repeat = SWMM_FILES[dataset]
    original = work / file
    shutil.copy(ROOT / "tests/data" / file, original)
    swmm.import_file(original, crs="EPSG:4547", dataset=dataset, engine=engine, force=True, **kw)
    ours, theirs, engine_only = [], [], []
    for _ in range(repeat):
        theirs.append(_pyswmm(original))
        t0 = time.perf_counter()
        simulate(swmm_export.export(dataset, work / f"{dataset}-out.inp", engine=engine))
        ours.append(time.perf_counter() - t0)
        engine_only.append(_engine_only(original))
    o, t = float(np.median(ours)), float(np.median(theirs))
    return {"ours_s": round(o, 4), "pyswmm_s": round(t, 4), "ratio": round(o / t, 2),
            "engine_only_s": round(float(np.median(engine_only)), 4), "repeats": repeat}


def _district_storm(work: Path, engine) -> dict:
    from analyses.drainage import storm
    from analyses.drainage.swmm_run import simulate

    cfg = storm.config()
    t0 = time.perf_counter()
    m = storm.storm_model("bench-pipes", 3, 60, engine=engine, cfg=cfg)
    inp = work / "district-storm.inp"
    inp.write_text(m.text(), encoding="utf-8")
    res = simulate(inp)
    ours = time.perf_counter() - t0
    theirs = _pyswmm(inp)
    return {"junctions": len(m.sections.get("JUNCTIONS", [])), "conduits": len(res.links),
            "subcatchments": len(m.sections.get("SUBCATCHMENTS", [])), "ours_s": round(ours, 2),
            "pyswmm_s": round(theirs, 2), "ratio": round(ours / theirs, 2), "engine_only_s": round(_engine_only(inp), 2)}


def _traces(engine) -> dict:
    from fastapi.testclient import TestClient

    from analyses.drainage import network as dn
    from analyses.drainage.tracing import Tracer
    from services import auth
    from services.app import create_app

    t0 = time.perf_counter()
    net = dn.load(engine, geometry=True)
    load_s = time.perf_counter() - t0
    tracer = Tracer(net)
    manholes = np.flatnonzero(net.node_type == "manhole")
    t0, c0 = time.perf_counter(), time.process_time()
    for i in manholes:
        tracer.trace("node", int(i), "down")
    all_s, all_cpu = time.perf_counter() - t0, time.process_time() - c0
    _, key = auth.create_key("utilities", engine=engine)
    rng = np.random.default_rng(7)
    times = []
    with TestClient(create_app()) as c:
        for i in rng.choice(manholes, API_TRACES):
            t = time.perf_counter()
            r = c.post("/api/processes/drainage-trace/execution",
                       json={"inputs": {"node": int(net.node_id[i]), "direction": "both"}}, headers={"X-API-Key": key})
            times.append(time.perf_counter() - t)
            assert r.status_code == 200, r.text
    ms = np.array(times[1:]) * 1000  # the first loads the network into the cache
    return {"manholes": len(manholes), "load_s": round(load_s, 2), "all_downstream_s": round(all_s, 2),
            "all_downstream_cpu_s": round(all_cpu, 2),
            "api_first_ms": round(times[0] * 1000, 1), "api_p50_ms": round(float(np.percentile(ms, 50)), 1),
            "api_p95_ms": round(float(np.percentile(ms, 95)), 1)}


def run(scale: float, work: Path) -> dict:
    work = work.absolute()
    os.environ["CIM_HOME"] = str(work / "home")
    os.environ.pop("CIM_DATABASE_URL", None)
    os.environ.pop("CIM_SRID", None)

    from cim_core import db as cdb
    from cim_core.settings import get_settings
    from importers import gis
    from sample_models.district import generate

    get_settings.cache_clear()
    district = work / f"district-{scale:g}"
    if not (district / "manifest.json").exists():
        generate(district, scale=scale, seed=7)
    emb = cdb.embedded()
    try:
        engine = cdb.get_engine()
        gis.import_file(district / "district.gpkg", layer="pipes", kind="pipes", dataset="bench-pipes",
                        engine=engine)
        out = {d: _swmm_file(work, engine, d) for d in SWMM_FILES}
        if scale <= STORM_MAX_SCALE:
            gis.import_file(district / "district.gpkg", layer="landuse", kind="landuse", dataset="bench-landuse",
                            engine=engine)
            out["district_storm"] = _district_storm(work, engine)
        return {**out, "traces": _traces(engine)}
    finally:
        emb.stop()

"""Water supply operations (issue 14), each against its anchor in one run, on the bench's own database.

- Export + 24 h simulation of Net6 (3,356 nodes, WNTR's library copy) through the platform
  (analyses.water.hydraulics.run_epanet on build_model: the model read back from the database; and on
  compiled_model: the model kept in memory until the network changes, as `simulate` uses it) against
  WNTR on the original file (parse + EpanetSimulator); best of 3 each, alternating. Target: <= 1.2x.
- Criticality of every pipe of the sample district's water network (the segments and what closing each
  cuts off; analyses.water.criticality.segment_table on a freshly loaded network) against
  wntr.metrics.valve_segments on the same network (WNTR graph of the exported model) and the same valve
  layer; best of 3. Target: no slower.
- Burst isolation through the API (`cim serve`, one worker, the burst-isolation process, run recorded):
  p50/p95 over 200 sequential requests on random water pipes of the district at --scale, after 5 warm-up
  requests. Target: p95 < 200 ms.
"""
from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path

import numpy as np

from bench._http import free_port

X0, Y0 = 501800.0, 3649500.0
REQUESTS = 200


def _best(fn, n: int = 3) -> float:
    times = []
    for _ in range(n):
        gc.collect()  # each call pays for its own garbage, not for the previous call's (WNTR's models are large)
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _net6(engine, work: Path) -> dict:
    import wntr

    from analyses.water.hydraulics import compiled_model, run_epanet
    from analyses.water.model import build_model
    from importers import epanet

    path = Path(wntr.__file__).parent / "library" / "networks" / "Net6.inp"
    epanet.import_file(path, crs="EPSG:4547", offset=(X0, Y0), scale=10.0, engine=engine)

    def ours():  # the model built from the database on every call
        run_epanet(build_model(engine, dataset="Net6"), 24)

    def ours_kept():  # the model the platform keeps in memory until the network changes
        run_epanet(compiled_model(engine, dataset="Net6"), 24)

    def theirs():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wn = wntr.network.WaterNetworkModel(str(path))
            wn.options.time.duration = 24 * 3600
            wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=str(work / "net6"))

    t_ours, t_kept, t_theirs = [], [], []
    for _ in range(3):
        t_ours.append(_best(ours, 1))
        t_kept.append(_best(ours_kept, 1))
        t_theirs.append(_best(theirs, 1))
    best = min(t_theirs)
    return {"platform_built_s": round(min(t_ours), 3), "platform_kept_model_s": round(min(t_kept), 3),
            "wntr_original_s": round(best, 3), "ratio_built": round(min(t_ours) / best, 3),
            "ratio_kept_model": round(min(t_kept) / best, 3), "target": "<= 1.2"}


def _district(engine, scale: float, work: Path, dataset: str) -> None:
    from importers import gis
    from sample_models.district import generate

    out = work / f"district_{scale:g}"
    if not (out / "manifest.json").exists():
        generate(out, scale=scale, seed=7)
    gis.import_file(out / "district.gpkg", layer="pipes", kind="pipes", dataset=dataset, engine=engine)


def _criticality(engine, work: Path) -> dict:
    import pandas as pd
    import wntr

    from analyses.water import isolation
    from analyses.water.criticality import segment_table
    from analyses.water.model import build_model

    _district(engine, 1.0, work, "district-1")
    model = build_model(engine, dataset="district-1")
    iso = isolation.load(engine, dataset="district-1")
    v = iso.valves
    layer = pd.DataFrame({"link": [model.link_names[i] for i in v.link], "node": [model.node_names[i] for i in v.node]})
    graph = model.wn.to_graph()

    def ours():
        isolation.clear_cache()
        segment_table(isolation.load(engine, dataset="district-1"))

    def theirs():
        wntr.metrics.valve_segments(graph, layer.copy())

    t_ours, t_theirs = _best(ours), _best(theirs)
    return {"pipes": iso.net.n_segments, "valves": len(v.link), "segments": iso.segments.count,
            "platform_s": round(t_ours, 3), "wntr_valve_segments_s": round(t_theirs, 3),
            "ratio": round(t_ours / t_theirs, 3), "target": "<= 1 (no slower)",
            "note": "ours includes loading the network from the database and the cut-off parts of every segment"}


def _isolation_api(engine, scale: float, work: Path, home: Path) -> dict:
    from services import auth

    dataset = f"district-{scale:g}"
    _district(engine, scale, work, dataset)
    _, key = auth.create_key("water", engine=engine)
    iso_ids = _pipe_ids(engine, dataset)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (work / "cim-serve.log").open("w")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("cim")), "serve", "--port", str(port), "--workers",
                             "1"], env={**os.environ, "CIM_HOME": str(home)}, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait(base)
        rng = np.random.default_rng(5)
        picks = rng.choice(iso_ids, REQUESTS + 5)
        times = []
        for i, pipe in enumerate(picks):
            t0 = time.perf_counter()
            _post(f"{base}/api/processes/burst-isolation/execution", {"inputs": {"pipe": int(pipe)}}, key)
            if i >= 5:
                times.append((time.perf_counter() - t0) * 1000)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    return {"scale": scale, "pipes": len(iso_ids), "requests": REQUESTS,
            "p50_ms": round(float(np.percentile(times, 50)), 1), "p95_ms": round(float(np.percentile(times, 95)), 1),
            "target": "p95 < 200 ms"}


def _pipe_ids(engine, dataset: str) -> list[int]:
    import sqlalchemy as sa

    with engine.connect() as c:
        return c.scalars(sa.text("select s.object_id from pipe_segments s join city_objects o on o.id = s.object_id "
                                 "join datasets d on d.id = o.dataset_id where d.name = :d and s.utility = 'water'"),
                         {"d": dataset}).all()


def _post(url: str, body: dict, key: str) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "X-API-Key": key})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())


def _wait(base: str) -> None:
    end = time.time() + 120
    while time.time() < end:
        try:
            with urllib.request.urlopen(f"{base}/api/processes", timeout=10):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"cim serve did not answer at {base}")


def run(scale: float, work: Path) -> dict:
    work = work.absolute()
    home = work / "home"
    os.environ["CIM_HOME"] = str(home)
    os.environ.pop("CIM_DATABASE_URL", None)

    from cim_core import db as cdb
    from cim_core.settings import get_settings

    get_settings.cache_clear()
    started = cdb.embedded().start()
    try:
        engine = cdb.get_engine()
        return {"net6_export_simulate": _net6(engine, work), "criticality_scale_1": _criticality(engine, work),
                "isolation_api": _isolation_api(engine, scale, work, home)}
    finally:
        if started:
            cdb.embedded().stop()

"""Underground analyses: all clearance checks over the sample district, against the plain PostGIS query an
analyst would write for the same horizontal pairs; excavation through the API.

The sample district (scale N, seed 7) is generated under the work folder and its roads, buildings, pipe
nodes and pipes are imported into an embedded database of the bench's own, one per scale (CIM_HOME under
the work folder); both are kept, so that a second run reuses them (the import skips content it holds).
Ours: `analyses.underground.clearances.check()` over the whole district (every check, stored as a run), its
wall time and the process's peak RSS during the checks (the peak reset before them: the import's is not theirs),
beside the RSS before them, and its findings outside the planted-violations zone (the clean part's: 0 wanted).
Anchor: one `ST_DWithin` self-join per horizontal pipe-pipe rule of
the packaged table (the rule's distance plus both radii between axes, pairs that do not cross), counted;
the pair counts must agree with ours (`within`); left out above ANCHOR_MAX_SCALE. Excavation: `cim serve` (one uvicorn worker) answers
POST /api/processes/underground-excavation/execution for 30 m x 30 m pits, 2.5 m deep, centred on random
pipe nodes, one request at a time; p50 and p95.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench._http import free_port

PITS = 200
PIT_M = 30.0
# The anchor's self-join takes 72 s at scale 1 on a loaded 2-core machine and grows faster than the
# network: above this scale it is left out (its ratio comes from a scale-1 run).
ANCHOR_MAX_SCALE = 2


def _radius(t: str) -> str:
    return (f"coalesce(case when {t}.shape = 'rectangular' then {t}.width_mm else {t}.diameter_mm end, 0) / 2000")


def _condition(t: str, cls: str) -> str:
    from analyses.underground.rules import pressure_class

    cls = cls.strip()
    if cls.startswith(("d<=", "d>")):
        op, mm = ("<=", cls[3:]) if cls.startswith("d<=") else (">", cls[2:])
        return f" and coalesce({t}.diameter_mm, greatest({t}.width_mm, {t}.height_mm)) {op} {float(mm[:-2])}"
    if "pressure" in cls:
        return f" and lower({t}.pressure_class) = '{pressure_class(cls)}'"
    return ""


def anchor_sql(rule) -> str:
    """The analyst's query for one horizontal pipe-pipe rule: pairs within the clear distance."""
    a, b = rule.utility_a.split("|"), rule.utility_b.split("|")
    return f"""
        select count(*) from pipe_segments a join pipe_segments b on a.object_id <> b.object_id
        where a.utility = any(array{a!r}) {_condition('a', rule.class_a)}
          and b.utility = any(array{b!r}) {_condition('b', rule.class_b)}
          and st_dwithin(a.centerline, b.centerline, {rule.min_m} + {_radius('a')} + {_radius('b')})
          and not st_intersects(a.centerline, b.centerline)"""


def _load(scale: float, work: Path) -> list[float]:
    """Generate (once) and import the district, then VACUUM ANALYZE what the analyses read, as PostgreSQL
    advises after a bulk load (manual, 14.4.9 "Run ANALYZE Afterwards"): measured right after a scale-30
    import, while autovacuum still worked through 780k new objects, the checks took 30 s instead of 21 s
    and the excavation p95 57 ms instead of 32 ms."""
    import sqlalchemy as sa

    from cim_core.db import get_engine
    from importers import gis
    from sample_models.district import generate, underground

    out = work / f"district-{scale:g}"
    if not (out / "manifest.json").exists():
        generate(out, scale=scale, seed=7)
    for layer in ("roads", "buildings", "pipes"):  # the pipes bring their nodes layer along
        gis.import_file(out / "district.gpkg", layer=layer, dataset=f"bench-{layer}")
    if (out / underground.GPKG).exists():  # the planted-violations zone
        underground.load(out)
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(sa.text("vacuum (analyze) city_objects, pipe_segments, pipe_nodes"))
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))["underground"]["zone"]["bbox"]


def _outside(engine, run_id: int, zone: list[float]) -> int:
    """The run's findings (not "no rule" notes) outside the planted-violations zone: the clean part's."""
    import sqlalchemy as sa

    with engine.connect() as c:
        return c.scalar(sa.text("select count(*) from qa_findings where run_id = :r and severity <> 'info' "
                                "and not st_intersects(geom, st_makeenvelope(:x0, :y0, :x1, :y1, st_srid(geom)))"),
                        dict(zip(("r", "x0", "y0", "x1", "y1"), (run_id, *zone))))


def _peak_rss_mb(reset: bool = False) -> int:
    """This process's peak resident set (VmHWM, MB); reset: first set the peak back to the current
    resident set (Linux clear_refs 5), so that the peak read after the checks is theirs, not the import's."""
    if reset:
        Path("/proc/self/clear_refs").write_text("5")
    status = Path("/proc/self/status").read_text().splitlines()
    return int(next(line.split()[1] for line in status if line.startswith("VmHWM"))) // 1024


def _clearances(engine, zone: list[float], anchor: bool) -> dict:
    import sqlalchemy as sa

    from analyses.underground import clearances
    from analyses.underground.rules import current_rules

    before = _peak_rss_mb(reset=True)
    t0 = time.perf_counter()
    result = clearances.check(engine=engine)
    ours = time.perf_counter() - t0
    within = sum(v["within"] for v in result["summary"]["pairs"]["horizontal"].values())
    out = {"segments": result["summary"]["segments"], "ours_all_checks_s": round(ours, 2),
           "rss_before_checks_mb": before, "ours_peak_rss_mb": _peak_rss_mb(),
           "horizontal_pairs_ours": within, "findings": result["findings"],
           "findings_outside_planted_zone": _outside(engine, result["run_id"], zone)}
    if not anchor:
        return out
    rules = [r for r in current_rules(engine).of("horizontal") if r.utility_b != "building"]
    t0 = time.perf_counter()
    with engine.connect() as c:
        anchor_pairs = sum(c.scalar(sa.text(anchor_sql(r))) for r in rules)
    took = time.perf_counter() - t0
    return out | {"anchor_horizontal_st_dwithin_s": round(took, 2), "ratio_time": round(ours / took, 2),
                  "horizontal_pairs_anchor": anchor_pairs, "same_pair_counts": within == anchor_pairs}


def _excavation(engine, work: Path) -> dict:
    import sqlalchemy as sa

    from services import auth

    with engine.connect() as c:
        xy = c.execute(sa.text("select st_x(geom), st_y(geom) from pipe_nodes")).all()
    _, key = auth.create_key("utilities", name="bench", engine=engine)
    port = free_port()
    log = (work / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "services.app:create_app", "--host",
                             "127.0.0.1", "--port", str(port), "--workers", "1"], stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ))
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=60, headers={"X-API-Key": key}) as http:
            for _ in range(600):
                try:
                    http.get("/api")
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            rnd, times, reached = random.Random(3), [], 0
            for _ in range(PITS):
                x, y = rnd.choice(xy)
                h = PIT_M / 2
                ring = [[x - h, y - h], [x + h, y - h], [x + h, y + h], [x - h, y + h], [x - h, y - h]]
                t0 = time.perf_counter()
                r = http.post("/api/processes/underground-excavation/execution",
                              json={"inputs": {"polygon": {"type": "Polygon", "coordinates": [ring]}, "depth": 2.5}})
                times.append(time.perf_counter() - t0)
                r.raise_for_status()
                reached += sum(s["reached"] for s in r.json()["segments"])
    finally:
        proc.terminate()
        proc.wait(20)
    times.sort()
    return {"excavation_requests": PITS, "excavation_p50_ms": round(1000 * times[len(times) // 2], 1),
            "excavation_p95_ms": round(1000 * times[int(len(times) * 0.95)], 1),
            "excavation_segments_reached_mean": round(reached / PITS, 1)}


def run(scale: float, work: Path) -> dict:
    work = work.absolute()
    os.environ["CIM_HOME"] = str(work / f"home-{scale:g}")  # a database per scale: imported once, reused
    os.environ.pop("CIM_DATABASE_URL", None)

    from cim_core import db as cdb
    from cim_core.settings import get_settings

    get_settings.cache_clear()
    started = cdb.embedded().start()  # the bench's own cluster: stopped again if this run started it
    try:
        zone = _load(scale, work)
        engine = cdb.get_engine()
        return {**_clearances(engine, zone, scale <= ANCHOR_MAX_SCALE), **_excavation(engine, work)}
    finally:
        if started:
            cdb.embedded().stop()

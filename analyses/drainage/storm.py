"""Design storm runs: a Chicago hyetograph from the storm intensity formula, the drainage network with
subcatchments from the land-use parcels exported to SWMM, the run, and its results stored per node and
conduit (drainage_storm_results) with the waterlogging risk points (manholes flooding past a road-depth rule)
as findings.

The formula's parameters, the hyetograph's peak ratio, the subcatchment defaults (data/storm.toml) and the
imperviousness per land-use class (data/landuse_imperviousness.csv) are data with their sources; the run
records them as its rules.
"""
from __future__ import annotations

import csv
import math
import tempfile
import tomllib
from pathlib import Path

import numpy as np
import shapely
import sqlalchemy as sa

from cim_core import scenarios
from cim_core.db import get_engine
from cim_core.errors import InputError
from cim_core.network import subcatchments
from cim_core.runs import Finding, now, record_run

from . import swmm_export
from .network import scenario_id
from .swmm_run import FEET, FLOW_SI, Results, capacity_ratios, simulate

DATA = Path(__file__).parent / "data"
GAGE, SERIES = "CIM_STORM", "CIM_STORM"


def config() -> dict:
    cfg = tomllib.loads((DATA / "storm.toml").read_text(encoding="utf-8"))
    with open(DATA / "landuse_imperviousness.csv", encoding="utf-8") as f:
        cfg["imperviousness"] = {r["landuse"]: {"pct": float(r["impervious_pct"]), "source": r["source"]}
                                 for r in csv.DictReader(f)}
    return cfg


def chicago(return_period: float, duration_min: float, formula: dict, peak_ratio: float,
            step_min: float = 1.0) -> np.ndarray:
    """Intensities (mm/h) of each step of a Chicago hyetograph. The depth of the wettest window T around the
    peak equals the formula's, D(T) = A T / (T + b)^n with A = A1 (1 + C lg P)."""
    if return_period <= 0 or duration_min <= 0:
        raise InputError(f"a storm needs a positive return period and duration, not P={return_period:g} years, "
                         f"{duration_min:g} min")
    if not 0 < peak_ratio < 1 or step_min <= 0:
        raise InputError(f"peak ratio must lie between 0 and 1 (got {peak_ratio:g}) and the step be positive")
    a = formula["A1"] * (1 + formula["C"] * math.log10(return_period))

    def depth(t):
        return a * t / (t + formula["b"]) ** formula["n"]

    tp, r = peak_ratio * duration_min, peak_ratio
    t = np.minimum(np.arange(0, duration_min + step_min, step_min), duration_min)
    cum = np.where(t <= tp, r * depth(tp / r) - r * depth(np.maximum(tp - t, 0) / r),
                   r * depth(tp / r) + (1 - r) * depth(np.maximum(t - tp, 0) / (1 - r)))
    steps = np.diff(t)
    return np.diff(cum)[steps > 0] / steps[steps > 0] * 60.0


def _hhmm(minutes: float) -> str:
    m = round(minutes)
    return f"{m // 60}:{m % 60:02d}"


def _subcatchments(engine: sa.Engine, m: swmm_export.Model, cfg: dict,
                   scenario_id: int | None) -> dict[str, list[str]]:
    """SUBCATCHMENTS, SUBAREAS and INFILTRATION rows: the land-use parcels (of the as-is model or a scenario's)
    split so that each piece drains to its nearest node of the model's rain (or combined) network within
    reach (`cim_core.network.subcatchments`)."""
    sc, imp = cfg["subcatchments"], cfg["imperviousness"]
    with engine.connect() as c:
        inlets = c.execute(sa.text("""
            select n.object_id, st_x(n.geom), st_y(n.geom) from pipe_nodes n
            where n.object_id = any(:ids) and n.utility in ('rain', 'combined') and n.node_type <> 'outlet'
            order by n.object_id"""), {"ids": list(m.node_ids.values())}).all()
        parcels = c.execute(sa.text(f"""
            select o.id, coalesce(o.attributes ->> 'landuse', ''), st_asbinary(st_force2d(o.footprint))
            from city_objects o
            where o.class = 'landuse' and o.attributes ? 'landuse' and o.footprint is not null
              and {scenarios.current(scenario_id)} order by o.id""")).all()
    out: dict[str, list[str]] = {"SUBCATCHMENTS": [], "SUBAREAS": [], "INFILTRATION": []}
    if not inlets or not parcels:
        return out
    by_id = {i: nm for nm, i in m.node_ids.items()}
    pieces = subcatchments.split(shapely.from_wkb([bytes(p[2]) for p in parcels]),
                                 np.array([(x, y) for _, x, y in inlets]), sc["reach_m"])
    for k, (p, i, area) in enumerate(zip(pieces.parcel, pieces.inlet, pieces.area)):
        pid, use = parcels[p][:2]
        nm, pct = f"S{pid}_{k}", imp.get(use, imp["default"])["pct"]
        out["SUBCATCHMENTS"].append(f"{nm} {GAGE} {by_id[inlets[i][0]]} {area / 1e4:.4f} {pct:g} "
                                    f"{math.sqrt(area):.1f} {sc['default_slope_pct']:g} 0")
        out["SUBAREAS"].append(f"{nm} {sc['n_imperv']} {sc['n_perv']} {sc['s_imperv_mm']} {sc['s_perv_mm']} "
                               f"{sc['pct_zero']} OUTLET")
        out["INFILTRATION"].append(f"{nm} " + " ".join(f"{v:g}" for v in sc["horton"]))
    return out


def _conduits(m: swmm_export.Model) -> dict[str, tuple[float, tuple[str, float, float], float]]:
    """(Manning's n, section, slope) of every conduit of a model, for the capacity ratio."""
    inv = {ln.split()[0]: float(ln.split()[1]) for s in ("JUNCTIONS", "OUTFALLS", "STORAGE", "DIVIDERS")
           for ln in m.sections.get(s, [])}
    xs = {t[0]: (t[1].upper(), float(t[2]), float(t[3])) for t in (ln.split() for ln in m.sections.get("XSECTIONS", []))
          if len(t) > 3 and t[1].upper() != "IRREGULAR"}
    out = {}
    for t in (ln.split() for ln in m.sections.get("CONDUITS", [])):
        if t[0] in xs and t[1] in inv and t[2] in inv and float(t[3]) > 0:
            rise = inv[t[1]] + float(t[5]) - inv[t[2]] - float(t[6])
            out[t[0]] = (float(t[4]), xs[t[0]], rise / float(t[3]))
    return out


def storm_model(dataset: str, return_period: float, duration_min: float, *, engine: sa.Engine,
                cfg: dict, scenario: str | None = None) -> swmm_export.Model:
    """The SWMM model of a dataset (in a scenario's model, if given) under the design storm: a network imported
    from SWMM keeps its subcatchments with every rain gage fed by the storm; any other gets subcatchments from
    the parcels."""
    hy = cfg["hyetograph"]
    series = chicago(return_period, duration_min, cfg["formula"], hy["peak_ratio"], hy["step_min"])
    step = hy["step_min"]
    ts = [f"{SERIES} {_hhmm(i * step)} {v:.4f}" for i, v in enumerate(series)] + \
        [f"{SERIES} {_hhmm(len(series) * step)} 0"]
    end = duration_min + 120
    options = {"END_DATE": "01/01/2024" if end < 1440 else "01/02/2024", "END_TIME": _hhmm(end % 1440) + ":00",
               "START_DATE": "01/01/2024", "START_TIME": "00:00:00", "REPORT_START_DATE": "01/01/2024",
               "REPORT_START_TIME": "00:00:00"}
    m = swmm_export.build_model(dataset, engine=engine, options=options, scenario=scenario)
    gage = f"INTENSITY {_hhmm(step)} 1.0 TIMESERIES {SERIES}"
    if "RAINGAGES" in m.sections:  # a SWMM model: its gages take the storm
        m.sections["RAINGAGES"] = [f"{ln.split()[0]} {gage}" for ln in m.sections["RAINGAGES"]]
    else:
        m.sections["RAINGAGES"] = [f"{GAGE} {gage}"]
        for sec, lines in _subcatchments(engine, m, cfg, scenario_id(engine, scenario)).items():
            m.sections[sec] = lines
    m.sections.setdefault("TIMESERIES", []).extend(ts)
    return m


def _store(engine: sa.Engine, run_id: int, m: swmm_export.Model, res: Results) -> None:
    """Results per node and conduit, in SI units."""
    k, q = m.length_factor, FLOW_SI[res.flow_units]
    vol = FEET ** 3 if res.flow_units in ("CFS", "GPM", "MGD") else 1.0
    rows = [{"r": run_id, "o": m.node_ids[nm], "k": "node", "d": v["peak_depth"] * k, "s": v["surcharge_hours"],
             "f": v["flooding_volume"] * vol, "fh": v["flooding_hours"], "q": None, "c": None}
            for nm, v in res.nodes.items() if nm in m.node_ids]
    rows += [{"r": run_id, "o": m.link_ids[nm], "k": "conduit", "d": v["peak_depth"] * k,
              "s": v["surcharge_hours"], "f": None, "fh": None, "q": v["peak_flow"] * q,
              "c": v.get("capacity_ratio")} for nm, v in res.links.items() if nm in m.link_ids]
    if rows:
        with engine.begin() as c:
            c.execute(sa.text("""insert into drainage_storm_results (run_id, object_id, kind, peak_depth_m,
                surcharge_h, flooding_m3, flooding_h, peak_flow_m3s, capacity_ratio)
                values (:r, :o, :k, :d, :s, :f, :fh, :q, :c)"""), rows)


def waterlogging_m3(cfg: dict) -> float:
    """The flooding volume (m3) above which a manhole is a waterlogging point: the rule's depth over its
    ponding area (data/storm.toml [waterlogging])."""
    w = cfg["waterlogging"]
    return w["depth_m"] * w["ponding_area_m2"]


def run(dataset: str, *, return_period: float, duration_min: float, scenario: str | None = None,
        engine: sa.Engine | None = None, keep: str | Path | None = None, requested_by: str | None = None) -> dict:
    """Run a design storm (P years, duration in minutes) over a dataset's drainage network (in the model of a
    scenario, if given); store the results and the waterlogging points (manholes whose flooding, spread over
    the ponding area, stands deeper than the rule's depth) as findings. `keep`: a folder for the .inp/.rpt."""
    engine, t0, cfg = engine or get_engine(), now(), config()
    m = storm_model(dataset, return_period, duration_min, engine=engine, cfg=cfg, scenario=scenario)
    with tempfile.TemporaryDirectory() as tmp:
        inp = Path(keep or tmp) / f"{dataset}-storm-P{return_period:g}-{duration_min:g}min.inp"
        inp.parent.mkdir(parents=True, exist_ok=True)
        inp.write_text(m.text(), encoding="utf-8")
        res = simulate(inp)
    capacity_ratios(res, _conduits(m))
    vol = FEET ** 3 if res.flow_units in ("CFS", "GPM", "MGD") else 1.0
    flooding = {nm: v["flooding_volume"] * vol for nm, v in res.nodes.items() if nm in m.node_ids}
    area = cfg["waterlogging"]["ponding_area_m2"]
    found = [Finding("flooding", f"{nm}: floods {flooding[nm]:.1f} m3 for {v['flooding_hours']:.2f} h "
                     f"(about {flooding[nm] / area:.2f} m deep over {area:g} m2) in a {return_period:g}-year "
                     f"{duration_min:g}-minute storm", m.node_ids[nm], location=m.node_xy[nm],
                     details={"flooding_m3": flooding[nm], "flooding_h": v["flooding_hours"],
                              "ponding_depth_m": flooding[nm] / area,
                              "peak_depth_m": v["peak_depth"] * m.length_factor})
             for nm, v in res.nodes.items() if flooding.get(nm, 0.0) > waterlogging_m3(cfg)]
    ratios = [v["capacity_ratio"] for v in res.links.values() if v.get("capacity_ratio") is not None]
    summary = {"flooding_points": len(found), "flooding_m3": sum(f.details["flooding_m3"] for f in found),
               "overflowing_manholes": sum(v > 0 for v in flooding.values()),
               "nodes": len(res.nodes), "conduits": len(res.links),
               "conduits_over_capacity": sum(r > 1 for r in ratios),
               "subcatchments": len(m.sections.get("SUBCATCHMENTS", []))}
    rules = {k: cfg[k] for k in ("formula", "hyetograph", "subcatchments", "imperviousness", "waterlogging")}
    inputs = {"dataset": dataset, "return_period": return_period, "duration_min": duration_min}
    run_ = record_run("drainage-storm", {**inputs, "scenario": scenario} if scenario else inputs, rules, found,
                      summary, started_at=t0, requested_by=requested_by, engine=engine)
    _store(engine, run_.id, m, res)
    return {"run_id": run_.id, **summary}

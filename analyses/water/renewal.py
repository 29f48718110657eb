"""The old-mains renewal programme: rank the water mains and spread the city's target over the years.

Each main is scored (0..1 factors, weights from data/renewal.toml): its age against the design life of its
material (data/design_life.csv, with sources), whether the national plan names its material for renewal,
its criticality (valve segments: the length a burst takes out of service), repairs on record
(importers.incidents), low pressure
at its ends in the latest simulation run, and its size. Mains past their design life or of a material the
plan names are candidates; in rank order they fill the years from the start year to the target date with
equal shares of the target length; the cost per year comes from a unit-cost table (an input).
"""
from __future__ import annotations

import csv
import datetime as dt
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from cim_core.db import get_engine
from cim_core.errors import InputError
from cim_core.runs import now, record_run

from .criticality import segment_table
from .isolation import load
from .model import DATA

FACTORS = ("age", "material", "criticality", "repairs", "pressure", "diameter")


@lru_cache
def design_life() -> dict[str, dict]:
    """Design life and must-renew flag by material name and alias (lower case)."""
    out = {}
    with open(DATA / "design_life.csv", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            row = {"material": r["material"], "life": int(r["design_life_years"]),
                   "must_renew": r["must_renew"] == "true", "source": r["source"]}
            for name in [r["material"], *filter(None, r["aliases"].split("|"))]:
                out[name.lower()] = row
    return out


def config() -> dict:
    with open(DATA / "renewal.toml", "rb") as f:
        return tomllib.load(f)


def unit_costs(path: str | Path | None = None) -> list[tuple[float, float]]:
    """(max diameter mm, CNY per m), ascending; from `path` or the placeholder table."""
    with open(path or DATA / "unit_cost.csv", newline="", encoding="utf-8") as f:
        rows = sorted((float(r["max_diameter_mm"]), float(r["cny_per_m"])) for r in csv.DictReader(f))
    if not rows:
        raise InputError(f"{path}: no unit costs")
    return rows


def _mains(engine: sa.Engine, utility: str, dataset: str | None) -> tuple[Any, dict[int, tuple]]:
    iso = load(engine, utility=utility, dataset=dataset)
    with engine.connect() as c:
        rows = c.execute(sa.text("select object_id, material, install_year from pipe_segments "
                                 "where object_id = any(:i)"), {"i": iso.net.segment_id.tolist()}).all()
    return iso, {r[0]: (r[1], r[2]) for r in rows}


def _low_pressure_nodes(engine: sa.Engine) -> set[int]:
    with engine.connect() as c:
        return set(c.scalars(sa.text("""
            select object_id from qa_findings where rule = 'low_pressure' and run_id =
                (select max(id) from analysis_runs where analysis = 'hydraulics')""")).all())


def _repairs_per_km(engine: sa.Engine, ids: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Incidents on record per km of each pipe (importers.incidents), relative to the largest."""
    with engine.connect() as c:
        counts = dict(c.execute(sa.text("select (attributes->>'pipe_id')::bigint, count(*) from city_objects "
                                        "where class = 'incident' group by 1")).all())
    per_km = np.array([counts.get(int(i), 0) for i in ids], float) / np.maximum(length / 1000, 1e-3)
    return per_km / per_km.max() if len(per_km) and per_km.max() > 0 else np.zeros(len(ids))


def scores(engine: sa.Engine, year: int, *, utility: str = "water", dataset: str | None = None,
           weights: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """Factors, score and candidacy of every main, as columns."""
    iso, attrs = _mains(engine, utility, dataset)
    net = iso.net
    weights = {**config()["weights"], **(weights or {})}
    life = design_life()
    mat = [life.get(str(attrs[i][0] or "unknown").lower(), life["unknown"]) for i in net.segment_id]
    built = np.array([attrs[i][1] if attrs[i][1] is not None else np.nan for i in net.segment_id], float)
    age = year - built
    lifetime = np.array([m["life"] for m in mat], float)
    table = segment_table(iso)
    out = (table["length_m"] + table["cut_off_length_m"])[iso.segments.link]
    low = _low_pressure_nodes(engine)
    ends = np.column_stack([net.from_idx, net.to_idx])
    f = {"age": np.clip(np.nan_to_num(age / lifetime, nan=1.0), 0, 2) / 2,
         "material": np.array([m["must_renew"] for m in mat], float),
         "criticality": out / out.max() if len(out) and out.max() > 0 else np.zeros(net.n_segments),
         "repairs": _repairs_per_km(engine, net.segment_id, np.nan_to_num(net.length)),
         "pressure": np.array([any(j >= 0 and int(net.node_id[j]) in low for j in e) for e in ends], float),
         "diameter": np.clip(np.nan_to_num(net.diameter_mm) / 600, 0, 1)}
    score = sum(weights[k] * f[k] for k in FACTORS)
    due = f["material"].astype(bool) | ~(age < lifetime)  # unknown age counts as due
    return {"id": net.segment_id, "key": net.segment_key, "length_m": np.nan_to_num(net.length),
            "diameter_mm": net.diameter_mm, "material": np.array([attrs[i][0] for i in net.segment_id], object),
            "install_year": built, "age": age, "design_life": lifetime, "score": score, "due": due,
            **{f"f_{k}": v for k, v in f.items()}, "weights": weights}


def _cost(diameter: float, costs: list[tuple[float, float]]) -> float:
    d = diameter if np.isfinite(diameter) else 0.0
    return next((c for dmax, c in costs if d <= dmax), costs[-1][1])


def programme(*, utility: str = "water", dataset: str | None = None, target_km: float | None = None,
              target_date: str | None = None, start_year: int | None = None,
              weights: dict[str, float] | None = None, unit_cost: str | Path | None = None,
              requested_by: str | None = None, engine: sa.Engine | None = None) -> dict[str, Any]:
    """The year-by-year programme to the target (default: 144.34 km by 2027-12-31), recorded as a run."""
    engine = engine or get_engine()
    t0 = now()
    cfg = config()["target"]
    target_km = cfg["km"] if target_km is None else target_km
    end = dt.date.fromisoformat(target_date or cfg["date"])
    start_year = start_year or dt.date.today().year
    if end.year < start_year or target_km <= 0:
        raise InputError(f"target {target_km} km by {end}: the target date must not precede {start_year} and the "
                         "length must be positive")
    years = list(range(start_year, end.year + 1))
    s = scores(engine, start_year, utility=utility, dataset=dataset, weights=weights)
    costs = unit_costs(unit_cost)
    order = [i for i in np.argsort(-s["score"], kind="stable") if s["due"][i]]
    quota = target_km * 1000 / len(years)
    plan, per_year, done, y = [], {yr: {"km": 0.0, "cost_cny": 0.0, "pipes": 0} for yr in years}, 0.0, 0
    for rank, i in enumerate(order, 1):
        if done >= target_km * 1000:
            break
        while y < len(years) - 1 and per_year[years[y]]["km"] * 1000 >= quota:
            y += 1
        length, cost = float(s["length_m"][i]), float(s["length_m"][i]) * _cost(s["diameter_mm"][i], costs)
        cell = per_year[years[y]]
        cell["km"] += length / 1000
        cell["cost_cny"] += cost
        cell["pipes"] += 1
        done += length
        plan.append({"rank": rank, "year": years[y], "id": int(s["id"][i]), "key": str(s["key"][i]),
                     "material": s["material"][i], "install_year": _int(s["install_year"][i]),
                     "diameter_mm": _num(s["diameter_mm"][i]), "length_m": round(length, 2),
                     "score": round(float(s["score"][i]), 4), "cost_cny": round(cost),
                     **{f"f_{k}": round(float(s[f"f_{k}"][i]), 4) for k in FACTORS}})
    summary = {"target_km": target_km, "target_date": end.isoformat(), "planned_km": round(done / 1000, 3),
               "backlog_km": round(float(s["length_m"][s["due"]].sum()) / 1000, 3),
               "reachable": done >= target_km * 1000 - 1e-6,
               "years": [{"year": yr, **{k: round(v, 3) if k == "km" else round(v) for k, v in c.items()}}
                         for yr, c in per_year.items()]}
    rules = {"weights": s["weights"], "design_life": "analyses/water/data/design_life.csv",
             "target_source": cfg["source"], "unit_cost": str(unit_cost or "placeholder table (input)")}
    run = record_run("renewal-programme", {"utility": utility, "dataset": dataset, "start_year": start_year},
                     rules, [], summary, started_at=t0, requested_by=requested_by, engine=engine)
    return {"run_id": run.id, **summary, "pipes": plan}


def _int(v) -> int | None:
    return int(v) if np.isfinite(v) else None


def _num(v) -> float | None:
    return float(v) if np.isfinite(v) else None


def write_programme(result: dict, path: str | Path) -> Path:
    """The programme's pipes (and, in XLSX, the years on a second sheet) as CSV or XLSX by the suffix."""
    return write_sheets({"pipes": result["pipes"], "years": result["years"]}, path, ["rank", "year", "id", "key"])


def write_sheets(sheets: dict[str, list[dict]], path: str | Path, empty_columns: list[str]) -> Path:
    """Tables of dicts as an XLSX workbook (a sheet each) or, by the suffix, the first as CSV (UTF-8 with a BOM,
    so that Excel reads it as such); `empty_columns` heads a first table without rows."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise InputError(f"{path}: write .csv or .xlsx")
    tables = [(name, rows, list(rows[0]) if rows else (empty_columns if k == 0 else []))
              for k, (name, rows) in enumerate(sheets.items())]
    if suffix == ".csv":
        _, rows, cols = tables[0]
        with open(path, "w", newline="", encoding="utf-8-sig") as f:
            w = csv.DictWriter(f, fieldnames=cols)
            w.writeheader()
            w.writerows(rows)
        return path
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    for name, rows, cols in tables:
        ws = wb.create_sheet(name)
        ws.append(cols)
        for r in rows:
            ws.append([r.get(c) for c in cols])
    wb.save(path)
    return path

"""Condition grading of CCTV-inspected drainage pipes (CJJ 181-2012 chapter 8) and the campaign's progress.

Per inspected segment, from the defects of its latest inspection that are not repaired: the structural
defect parameter F and grade, the functional parameter G and grade, the repair index RI and maintenance
index MI with their priorities. Every inspected segment becomes a `segment_condition` finding of the run
(details: the parameters and grades; severity by grade), so the viewer can colour pipes by grade.
The formulas and thresholds are data (data/inspection_grading.toml) with their source.
"""
from __future__ import annotations

import tomllib
from collections import defaultdict
from pathlib import Path

import sqlalchemy as sa

from cim_core.db import get_engine
from cim_core.defects import SOURCE as CODES_SOURCE
from cim_core.defects import defect_codes
from cim_core.runs import Finding, now, record_run

GRADING = Path(__file__).parent / "data" / "inspection_grading.toml"
GRADES = ("I", "II", "III", "IV")
SEVERITY = {1: "info", 2: "info", 3: "warning", 4: "error"}


def grading() -> dict:
    return tomllib.loads(GRADING.read_text(encoding="utf-8"))


def grade_of(value: float, thresholds: list[float]) -> int:
    """1-4: the first band whose upper bound the value does not pass."""
    return 1 + sum(value > t for t in thresholds)


def parameter(scores: list[float]) -> float:
    """F (or G): the largest score where it is at least the mean, else the mean (CJJ 181-2012 8.2.2/8.3.2)."""
    if not scores:
        return 0.0
    return max(max(scores), sum(scores) / len(scores))  # F = Smax if Smax >= S else S


def _importance(diameter_mm: float | None, table: list[list[float]]) -> float:
    d = diameter_mm or 0.0
    return next(e for lo, e in table if d >= lo)


def assess(defects: list[tuple[str, int]], diameter_mm: float | None, cfg: dict) -> dict:
    """The grades of one segment from its (code, grade) defects."""
    codes = defect_codes()
    defects = [(c, g) for c, g in defects if c in codes]  # a pipe inspected without defects has none
    s = [codes[c].scores[g] for c, g in defects if codes[c].kind == "structural"]
    f = [codes[c].scores[g] for c, g in defects if codes[c].kind == "functional"]
    F, G = parameter(s), parameter(f)
    rep = cfg["repair"]
    E = _importance(diameter_mm, rep["E_by_diameter_mm"])
    ri = rep["ri"]["F"] * F + rep["ri"]["K"] * rep["K"] + rep["ri"]["E"] * E + rep["ri"]["T"] * rep["T"]
    mi = rep["mi"]["G"] * G + rep["mi"]["K"] * rep["K"] + rep["mi"]["E"] * E
    return {"F": F, "structural_grade": grade_of(F, cfg["structural"]["thresholds"]), "G": G,
            "functional_grade": grade_of(G, cfg["functional"]["thresholds"]), "RI": round(ri, 3),
            "repair_priority": grade_of(ri, rep["thresholds"]), "MI": round(mi, 3),
            "maintenance_priority": grade_of(mi, rep["thresholds"]), "defects": len(defects)}


def _records(engine: sa.Engine, dataset: str | None) -> list:
    with engine.connect() as c:
        return c.execute(sa.text("""
            select i.segment_id, i.inspected_on, i.code, i.grade, i.repaired_on, s.length_m, s.diameter_mm,
                   st_x(st_lineinterpolatepoint(st_force2d(s.centerline), 0.5)) x,
                   st_y(st_lineinterpolatepoint(st_force2d(s.centerline), 0.5)) y, o.key
            from pipe_inspections i join datasets d on d.id = i.dataset_id
            join pipe_segments s on s.object_id = i.segment_id join city_objects o on o.id = i.segment_id
            where cast(:d as text) is null or d.name = :d
            order by i.segment_id, i.inspected_on"""), {"d": dataset}).all()


def grade(dataset: str | None = None, *, target_km: float | None = None, engine: sa.Engine | None = None,
          requested_by: str | None = None) -> dict:
    """Grade every inspected segment (of one inspection dataset, or all) and store the run; returns the run id
    and the campaign's progress (km inspected of the target, km graded III-IV, repairs done)."""
    engine, t0, cfg = engine or get_engine(), now(), grading()
    target = target_km or cfg["campaign"]["target_km"]
    by_seg: dict[int, list] = defaultdict(list)
    for r in _records(engine, dataset):
        by_seg[r.segment_id].append(r)
    found, km, km_bad, repaired = [], 0.0, 0.0, 0
    for seg, rows in by_seg.items():
        latest = max(r.inspected_on for r in rows)
        repaired += sum(r.repaired_on is not None for r in rows)
        open_ = [(r.code, r.grade) for r in rows if r.inspected_on == latest and r.repaired_on is None]
        a = assess(open_, rows[0].diameter_mm, cfg)
        worst = max(a["structural_grade"], a["functional_grade"])
        km += (rows[0].length_m or 0.0) / 1000
        km_bad += (rows[0].length_m or 0.0) / 1000 if worst >= 3 else 0.0
        found.append(Finding("segment_condition", f"{rows[0].key}: structural {GRADES[a['structural_grade'] - 1]} "
                             f"(F {a['F']:g}), functional {GRADES[a['functional_grade'] - 1]} (G {a['G']:g}), "
                             f"repair priority {GRADES[a['repair_priority'] - 1]}", seg,
                             location=(rows[0].x, rows[0].y), severity=SEVERITY[worst],
                             details={**a, "inspected_on": latest.isoformat()}))
    summary = {"segments": len(by_seg), "inspected_km": round(km, 3), "target_km": target,
               "progress_pct": round(100 * km / target, 3) if target else None, "graded_3_4_km": round(km_bad, 3),
               "repairs_done": repaired,
               "by_structural_grade": {g: sum(f.details["structural_grade"] == i + 1 for f in found)
                                       for i, g in enumerate(GRADES)}}
    run = record_run("drainage-inspection", {"dataset": dataset, "target_km": target},
                     {**cfg, "codes": CODES_SOURCE}, found, summary, started_at=t0, requested_by=requested_by,
                     engine=engine)
    return {"run_id": run.id, **summary}


def repair_list(run_id: int, engine: sa.Engine | None = None) -> list[dict]:
    """Segments of a grading run whose repair or maintenance priority is III or IV, most urgent first."""
    engine = engine or get_engine()
    with engine.connect() as c:
        rows = c.execute(sa.text("""
            select o.key, f.object_id, f.details from qa_findings f join city_objects o on o.id = f.object_id
            where f.run_id = :r and f.rule = 'segment_condition'
              and greatest((f.details ->> 'repair_priority')::int, (f.details ->> 'maintenance_priority')::int) >= 3
            order by (f.details ->> 'RI')::float desc"""), {"r": run_id}).all()
    return [{"segment": k, "object_id": i, **{f: d[f] for f in ("structural_grade", "F", "functional_grade", "G",
                                                                 "RI", "repair_priority", "MI", "maintenance_priority",
                                                                 "inspected_on")}} for k, i, d in rows]

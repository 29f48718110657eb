"""CCTV defect codes of CJJ 181-2012 (城镇排水管道检测与评估技术规程): structural and functional defects, the
grades each code defines and the score of each grade, as data (data/cjj181_defects.csv)."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

TABLE = Path(__file__).parent / "data" / "cjj181_defects.csv"
SOURCE = "CJJ 181-2012 城镇排水管道检测与评估技术规程, defect codes and scores (tables 8.2.x, 8.3.x)"


@dataclass(frozen=True)
class Defect:
    code: str
    name_zh: str
    name_en: str
    kind: str  # structural | functional
    scores: dict[int, float]  # grade -> score P


@cache
def defect_codes() -> dict[str, Defect]:
    """The defect codes by code."""
    out: dict[str, Defect] = {}
    with open(TABLE, encoding="utf-8") as f:
        for r in csv.DictReader(f):
            d = out.setdefault(r["code"], Defect(r["code"], r["name_zh"], r["name_en"], r["kind"], {}))
            d.scores[int(r["grade"])] = float(r["score"])
    return out

"""The values and the problem list of a year as CSV (two files) or XLSX (two sheets)."""
from __future__ import annotations

import csv
from pathlib import Path

import sqlalchemy as sa

from cim_core.errors import InputError

from . import definitions, yearly

VALUE_COLUMNS = ("indicator", "name_zh", "level", "unit_key", "unit_name", "value", "straight_value", "unit",
                 "target", "direction", "passes", "source")
PROBLEM_COLUMNS = ("indicator", "severity", "message", "object_id", "object_key", "x", "y")


def tables(year: int, engine: sa.Engine | None = None, indicator_set: str | Path | None = None):
    """(value rows, problem rows) of a year's last run, with the indicators' names, units and sources."""
    iset = definitions.load(indicator_set)
    meta = {i.id: i for i in iset.indicators}
    values = []
    for r in yearly.results(year, engine):
        ind = meta.get(r["indicator"])
        values.append({**r, "name_zh": ind.name_zh if ind else "", "unit": ind.unit if ind else "",
                       "direction": ind.direction if ind else "", "source": ind.source if ind else ""})
    return ([[r.get(c) for c in VALUE_COLUMNS] for r in values],
            [[r.get(c) for c in PROBLEM_COLUMNS] for r in yearly.problems(year, engine)])


def write(year: int, path: str | Path, engine: sa.Engine | None = None) -> list[Path]:
    """Write `path` (.xlsx: sheets 指标 and 问题清单; .csv: it and <stem>_problems.csv); returns the files."""
    path = Path(path)
    values, problems = tables(year, engine)
    if path.suffix.lower() == ".xlsx":
        from openpyxl import Workbook

        wb = Workbook()
        ws = wb.active
        ws.title = "指标"
        for row in ([*VALUE_COLUMNS], *values):
            ws.append(row)
        wp = wb.create_sheet("问题清单")
        for row in ([*PROBLEM_COLUMNS], *problems):
            wp.append(row)
        wb.save(path)
        return [path]
    if path.suffix.lower() != ".csv":
        raise InputError(f"{path}: export writes .csv or .xlsx")
    second = path.with_name(f"{path.stem}_problems.csv")
    for p, cols, rows in ((path, VALUE_COLUMNS, values), (second, PROBLEM_COLUMNS, problems)):
        with p.open("w", newline="", encoding="utf-8-sig") as f:
            w = csv.writer(f)
            w.writerow(cols)
            w.writerows(rows)
    return [path, second]

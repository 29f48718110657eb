"""`cim healthcheck`: the yearly city health check (城市体检) — run, compare, problem list, export."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from .output import console

app = typer.Typer(help="City health check (城市体检): indicators per unit, every year. "
                  "Example: cim healthcheck run --year 2025", no_args_is_help=True)


def _num(v) -> str:
    return "no data" if v is None else f"{v:.2f}"


@app.command("run")
def run(
    year: int = typer.Option(..., "--year", help="The year the values stand for, e.g. 2025."),
    indicators: Path = typer.Option(None, "--indicators", help="An indicator set (TOML); default: the national "
                                    "base set shipped with the analysis."),
    only: list[str] = typer.Option(None, "--only", help="Compute only these indicator ids (repeatable)."),
):
    """Compute every indicator for the district and its units from the model as it is now, and store the
    values with their provenance (the set, its sources, the dataset versions read) and the problem list.

    Example: cim healthcheck run --year 2025
    """
    from analyses.healthcheck import yearly

    hc = yearly.run(year, indicator_set=indicators, only=only or None, requested_by="cli")
    t = Table("indicator", "unit", "value", "straight line", "target", "passes")
    for ind, v in hc.values:
        if v.unit.level == "district":
            passes = ind.passes(v.value)
            t.add_row(f"{ind.name_zh} ({ind.id})", v.unit.name, _num(v.value) + f" {ind.unit}",
                      "" if v.straight is None else _num(v.straight),
                      "" if ind.target is None else f"{ind.direction} {ind.target:g}",
                      {True: "yes", False: "no", None: ""}[passes])
    console.print(t)
    console.print(f"run {hc.run_id}: {len(hc.values)} values, {hc.problems} problem entries "
                  f"(cim healthcheck problems {year})")


@app.command("compare")
def compare(
    year_a: int = typer.Argument(..., help="The earlier year."),
    year_b: int = typer.Argument(..., help="The later year."),
    level: str = typer.Option("district", help="Unit level: district, street, community."),
):
    """Each indicator in the last runs of two years, side by side with the change.

    Example: cim healthcheck compare 2024 2025
    """
    from analyses.healthcheck import yearly

    t = Table("indicator", "unit", str(year_a), str(year_b), "change", "target")
    for r in yearly.compare(year_a, year_b):
        if r["level"] == level:
            t.add_row(r["indicator"], r["unit_name"] or r["unit_key"], _num(r[str(year_a)]), _num(r[str(year_b)]),
                      "" if r["change"] is None else f"{r['change']:+.2f}",
                      "" if r["target"] is None else f"{r['target']:g}")
    console.print(t)


@app.command("problems")
def problems(year: int = typer.Argument(..., help="The year of the run.")):
    """The problem list (问题清单) of a year: every unit that misses a target, and the objects behind it.

    Example: cim healthcheck problems 2025
    """
    from analyses.healthcheck import yearly

    for p in yearly.problems(year):
        console.print(("  " if p["severity"] == "info" else "") + p["message"], markup=False, highlight=False)


@app.command("export")
def export(
    year: int = typer.Argument(..., help="The year of the run."),
    out: Path = typer.Option(..., "--out", "-o", help="A .xlsx file (sheets 指标, 问题清单) or a .csv file "
                             "(and <name>_problems.csv beside it)."),
):
    """Export a year's values and problem list as XLSX or CSV.

    Example: cim healthcheck export 2025 --out 体检2025.xlsx
    """
    from analyses.healthcheck import export as hexport

    for p in hexport.write(year, out):
        console.print(f"wrote {p}")


CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


@app.command("report")
def report(
    year: int = typer.Argument(..., help="The year of the run."),
    out: Path = typer.Option(..., "--out", "-o", help="report.pdf (printed with headless Chromium) or report.html."),
):
    """A printable report: the district's values against targets with the change from the year before, the
    problem list, the values by unit, and each indicator's definition and source.

    Example: cim healthcheck report 2025 --out 体检报告2025.pdf
    """
    import shutil
    import subprocess
    import tempfile

    from analyses.healthcheck import report as hreport
    from cim_core.db import get_engine
    from cim_core.errors import InputError

    page = hreport.html(year, get_engine())
    if out.suffix.lower() == ".html":
        out.write_text(page, encoding="utf-8")
    elif out.suffix.lower() == ".pdf":
        browser = next((b for b in map(shutil.which, CHROMIUM) if b), None)
        if browser is None:
            raise InputError("printing to PDF needs Chromium (apt-get install chromium); or write --out report.html")
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "report.html"
            src.write_text(page, encoding="utf-8")
            subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
                            f"--user-data-dir={tmp}/profile", f"--print-to-pdf={out.resolve()}", src.as_uri()],
                           check=True, capture_output=True, timeout=120)
    else:
        raise InputError(f"{out}: the report is written as .pdf or .html")
    console.print(f"wrote {out}")

"""`cim renewal ...`: renewals done (recorded as new versions of the segments) and progress against the
city's target (analyses.water.renewals)."""
from __future__ import annotations

import typer

from cim_core.errors import InputError

from .output import console

app = typer.Typer(help="Old-mains renewals: record them, track progress against the target.\n\n"
                  "Example: cim renewal record --segment 1234 --material PE --year 2026", no_args_is_help=True)


@app.command("record")
def record(
    segment: str = typer.Option(None, "--segment", help="The renewed segment: object id or key."),
    material: str = typer.Option(None, "--material", help="Material of the new main (e.g. PE, ductile iron)."),
    year: int = typer.Option(None, "--year", help="Install year of the new main."),
    date: str = typer.Option(None, "--date", help="Date of the renewal, YYYY-MM-DD (default: today)."),
    diameter: float = typer.Option(None, "--diameter", help="Diameter of the new main, mm (default: unchanged)."),
    file: str = typer.Option(None, "--file", help="A CSV of renewals instead: segment,material,year,date"
                             "[,diameter_mm]; one bad row refuses the file."),
    utility: str = typer.Option("water", "--utility", help="The network."),
):
    """Record a renewal as a new version of the segment: the old version is closed on the date (it stays in
    history), the new one carries the new material and year.

    Example: cim renewal record --segment pipe:10 --material PE --year 2026 --date 2026-05-20
    """
    from analyses.water.renewals import record as rec
    from analyses.water.renewals import record_csv

    if (file is None) == (segment is None):
        raise InputError("give either --segment (with --material and --year) or --file")
    if file:
        r = record_csv(file, utility=utility)
    else:
        r = rec([{"segment": segment, "material": material, "year": year, "date": date, "diameter_mm": diameter}],
                source="--segment", utility=utility)
    for d in r["renewed"]:
        console.print(f"{d['key']}: {d['previous_material']} -> {d['material']} ({d['year']}) on {d['date']}, "
                      f"{(d['length_m'] or 0):.1f} m; version {d['old_id']} closed, {d['new_id']} current")
    console.print(f"{len(r['renewed'])} renewal(s), {r['km']:.3f} km; run {r['run_id']}")


@app.command("status")
def status(
    target_km: float = typer.Option(None, "--target-km", help="Target length (default 144.34 km)."),
    by: str = typer.Option(None, "--by", help="Target date YYYY-MM-DD (default 2027-12-31)."),
    out: str = typer.Option(None, "--out", help="Write to .csv (renewed segments) or .xlsx (all tables)."),
    utility: str = typer.Option("water", "--utility", help="The network."),
):
    """Km renewed against the target, by year and by street (the nearest named road).

    Example: cim renewal status --out progress.xlsx
    """
    from rich.table import Table

    from analyses.water.renewals import status as st
    from analyses.water.renewals import write_status

    r = st(utility=utility, target_km=target_km, target_date=by)
    t = Table("year", "km", "cumulative km", "share of target")
    for y in r["by_year"]:
        t.add_row(str(y["year"]), f"{y['km']:.3f}", f"{y['cumulative_km']:.3f}", f"{y['share']:.1%}")
    console.print(t)
    s = Table("street", "km", "segments")
    for row in r["by_street"][:20]:
        s.add_row(row["street"] or "-", f"{row['km']:.3f}", str(row["segments"]))
    console.print(s)
    console.print(f"{r['renewed_km']:.3f} of {r['target_km']} km by {r['target_date']} ({r['share']:.1%}); "
                  f"{r['needed_km_per_year']:.2f} km a year still needed")
    if out:
        console.print(f"written {write_status(r, out)}")

"""`cim water ...`: water supply operations (hydraulic model, burst isolation); and `cim export epanet`."""

from __future__ import annotations

import typer

from cim_core.errors import InputError

from .export import app as export_app
from .output import console

app = typer.Typer(help="Water supply operations: burst isolation, criticality, hydraulics.\n\n"
                  "Example: cim water isolate pipe:10", no_args_is_help=True)


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """'xmin,ymin,xmax,ymax' in the storage CRS."""
    if text is None:
        return None
    try:
        box = tuple(float(v) for v in text.split(","))
    except ValueError:
        box = ()
    if len(box) != 4 or box[0] >= box[2] or box[1] >= box[3]:
        raise InputError(f"--bbox {text!r}: expected xmin,ymin,xmax,ymax with xmin < xmax and ymin < ymax")
    return box  # type: ignore[return-value]


@export_app.command("epanet")
def export_epanet(
    out: str = typer.Option(..., "--out", help="The .inp file to write."),
    utility: str = typer.Option("water", "--utility", help="The pressure network to export."),
    dataset: str = typer.Option(None, "--dataset", help="Only this dataset's network."),
    bbox: str = typer.Option(None, "--bbox", help="Only pipes in xmin,ymin,xmax,ymax (storage CRS)."),
    units: str = typer.Option(None, "--units", help="EPANET flow units (default: those of the imported model, "
                              "else LPS)."),
):
    """Write the stored network as a runnable EPANET 2.2 model, whichever importer brought it in: options,
    times, patterns, curves and controls of imported EPANET models come back; GIS pipes get a roughness from
    their material.

    Example: cim export epanet --utility water --bbox 501800,3649500,502800,3650500 --out district.inp
    """
    from analyses.water.model import export_epanet as export

    r = export(out, utility=utility, dataset=dataset, bbox=parse_bbox(bbox), units=units)
    console.print(f"{r['path']}: {r['nodes']} nodes, {r['links']} links ({r['units']})"
                  + (f"; {r['controls_left_out']} controls left out (elements outside the box)"
                     if r["controls_left_out"] else ""))


def _point(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--point {text!r}: expected x,y in the storage CRS") from None
    return x, y


@app.command("isolate")
def isolate(
    pipe: str = typer.Argument(None, help="The burst pipe: object id, key (pipe:10) or the source's name."),
    point: str = typer.Option(None, "--point", help="x,y (storage CRS): the pipe nearest to it instead."),
    dataset: str = typer.Option(None, "--dataset", help="Only this dataset's network."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole result as JSON."),
    pressure: bool = typer.Option(False, "--pressure", help="Also simulate a day with the area shut (EPANET, "
                                  "pressure-dependent demand): how far pressures fall elsewhere."),
):
    """Burst isolation: the valves to close around a pipe, the pipes isolated, the parts cut off because no
    valve lies between them and a source, and the inoperable valves met on the way.

    Example: cim water isolate pipe:10   |   cim water isolate --point 502310.5,3649820
    """
    import orjson

    from analyses.water.isolation import isolate as run

    r = run(int(pipe) if pipe and pipe.isdigit() else pipe, point=_point(point), dataset=dataset, pressure=pressure)
    if as_json:
        console.print_json(orjson.dumps(r).decode())
        return
    iso, cut = r["isolated"], r["cut_off"]
    console.print(f"{r['pipe']['key']}: close {len(r['valves_to_close'])} valves: "
                  + ", ".join(v["key"] for v in r["valves_to_close"]))
    console.print(f"isolated: {len(iso['pipes'])} pipes ({iso['length_m']:.0f} m), {len(iso['nodes'])} nodes")
    console.print(f"cut off unintentionally: {len(cut['pipes'])} pipes ({cut['length_m']:.0f} m)"
                  + (" (no source in the network: the largest part is taken as fed)" if r["source_assumed"] else ""))
    if r["inoperable_valves"]:
        console.print("inoperable valves met: " + ", ".join(f"{v['key']} ({v['status']})"
                                                            for v in r["inoperable_valves"]))
    if pressure:
        d = r["pressure"]
        console.print(f"pressure elsewhere falls by up to {d['max_drop_m']:.1f} m; {d['nodes_over_1m']} junctions "
                      "lose more than 1 m")
    console.print(f"run {r['run_id']}")


@app.command("criticality")
def criticality(
    dataset: str = typer.Option(None, "--dataset", help="Only this dataset's network."),
    out: str = typer.Option(None, "--out", help="Write the values per pipe to this CSV file."),
    top: int = typer.Option(10, "--top", help="Most critical pipes shown."),
):
    """Criticality of every water pipe: the length and demand a burst on it takes out of service (its valve
    segment and what only that segment joins to a source).

    Example: cim water criticality --out criticality.csv
    """
    import csv

    from rich.table import Table

    from analyses.water.criticality import criticality as run

    r = run(dataset=dataset)
    rows = sorted(r["by_pipe"], key=lambda p: -p["out_of_service_m"])
    if out:
        with open(out, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    t = Table("pipe id", "segment pipes", "segment m", "cut off m", "out of service m")
    for p in rows[:top]:
        t.add_row(str(p["id"]), str(p["pipes"]), f"{p['length_m']:.0f}", f"{p['cut_off_length_m']:.0f}",
                  f"{p['out_of_service_m']:.0f}")
    console.print(t)
    console.print(f"{r['pipes']} pipes in {r['segments']} segments; run {r['run_id']}")


def simulate(
    dataset: str = typer.Option(None, "--dataset", help="Only this dataset's network."),
    bbox: str = typer.Option(None, "--bbox", help="Only pipes in xmin,ymin,xmax,ymax (storage CRS)."),
    duration_h: float = typer.Option(None, "--hours", help="Simulated duration in hours (default 24)."),
    min_pressure: float = typer.Option(None, "--min-pressure", help="Minimum service pressure in m "
                                       "(default 28 m, GB 50282-2016)."),
):
    """Simulate the stored water network with WNTR (EPANET): results per node, link and hour are stored as
    a run; junctions below the minimum service pressure become findings.

    Example: cim analyse hydraulics --hours 24 --min-pressure 28
    """
    from analyses.water.hydraulics import simulate as run

    r = run(dataset=dataset, bbox=parse_bbox(bbox), duration_h=duration_h, min_pressure=min_pressure)
    console.print(f"run {r['run_id']}: {r['nodes']} nodes, {r['links']} links, {len(r['times_s'])} time steps; "
                  f"lowest pressure {r['min_pressure_m']:.1f} m; {r['low_pressure_nodes']} junctions below the "
                  "minimum service pressure")


@app.command("renewal")
def renewal(
    target_km: float = typer.Option(None, "--target-km", help="Length to renew (default 144.34 km, the seed plan)."),
    by: str = typer.Option(None, "--by", help="Target date YYYY-MM-DD (default 2027-12-31)."),
    start_year: int = typer.Option(None, "--start-year", help="First year of the programme (default: this year)."),
    unit_cost: str = typer.Option(None, "--unit-cost", help="CSV of max_diameter_mm,cny_per_m (default: a "
                                  "placeholder table)."),
    dataset: str = typer.Option(None, "--dataset", help="Only this dataset's network."),
    out: str = typer.Option(None, "--out", help="Write the programme to a .csv or .xlsx file."),
):
    """The old-mains renewal programme: mains ranked by age against their material's design life, the
    national plan's materials, criticality, low pressure and size; year by year to the target, with km and
    cost per year.

    Example: cim water renewal --start-year 2025 --out renewal.xlsx
    """
    from rich.table import Table

    from analyses.water.renewal import programme, write_programme

    r = programme(target_km=target_km, target_date=by, start_year=start_year, unit_cost=unit_cost, dataset=dataset)
    t = Table("year", "km", "cost (CNY)", "mains")
    for y in r["years"]:
        t.add_row(str(y["year"]), f"{y['km']:.2f}", f"{y['cost_cny']:,}", str(y["pipes"]))
    console.print(t)
    console.print(f"{r['planned_km']:.2f} of {r['target_km']} km planned by {r['target_date']}; backlog of due mains "
                  f"{r['backlog_km']:.2f} km" + ("" if r["reachable"] else " (the target exceeds the backlog)")
                  + f"; run {r['run_id']}")
    if out:
        console.print(f"written {write_programme(r, out)}")


def import_incidents(
    file: str = typer.Argument(..., help="CSV with date, kind and pipe (id or key) or x, y."),
    dataset: str = typer.Option(None, "--dataset", help="Dataset name (default: the file's stem)."),
    utility: str = typer.Option("water", "--utility", help="The network the incidents happened on."),
    max_distance: float = typer.Option(30.0, "--max-distance", help="How far from x, y a pipe may lie (m)."),
    force: bool = typer.Option(False, "--force", help="Re-import a file already loaded."),
):
    """Import repair incidents (bursts, leaks, repairs) tied to the pipes they happened on; rows whose date
    does not parse or whose pipe does not exist are refused and listed, the others are stored.

    Example: cim import incidents repairs_2024.csv
    """
    from importers.incidents import import_file

    r = import_file(file, dataset=dataset, utility=utility, max_distance=max_distance, force=force)
    if r.skipped:
        console.print(f"{file}: already loaded as {r.dataset}")
        return
    console.print(f"{r.dataset}: {r.report['stored']} incidents stored, {r.report['refused_count']} rows refused")
    for row in r.report["refused"]:
        console.print(f"  row {row['row']}: {row['reason']}")


@app.command("unserved")
def unserved(
    reach: float = typer.Option(80.0, "--reach", help="Longest service connection (m) to the nearest junction."),
    as_json: bool = typer.Option(False, "--json", help="Print the building ids as JSON."),
):
    """Buildings the public water network does not serve: marked `water_service = none` (an urban village
    not yet connected) or with no junction within reach.

    Example: cim water unserved --json
    """
    import json

    from analyses.water.service import unserved as find
    from cim_core.db import get_engine

    r = find(get_engine(), reach_m=reach)
    if as_json:
        console.print_json(json.dumps(r))
        return
    console.print(f"{r['count']} buildings without public water ({r['flagged']} marked off the network), "
                  f"{r['served']} served; connection reach {r['reach_m']:g} m")

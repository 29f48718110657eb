"""`cim drainage`: tracing, catchments, outfalls and misconnections of the drainage networks."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import typer
from rich.table import Table

from cim_core.errors import InputError

from .export import app as export_app
from .output import console

app = typer.Typer(help="Drainage operations: trace flow, catchments, outfalls, misconnections.\n\n"
                  "Example: cim drainage trace --node YS-0042 --direction down", no_args_is_help=True)

DATASET = typer.Option(None, "--dataset", help="Only this pipe dataset (default: every current drainage network).")
SCENARIO = typer.Option(None, "--scenario", help="Renewal scenario (plan) whose model to analyse (default as-is, "
                        "现状); a named dataset then loses what the plan removes and gains its own datasets.")
AS_JSON = typer.Option(False, "--json", help="Print the full result as JSON.")
AREAS = typer.Option([], "--area", help="A GeoJSON file of separated areas (storage CRS); repeatable. Stored "
                     "objects with drainage_system=separated count too.")


def ref(value: str | None) -> int | str | None:
    """An object id (digits) or a key."""
    return int(value) if value is not None and value.isdigit() else value


def _point(value: str | None) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        x, y = (float(v) for v in value.split(","))
    except ValueError:
        raise InputError(f"--point {value!r}: expected X,Y in the storage CRS") from None
    return x, y


def _dump(doc) -> None:
    print(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY).decode())


@app.command("trace")
def trace(
    node: str = typer.Option(None, "--node", help="Start at a manhole: object id or key."),
    segment: str = typer.Option(None, "--segment", help="Start at a pipe: object id or key."),
    point: str = typer.Option(None, "--point", help="Start at the manhole or pipe nearest X,Y (storage CRS)."),
    direction: str = typer.Option("both", "--direction", help="up, down or both."),
    dataset: str = DATASET,
    scenario: str = SCENARIO,
    as_json: bool = AS_JSON,
):
    """Trace the flow upstream and/or downstream (direction from the inverts, else the stored from/to).

    Example: cim drainage trace --node YS-0042 --direction down --dataset sample-pipes
    """
    from analyses.drainage.tracing import trace as run

    t = run(node=ref(node), segment=ref(segment), point=_point(point), direction=direction, dataset=dataset,
            scenario=scenario)
    if as_json:
        _dump(t.as_dict())
        return
    tab = Table("direction", "nodes", "segments", "length (m)")
    for name, r in (("upstream", t.upstream), ("downstream", t.downstream)):
        if r is not None:
            tab.add_row(name, str(len(r.nodes)), str(len(r.segments)), f"{r.length_m:.1f}")
    console.print(f"from {t.start['kind']} {t.start['key']} (id {t.start['id']})")
    console.print(tab)
    if t.downstream is not None:
        console.print(f"outfalls reached: {', '.join(map(str, t.outfalls)) or 'none'}")


@app.command("catchment")
def catchment(
    node: str = typer.Argument(..., help="The manhole: object id or key."),
    dataset: str = DATASET,
    scenario: str = SCENARIO,
    as_json: bool = AS_JSON,
):
    """The catchment of a manhole: the pipes that drain to it, and the buildings and land-use parcels whose
    nearest manhole of its network is among them.

    Example: cim drainage catchment YS-0042 --dataset sample-pipes
    """
    from analyses.drainage.tracing import catchment as run

    c = run(ref(node), dataset=dataset, scenario=scenario)
    if as_json:
        _dump(c)
        return
    console.print(f"{c['node']['key']}: {len(c['segments'])} pipes ({c['length_m']:.1f} m), {len(c['nodes'])} "
                  f"nodes, {len(c['buildings'])} buildings, {len(c['parcels'])} parcels "
                  f"({c['area_m2'] / 1e4:.2f} ha)")


@app.command("outfalls")
def outfalls(dataset: str = DATASET, scenario: str = SCENARIO):
    """The outfalls, the pieces of network that reach none and the nodes where flow stops; the findings are
    stored as a run.

    Example: cim drainage outfalls --dataset sample-pipes
    """
    from analyses.drainage.tracing import outfall_check

    r = outfall_check(dataset, scenario=scenario)
    console.print(f"run {r['run_id']}: {r['outfalls']} outfalls, {r['pieces']} pieces, "
                  f"{r['pieces_without_outfall']} without an outfall, {r['flow_sinks']} flow sinks")


@app.command("misconnections")
def misconnections(
    dataset: str = DATASET,
    area: list[Path] = AREAS,
    scenario: str = SCENARIO,
):
    """Find misconnections (错接混接): rain into sewage and the reverse, sewage to rain outfalls, combined pipes
    in separated areas, laterals against the flow, step-ups. The findings are stored as a run.

    Example: cim drainage misconnections --dataset sample-pipes --area six_roads.geojson
    """
    from analyses.drainage.misconnections import check

    areas = []
    for path in area:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: not a readable GeoJSON file ({exc})") from None
        features = doc.get("features", [doc]) if isinstance(doc, dict) else []
        areas += [{"name": (f.get("properties") or {}).get("name", f"{path.stem} {i + 1}"),
                   "geometry": f.get("geometry", f)} for i, f in enumerate(features)]
    r = check(dataset, areas=areas, scenario=scenario)
    tab = Table("rule", "findings")
    for rule, n in r["findings"].items():
        tab.add_row(rule, str(n))
    console.print(f"run {r['run_id']}")
    console.print(tab)


@export_app.command("swmm")
def export_swmm(
    dataset: str = typer.Argument(..., help="The pipe dataset whose drainage network is written."),
    out: Path = typer.Argument(..., help="The .inp file to write."),
    scenario: str = SCENARIO,
):
    """Write a dataset's drainage network as a runnable EPA SWMM 5 model (.inp). A model imported from SWMM
    keeps its options, subcatchments and time series; any other network is written in metres.

    Example: cim export swmm Example1 Example1-out.inp
    """
    from analyses.drainage.swmm_export import export

    path = export(dataset, out, scenario=scenario)
    console.print(f"wrote {path}")


def storm(
    dataset: str = typer.Option(..., "--dataset", help="The pipe dataset to run."),
    return_period: float = typer.Option(..., "--return-period", help="Return period P in years."),
    duration: float = typer.Option(..., "--duration", help="Storm duration in minutes."),
    keep: Path = typer.Option(None, "--keep", help="A folder to keep the SWMM .inp in."),
    scenario: str = SCENARIO,
):
    """Run a design storm (Chicago hyetograph from the storm intensity formula) over a drainage network with
    SWMM; stores peak depths, flooding and conduit capacity ratios, and the waterlogging points (manholes
    flooding deeper than the rule in storm.toml [waterlogging]) as findings.

    Example: cim analyse storm --dataset sample-pipes --return-period 3 --duration 120
    """
    from analyses.drainage.storm import run

    r = run(dataset, return_period=return_period, duration_min=duration, keep=keep, scenario=scenario)
    console.print(f"run {r['run_id']}: {r['flooding_points']} flooding manholes ({r['flooding_m3']:.1f} m3) as "
                  f"waterlogging points, {r['overflowing_manholes']} manholes overflowing at all, "
                  f"{r['conduits_over_capacity']} of {r['conduits']} conduits over capacity, "
                  f"{r['subcatchments']} subcatchments")


def import_inspection(
    file: Path = typer.Argument(..., help="The CSV of CCTV records: segment (or from_manhole, to_manhole), date, "
                                "code, position_m, grade, remarks, repaired."),
    dataset: str = typer.Option(None, "--dataset", help="Dataset name (default: the file's stem)."),
):
    """Import CCTV inspection records (CJJ 181-2012 defect codes); bad rows are refused and listed, the rest
    imported.

    Example: cim import inspection cctv-2025.csv
    """
    from importers.inspection import import_file

    r = import_file(file, dataset=dataset)
    console.print(f"{r.dataset}: {r.imported} records imported, {len(r.refused)} refused")
    for row in r.refused:
        console.print(f"  line {row['line']}: {row['reason']}", markup=False)


@app.command("grade")
def grade(
    dataset: str = typer.Option(None, "--dataset", help="Only this inspection dataset (default: all)."),
    target_km: float = typer.Option(None, "--target-km", help="Campaign target in km (default 2,000)."),
):
    """Grade the inspected pipes (CJJ 181-2012: structural and functional grades, repair priority) and show
    the campaign's progress; stored as a run.

    Example: cim drainage grade --target-km 2000
    """
    from analyses.drainage.inspection import grade as run

    r = run(dataset, target_km=target_km)
    console.print(f"run {r['run_id']}: {r['segments']} pipes, {r['inspected_km']:.3f} km inspected of "
                  f"{r['target_km']:g} km ({r['progress_pct']:.3f} %), {r['graded_3_4_km']:.3f} km graded III-IV, "
                  f"{r['repairs_done']} repairs done")


@app.command("repairs")
def repairs(
    run_id: int = typer.Argument(..., help="A grading run (`cim drainage grade` prints it)."),
    out: Path = typer.Option(..., "--out", help="The repair list to write: .csv or .xlsx."),
):
    """Write the repair list of a grading run (pipes of repair or maintenance priority III-IV, most urgent
    first) as CSV or XLSX.

    Example: cim drainage repairs 12 --out repairs.xlsx
    """
    import csv

    from analyses.drainage.inspection import repair_list

    rows = repair_list(run_id)
    cols = ["segment", "object_id", "structural_grade", "F", "functional_grade", "G", "RI", "repair_priority", "MI",
            "maintenance_priority", "inspected_on"]
    if out.suffix.lower() == ".xlsx":
        from openpyxl import Workbook

        wb = Workbook()
        ws = wb.active
        ws.title = "repairs"
        ws.append(cols)
        for r in rows:
            ws.append([r[c] for c in cols])
        wb.save(out)
    elif out.suffix.lower() == ".csv":
        with open(out, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, cols)
            w.writeheader()
            w.writerows(rows)
    else:
        raise InputError(f"{out}: write .csv or .xlsx")
    console.print(f"wrote {len(rows)} pipes to {out}")

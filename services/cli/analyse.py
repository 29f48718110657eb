"""`cim analyse` (underground analyses: excavation, cross-section, long section, clearances) and
`cim rules` (the clearance and cover rules a city loads)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from cim_core.errors import InputError

from .output import console

app = typer.Typer(help="Underground analyses. Example: cim analyse clearances", no_args_is_help=True)
rules_app = typer.Typer(help="Clearance and cover rules. Example: cim rules load city_rules.csv",
                        no_args_is_help=True)


def _geojson(value: str) -> dict:
    """GeoJSON from a file path or inline text."""
    text = Path(value).read_text(encoding="utf-8") if not value.lstrip().startswith("{") else value
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{value[:60]}: not GeoJSON ({exc.msg})") from None
    if doc.get("type") == "FeatureCollection":
        if len(doc.get("features") or []) != 1:
            raise InputError(f"{value[:60]}: a FeatureCollection must hold exactly one feature")
        doc = doc["features"][0]
    return doc


def _bbox(value: str | None) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    try:
        box = tuple(float(v) for v in value.split(","))
    except ValueError:
        box = ()
    if len(box) != 4 or box[0] >= box[2] or box[1] >= box[3]:
        raise InputError(f"--bbox {value!r}: expected xmin,ymin,xmax,ymax in the storage CRS")
    return box


def _dump(doc) -> None:
    print(json.dumps(doc, ensure_ascii=False, indent=1, default=str))


@app.command("clearances")
def clearances(
    bbox: str = typer.Option(None, "--bbox", help="Check only inside xmin,ymin,xmax,ymax (storage CRS)."),
    dataset: str = typer.Option(None, "--dataset", help="Check only the pipes of this dataset."),
    as_json: bool = typer.Option(False, "--json", help="Print the run's summary as JSON."),
):
    """Check horizontal and vertical clearances, pipe-top cover and 3D clashes against the loaded rules
    (`cim rules load`; GB 50289-2016 / GB 50014-2021 as far as known otherwise); store the findings as a run.

    Example: cim analyse clearances --bbox 501000,3649000,502000,3650000
    """
    from analyses.underground.clearances import check

    result = check(bbox=_bbox(bbox), dataset=dataset, requested_by="cli")
    if as_json:
        _dump(result)
        return
    t = Table("rule", "findings")
    for rule, n in result["findings"].items():
        t.add_row(rule, str(n))
    console.print(t)
    console.print(f"run {result['run_id']}: {result['summary']['segments']} segments checked")


@app.command("excavation")
def excavation(
    polygon: str = typer.Argument(..., help="The pit outline: a GeoJSON file or inline GeoJSON (Polygon)."),
    depth: float = typer.Option(..., "--depth", help="Depth of the pit below ground, in metres."),
    crs: str = typer.Option(None, "--crs", help="CRS of the outline (default: the storage CRS)."),
    buildings_within: float = typer.Option(5.0, "--buildings-within", help="List buildings this close (m)."),
    as_json: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
):
    """What a pit reaches: pipes and nodes with the depths of top and invert inside the pit, buildings
    nearby, the earth volume and a verdict per utility (clear / conflict).

    Example: cim analyse excavation pit.geojson --depth 2.5 --crs EPSG:4490
    """
    from analyses.underground.excavation import excavate

    result = excavate(_geojson(polygon), depth, crs=crs, building_distance=buildings_within,
                      requested_by="cli")
    if as_json:
        _dump(result)
        return
    pit = result["pit"]
    console.print(f"pit {pit['area_m2']:.1f} m2 x {pit['depth_m']:g} m = {pit['volume_m3']:.1f} m3 of earth")
    t = Table("object", "utility", "code", "size", "material", "owner", "top (m)", "invert (m)", "inside (m)",
              "reached")
    for s in result["segments"]:
        size = s["diameter_mm"] and f"{s['diameter_mm']:g} mm"
        t.add_row(s["key"], s["utility"], s["cjj_code"] or "", size or "", s["material"] or "", s["owner"] or "",
                  f"{s['top_depth_m'][0]:.2f}" if s["top_depth_m"] else "?",
                  f"{s['invert_depth_m'][1]:.2f}" if s["invert_depth_m"] else "?",
                  f"{s['length_inside_m']:.1f}", "yes" if s["reached"] else "no")
    for n in result["nodes"]:
        t.add_row(n["key"], n["utility"], n["node_type"], "", "", "", "0", "" if n["depth"] is None
                  else f"{n['depth']:.2f}", "", "yes")
    console.print(t)
    for u, v in result["utilities"].items():
        if v["segments"] or v["nodes"]:
            console.print(f"{u}: {v['verdict']}")
    for b in result["buildings"]:
        console.print(f"building {b['key']} {b['name'] or ''} {b['distance_m']:.2f} m from the pit")
    console.print(f"run {result['run_id']}")


def _write_svg(result: dict, svg: str | None) -> None:
    if svg:
        Path(svg).write_text(result["svg"], encoding="utf-8")
        console.print(f"drawing written to {svg}")


@app.command("section")
def section(
    line: str = typer.Argument(..., help="The section line: a GeoJSON file or inline GeoJSON (LineString)."),
    crs: str = typer.Option(None, "--crs", help="CRS of the line (default: the storage CRS)."),
    svg: str = typer.Option(None, "--svg", help="Write the drawing to this SVG file."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON (without the drawing)."),
):
    """Cross-section (横断面): every pipe the line cuts, with chainage, depths of top and invert, size, cover
    and the gaps to its neighbours; optionally drawn to scale as SVG.

    Example: cim analyse section street.geojson --svg section.svg
    """
    from analyses.underground.sections import cross_section

    result = cross_section(_geojson(line), crs=crs)
    _write_svg(result, svg)
    if as_json:
        _dump({k: v for k, v in result.items() if k != "svg"})
        return
    t = Table("chainage (m)", "object", "utility", "size", "top (m)", "invert (m)", "gap after (m)")
    for p in result["pipes"]:
        t.add_row(f"{p['chainage_m']:.2f}", p["key"], p["utility"], f"{p['diameter_mm'] or ''}",
                  str(p["top_depth_m"]), str(p["invert_depth_m"]), str(p["gap_after_m"] or ""))
    console.print(t)


@app.command("profile")
def profile(
    start: str = typer.Argument(..., help="A manhole: object id or unique key."),
    end: str = typer.Argument(..., help="The other manhole."),
    svg: str = typer.Option(None, "--svg", help="Write the drawing to this SVG file."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON (without the drawing)."),
):
    """Long section (纵断面) of the gravity run between two manholes: inverts, slopes, manholes; flags
    adverse slopes (倒坡) and steps.

    Example: cim analyse profile WS-1204 WS-1210 --svg profile.svg
    """
    from analyses.underground.sections import long_section

    result = long_section(start, end)
    _write_svg(result, svg)
    if as_json:
        _dump({k: v for k, v in result.items() if k != "svg"})
        return
    t = Table("segment", "from (m)", "length (m)", "invert up", "invert down", "slope", "flag")
    for s in result["segments"]:
        flag = " ".join(f for f, on in (("adverse", s["adverse"]), ("step", s["step"])) if on)
        t.add_row(s["key"], f"{s['from_chainage_m']:.1f}", f"{s['length_m']:.1f}", str(s["invert_up"]),
                  str(s["invert_down"]), str(s["slope"]), flag)
    console.print(t)


@rules_app.command("load")
def rules_load(file: str = typer.Argument(..., help="CSV: table,utility_a,class_a,utility_b,class_b,min_m,"
                                                     "confidence,source")):
    """Load a city's clearance and cover rules (replacing those loaded before), after checking every row:
    known utilities, distances from 0 to 100 m, a confidence and a source for each rule.

    Example: cim rules load zhumadian_gb50289.csv
    """
    from analyses.underground.rules import load_rules

    rules = load_rules(file)
    console.print(f"{len(rules.rules)} rules loaded from {rules.name}")


@rules_app.command("show")
def rules_show():
    """Show the rules the checks use now (a city's loaded table, else the packaged one).

    Example: cim rules show
    """
    from analyses.underground.rules import current_rules

    rules = current_rules()
    t = Table("check", "ref", "a", "b", "min (m)", "confidence", "source", title=rules.name)
    for r in rules.rules:
        t.add_row(r.check, r.ref, f"{r.utility_a} {r.class_a}".strip(), f"{r.utility_b} {r.class_b}".strip(),
                  f"{r.min_m:g}", r.confidence, r.source)
    console.print(t)

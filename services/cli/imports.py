"""`cim import`: GIS layers, CityJSON, pipe surveys, EPANET and SWMM models, IFC buildings.

Every command is one bulk import (importers.<name>.import_files) with one progress bar, a summary table
and the failures at the end.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .output import console, counts_text, err_console

app = typer.Typer(
    help="Import sources into the CIM. Example: cim import gis roads.geojson --as roads", no_args_is_help=True
)


def _import_sources(
    module,
    files: list[str],
    what: str,
    *,
    headers: tuple[str, ...],
    cells,
    workers: int,
    force: bool,
    after=None,
    **options,
) -> None:
    """Every `cim import`: one progress bar (files and objects), a summary table, failures at the end.

    headers and cells(result) are the importer's own columns, between dataset and status; after(result)
    runs on each dataset written (imported or replaced), before the table."""
    from cim_core.errors import InputError
    from importers.common import expand_sources

    paths = expand_sources(files, module.SUFFIXES)
    if not paths:
        raise InputError(f"{', '.join(files)}: no {what} file found")
    if options.get("dataset") and len(paths) > 1:
        raise InputError(f"--dataset names one dataset, but {len(paths)} files were given")
    in_workers = workers > 1 and len(paths) > 1
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[objects]} objects"),
        TimeElapsedColumn(),
        console=err_console,
        disable=not err_console.is_terminal,
    ) as bar:
        task = bar.add_task(f"importing {what}", total=len(paths), objects=0)
        objects = [0]

        def per_object(n: int) -> None:
            objects[0] += n
            bar.update(task, objects=objects[0])

        def per_file(r) -> None:
            if in_workers:  # objects were counted in the worker processes
                objects[0] += sum(v for k, v in r.counts.items() if k != "qa_findings")
            bar.update(task, advance=1, objects=objects[0])

        results = module.import_files(
            [str(p) for p in paths],
            workers=workers,
            force=force,
            on_file=per_file,
            on_objects=per_object,
            **options,
        )
    for r in results:
        if after and not r.error and not r.skipped:
            after(r)
    failed = [r for r in results if r.error]
    if len(results) == 1 and failed:
        raise InputError(failed[0].error)
    t = Table("file", "dataset", *headers, "status")
    for r in results:
        t.add_row(Path(r.path).name, r.dataset, *(("",) * len(headers) if r.error else cells(r)), _status(r))
    console.print(t)
    for r in failed:
        err_console.print(f"failed: {r.error}", markup=False, highlight=False)
    if failed:
        raise InputError(f"{len(failed)} of {len(results)} files failed")


def _status(r) -> str:
    if r.error:
        return "failed"
    if r.skipped:
        return "skipped (already loaded; --force re-imports)"
    return "replaced" if r.replaced else "imported"


def _gis_notes(r) -> str:
    rep, notes = r.report, []
    if rep.get("layer"):
        notes.append(f"layer {rep['layer']} as {rep.get('kind')}")
    h = rep.get("height")
    if h:
        notes.append(
            f"heights: {h['from_field']} from {h['field'] or '-'}, {h['from_floors']} from floors, "
            f"{h['default']} default {h['default_height']:g} m"
        )
    if rep.get("repaired"):
        notes.append(f"{rep['repaired']} invalid geometries repaired")
    if rep.get("no_geometry"):
        notes.append(f"{rep['no_geometry']} without geometry (kept)")
    if rep.get("unusable_geometry"):
        notes.append(
            f"{rep['unusable_geometry']['count']} with nothing usable left after repair (kept, no mesh)"
        )
    if rep.get("crs_overridden"):
        notes.append(f"CRS {rep['crs_overridden']}")
    if rep.get("qa"):
        notes.append("QA: " + ", ".join(f"{k} {v}" for k, v in sorted(rep["qa"].items())))
    return "\n".join(notes)


@app.command("gis")
def import_gis(
    files: list[str] = typer.Argument(
        ..., help="GeoJSON, Shapefile, GeoPackage or any file GDAL reads; folders or globs for many."
    ),
    layer: str = typer.Option(None, "--layer", help="Layer to import (needed when a file has several)."),
    kind: str = typer.Option(
        None,
        "--as",
        help="buildings|roads|landuse|water|green|facilities|pipes|"
        "pipe-nodes (default: guessed from the layer name).",
    ),
    crs: str = typer.Option(
        None, "--crs", help="Source CRS when the file has none, e.g. EPSG:4490; overrides the file's."
    ),
    height_field: str = typer.Option(
        None, "--height-field", help="Building height field (m above ground); default: auto-detected."
    ),
    floors_field: str = typer.Option(
        None, "--floors-field", help="Floor count field, used where there is no height (x CIM_STOREY_HEIGHT)."
    ),
    dataset: str = typer.Option(
        None,
        "--dataset",
        help="Dataset name (default: the file's stem, plus the layer for multi-layer files).",
    ),
    scenario: str = typer.Option(
        None, "--scenario", help="Renewal plan the dataset belongs to (created if new); default: as-is (现状)."
    ),
    workers: int = typer.Option(1, "--workers", help="Files imported in parallel processes."),
    force: bool = typer.Option(False, "--force", help="Re-import files already loaded."),
):
    """Import GIS layers: buildings become closed LOD1 solids extruded from the ground to their height, other
    polygons flat surfaces, roads and rivers with a width field a ribbon; every attribute is kept. Pipe
    layers build the pipe network.

    Example: cim import gis district.gpkg --layer buildings --as buildings --height-field height_m
    """
    from importers import gis

    _import_sources(
        gis,
        files,
        "GIS layers",
        headers=("objects", "notes"),
        cells=lambda r: (counts_text(r.counts), _gis_notes(r)),
        after=survey_qa,
        dataset=dataset,
        workers=workers,
        force=force,
        layer=layer,
        kind=kind,
        crs=crs,
        height_field=height_field,
        floors_field=floors_field,
        scenario=scenario,
    )


def _cityjson_notes(r) -> str:
    rep, notes = r.report, []
    if rep.get("version"):
        notes.append(
            f"CityJSON {rep['version']}{' (sequence)' if rep.get('sequence') else ''}, CRS {rep.get('crs')}"
        )
    if rep.get("lod"):
        notes.append("LoD " + ", ".join(f"{k}: {v}" for k, v in sorted(rep["lod"].items())))
    if rep.get("skipped_types"):
        notes.append(
            "not imported: " + ", ".join(f"{k} {v}" for k, v in sorted(rep["skipped_types"].items()))
        )
    return "\n".join(notes)


@app.command("cityjson")
def import_cityjson(
    files: list[str] = typer.Argument(
        ..., help="CityJSON 1.1/2.0 (.city.json, .json) or CityJSONSeq (.jsonl) files, folders or globs."
    ),
    crs: str = typer.Option(
        None, "--crs", help="Source CRS when the file names none, e.g. EPSG:7415; overrides the file's."
    ),
    dataset: str = typer.Option(None, "--dataset", help="Dataset name (default: the file's stem)."),
    workers: int = typer.Option(1, "--workers", help="Files imported in parallel processes."),
    force: bool = typer.Option(False, "--force", help="Re-import files already loaded."),
):
    """Import CityJSON buildings and building parts: the highest LoD geometry of each, with roof, wall and
    ground surfaces as materials, attributes, and parts linked to their building.

    Example: cim import cityjson rotterdam.city.json --crs EPSG:7415
    """
    from importers import cityjson

    _import_sources(
        cityjson,
        files,
        "CityJSON",
        headers=("objects", "notes"),
        cells=lambda r: (counts_text(r.counts), _cityjson_notes(r)),
        dataset=dataset,
        workers=workers,
        force=force,
        crs=crs,
    )


def _offset(value: str | None) -> tuple[float, float] | None:
    """'E,N' -> (E, N)."""
    if value is None:
        return None
    try:
        e, n = (float(v) for v in value.split(","))
    except ValueError:
        raise typer.BadParameter(
            f"--offset wants E,N in metres, e.g. 501800,3649500; got {value!r}"
        ) from None
    return e, n


def _network_cells(r) -> tuple[str, str, str]:
    qa = r.report.get("qa") or {}
    return (
        str(r.counts.get("pipe_node", "")),
        str(r.counts.get("pipe_segment", "")),
        ", ".join(f"{k} {v}" for k, v in qa.items()) or ("" if r.skipped else "none"),
    )


def survey_qa(r) -> None:
    """The survey QA on a freshly imported pipe survey; its counts join the import's in the result."""
    from analyses import network_qa

    if r.report.get("kind") not in ("pipes", "pipe-nodes"):
        return
    counts = network_qa.check(r.dataset)
    r.report["qa"] = dict(sorted({**r.report.get("qa", {}), **counts}.items()))
    if counts:
        r.counts["qa_findings"] = r.counts.get("qa_findings", 0) + sum(counts.values())


def _run_network_imports(module, files: list[str], what: str, workers: int, force: bool, **options) -> None:
    """Bulk import with the survey QA counts of each dataset in the summary."""
    _import_sources(
        module,
        files,
        what,
        headers=("nodes", "segments", "QA findings"),
        cells=_network_cells,
        workers=workers,
        force=force,
        after=survey_qa,
        **options,
    )


@app.command("pipes")
def import_pipes(
    files: list[str] = typer.Argument(
        ..., help="Survey files (GeoPackage, Shapefile, GeoJSON...), folders or globs."
    ),
    layer: str = typer.Option(
        None,
        "--layer",
        help="Line layer of pipes (default: 'pipes', else the "
        "first line layer); a point layer imports nodes only.",
    ),
    nodes_layer: str = typer.Option(
        None, "--nodes-layer", help="Point layer of nodes (default: pipe_nodes or *_nodes)."
    ),
    crs: str = typer.Option(None, "--crs", help="Source CRS when the file has none, e.g. EPSG:4547."),
    field: list[str] = typer.Option(
        [], "--field", help="Map a field: TARGET=SOURCE, e.g. diameter_mm=DN (repeatable)."
    ),
    utility: str = typer.Option(
        "unknown",
        "--utility",
        help="Utility of features without one: water, rain, sewage, combined, gas, heat, power, telecom.",
    ),
    depth_to: str = typer.Option(
        "auto",
        "--depth-to",
        help="What depths refer to: auto (invert for drainage, centreline otherwise), invert or axis.",
    ),
    snap: float = typer.Option(0.5, "--snap", help="Snap tolerance (m) joining segment ends to nodes."),
    dataset: str = typer.Option(None, "--dataset", help="Dataset name (default FILE-STEM_LAYER)."),
    workers: int = typer.Option(1, "--workers", help="Files imported in parallel."),
    force: bool = typer.Option(False, "--force", help="Re-import files already loaded."),
):
    """Import pipe survey layers (CJJ 61 fields; Chinese field names such as 管径, 材质, 起点埋深 are
    recognised) as 3D pipe networks, with topology and survey QA (dangling ends, duplicates, lengths, tees,
    depth mismatches).

    Example: cim import pipes survey.gpkg --layer 给水管线 --nodes-layer 给水管点 --field diameter_mm=DN
    """
    from cim_core.errors import InputError
    from importers import pipes

    field_map = {}
    for f in field:
        target, sep, source = f.partition("=")
        if not sep or not target or not source:
            raise InputError(f"--field wants TARGET=SOURCE, e.g. diameter_mm=DN; got {f!r}")
        field_map[target.strip()] = source.strip()
    _run_network_imports(
        pipes,
        files,
        "pipe layers",
        workers,
        force,
        layer=layer,
        nodes_layer=nodes_layer,
        crs=crs,
        field_map=field_map,
        utility=utility,
        depth_to=depth_to,
        snap_tolerance=snap,
        dataset=dataset,
    )


@app.command("epanet")
def import_epanet(
    files: list[str] = typer.Argument(..., help="EPANET .inp files, folders or globs."),
    crs: str = typer.Option(None, "--crs", help="CRS of the model's coordinates (default: the storage CRS)."),
    offset: str = typer.Option(
        None,
        "--offset",
        help="E,N added to every coordinate (in the CRS of --crs), to place a locally drawn network.",
    ),
    scale: float = typer.Option(
        1.0, "--scale", help="Factor applied to coordinates before the offset (e.g. 0.3048 for feet)."
    ),
    dataset: str = typer.Option(None, "--dataset", help="Dataset name (default: the file's stem)."),
    workers: int = typer.Option(1, "--workers", help="Files imported in parallel."),
    force: bool = typer.Option(False, "--force", help="Re-import files already loaded."),
):
    """Import EPANET water network models (junctions, tanks, reservoirs, pipes, pumps, valves) with WNTR.
    Pipes lie at the default cover (CIM_DEFAULT_PIPE_COVER) below the node elevations.

    Example: cim import epanet Net3.inp --crs EPSG:4547 --offset 501800,3649500
    """
    from importers import epanet

    _run_network_imports(
        epanet,
        files,
        "EPANET models",
        workers,
        force,
        crs=crs,
        offset=_offset(offset),
        scale=scale,
        dataset=dataset,
    )


@app.command("swmm")
def import_swmm(
    files: list[str] = typer.Argument(..., help="SWMM .inp files, folders or globs."),
    crs: str = typer.Option(None, "--crs", help="CRS of the model's coordinates (default: the storage CRS)."),
    offset: str = typer.Option(
        None,
        "--offset",
        help="E,N added to every coordinate (in the CRS of --crs), to place a locally drawn network.",
    ),
    scale: float = typer.Option(1.0, "--scale", help="Factor applied to coordinates before the offset."),
    utility: str = typer.Option("combined", "--utility", help="sewage, rain or combined."),
    dataset: str = typer.Option(None, "--dataset", help="Dataset name (default: the file's stem)."),
    workers: int = typer.Option(1, "--workers", help="Files imported in parallel."),
    force: bool = typer.Option(False, "--force", help="Re-import files already loaded."),
):
    """Import EPA SWMM drainage models: junctions as manholes, outfalls, storage, conduits with inverts from
    offsets and sections from [XSECTIONS] (US units are converted to metres).

    Example: cim import swmm Example1.inp --crs EPSG:4547 --offset 501800,3649500 --utility rain
    """
    from importers import swmm

    _run_network_imports(
        swmm,
        files,
        "SWMM models",
        workers,
        force,
        crs=crs,
        offset=_offset(offset),
        scale=scale,
        utility=utility,
        dataset=dataset,
    )


def _ifc_at(value: str | None) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        at = tuple(float(v) for v in value.split(","))
    except ValueError:
        at = ()
    if len(at) not in (2, 3):
        raise typer.BadParameter(f"--at wants E,N or E,N,H in metres, e.g. 501800,3649500,75; got {value!r}")
    return at


def _ifc_cells(r) -> tuple[str, str, str]:
    geo = r.report.get("georef", {})
    method = "\n".join([f"{geo['method']} -> {geo['crs']}", *geo.get("notes", [])]) if geo else ""
    bad = r.report.get("failed", [])
    failed = "\n".join(
        [str(r.report.get("failed_count", "")), *(f"{f['ifc_class']} {f['GlobalId']}" for f in bad[:5])]
    )
    order = ("building", "storey", "space", "element", "pipe_segment", "site")
    return method, ", ".join(f"{r.counts[k]} {k}" for k in order if r.counts.get(k)), failed


@app.command("ifc")
def import_ifc(
    files: list[str] = typer.Argument(..., help="IFC files (IFC2X3, IFC4, IFC4X3), folders or globs."),
    dataset: str = typer.Option(
        None, "--dataset", help="Dataset name (default: the file's stem); one file only."
    ),
    crs: str = typer.Option(
        None,
        "--crs",
        help="CRS of the model's map coordinates when the file does "
        "not name one (or of --at), e.g. EPSG:4547.",
    ),
    at: str = typer.Option(
        None,
        "--at",
        help="E,N[,H]: put the model's origin there (storage CRS, or "
        "--crs); overrides the file's georeference.",
    ),
    rotation: float = typer.Option(
        None, "--rotation", help="With --at: degrees counter-clockwise from grid east to the model's x axis."
    ),
    scenario: str = typer.Option(
        None, "--scenario", help="Renewal plan the dataset belongs to (created if new); default: as-is (现状)."
    ),
    workers: int = typer.Option(1, "--workers", help="Files imported in parallel processes."),
    force: bool = typer.Option(False, "--force", help="Re-import files already loaded."),
):
    """Import IFC building models: site, buildings, storeys, spaces and elements with their property sets,
    materials and meshes, placed by the file's IfcMapConversion, ePSet_MapConversion or IfcSite reference
    (or by --at). Buildings get a footprint and height range; pipe segments enter the pipe network.

    Example: cim import ifc models/*.ifc --workers 2
    """
    from importers import ifc

    _import_sources(
        ifc,
        files,
        "IFC files",
        headers=("georeference", "objects", "failed elements"),
        cells=_ifc_cells,
        workers=workers,
        force=force,
        dataset=dataset,
        crs=crs,
        at=_ifc_at(at),
        rotation=rotation,
        scenario=scenario,
    )


@app.command("sensors")
def import_sensors(
    file: str = typer.Argument(..., help="A CSV or GeoJSON file of sensors."),
    crs: str = typer.Option(None, "--crs", help="CRS of a CSV's x/y (default: the storage CRS); GeoJSON is lon/lat."),
    dataset: str = typer.Option(None, "--dataset", help="Dataset name (default: the file's stem)."),
):
    """Register monitoring sensors on their assets (manholes, nodes, mains, buildings); a sensor registered
    again is updated in place and keeps its readings.

    Example: cim import sensors sensors.csv   (columns code,kind,unit,period_s,asset,x,y,z,name)
    """
    from importers import sensors

    found = sensors.import_file(file, dataset=dataset, crs=crs)
    console.print(f"{len(found)} sensors registered")

"""The `cim` command: a thin layer over importers and services.

It parses arguments, shows progress, and turns errors into one clear line and a non-zero exit code.
This is the one module of services/ that imports importers/; nothing imports it.
"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cim_core import db as cdb
from cim_core import store
from cim_core.errors import CimError

console = Console()
err_console = Console(stderr=True)
app = typer.Typer(help="CIM/BIM digital-twin platform: import city data into PostGIS, publish 3D tiles and "
                       "OGC API - Features.\n\nExample: cim db start && cim datasets",
                  no_args_is_help=True, rich_markup_mode="markdown", pretty_exceptions_enable=False)
db_app = typer.Typer(help="The database: the embedded PostGIS cluster, or the server of CIM_DATABASE_URL.",
                     no_args_is_help=True)
datasets_app = typer.Typer(help="Imported datasets.\n\nExample: cim datasets; cim datasets rm roads")
import_app = typer.Typer(help="Import sources into the CIM. Example: cim import gis roads.geojson --as roads",
                         no_args_is_help=True)
tiles_app = typer.Typer(help="3D Tiles 1.1. Example: cim tiles build --out ./tiles", no_args_is_help=True)
keys_app = typer.Typer(help="API keys and roles. Example: cim keys create --role utilities", no_args_is_help=True)
sample_app = typer.Typer(help="The generated sample district. Example: cim sample generate --out ./district",
                         no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(datasets_app, name="datasets")
app.add_typer(import_app, name="import")
app.add_typer(tiles_app, name="tiles")
app.add_typer(keys_app, name="keys")
app.add_typer(sample_app, name="sample")

_debug = False


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors.")):
    global _debug
    _debug = debug


@contextmanager
def progress_bar(total: int | None, what: str):
    """A progress bar on stderr; yields a function that advances it."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, transient=False, disable=not err_console.is_terminal) as p:
        task = p.add_task(what, total=total)
        yield lambda n=1: p.advance(task, n)


# ---------------------------------------------------------------- db
@db_app.command("start")
def db_start():
    """Start the database (creating and migrating it on first use); a no-op when it runs.

    Example: cim db start
    """
    s = cdb.get_settings()
    if s.database_url:
        cdb.get_engine()
        console.print(f"using {cdb.describe_url(s.database_url)} (CIM_DATABASE_URL); schema is up to date")
        return
    emb = cdb.embedded()
    started = emb.start()
    cdb.get_engine()
    console.print(f"{'started' if started else 'already running'}: embedded PostGIS at 127.0.0.1:{emb.port} "
                  f"({emb.pgdata})")


@db_app.command("stop")
def db_stop():
    """Stop the embedded database.

    Example: cim db stop
    """
    if cdb.get_settings().database_url:
        console.print("CIM_DATABASE_URL is set: nothing to stop")
        return
    console.print("stopped" if cdb.embedded().stop() else "not running")


@db_app.command("status")
def db_status():
    """Whether the database runs, where, and its PostgreSQL and PostGIS versions.

    Example: cim db status
    """
    s = cdb.get_settings()
    if not s.database_url and not cdb.embedded().running():
        console.print(f"not running (embedded, {cdb.embedded().pgdata}); start it with `cim db start`")
        raise typer.Exit(3)
    engine = cdb.get_engine()
    v = cdb.server_versions(engine)
    where = cdb.describe_url(engine.url.render_as_string())
    kind = "server of CIM_DATABASE_URL" if s.database_url else f"embedded, {cdb.embedded().pgdata}"
    console.print(f"running at {where} ({kind})\nPostgreSQL {v['postgresql']}, PostGIS {v['postgis']}, "
                  f"storage CRS EPSG:{cdb.storage_srid(engine)}")


@db_app.command("url")
def db_url():
    """Print the database URL, for psql and other tools.

    Example: psql "$(cim db url)" -c 'select postgis_version()'
    """
    url = cdb.database_url()
    cdb.get_engine()
    print(url.replace("postgresql+psycopg://", "postgresql://"))


# ---------------------------------------------------------------- datasets
@datasets_app.callback(invoke_without_command=True)
def datasets_list(ctx: typer.Context):
    """List datasets with their object counts."""
    if ctx.invoked_subcommand:
        return
    rows = store.list_datasets()
    if not rows:
        console.print("no datasets yet; import one with `cim import ...` or run `cim demo`")
        return
    t = Table("name", "kind", "objects", "counts", "source CRS", "imported", "source")
    for r in rows:
        counts = {k: v for k, v in r["counts"].items()}
        t.add_row(r["name"], r["kind"], str(sum(v for k, v in counts.items() if k != "qa_findings")),
                  ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), r["source_crs"] or "",
                  r["imported_at"].strftime("%Y-%m-%d %H:%M"), r["source_path"] or "")
    console.print(t)


@datasets_app.command("rm")
def datasets_rm(name: str):
    """Remove a dataset and all its objects.

    Example: cim datasets rm roads
    """
    store.remove_dataset(name)
    console.print(f"removed {name}")


# ---------------------------------------------------------------- sample district (issue 3)
@sample_app.command("generate")
def sample_generate(out: Path = typer.Option(..., "--out", help="Folder to write into."),
                    scale: float = typer.Option(1.0, "--scale", help="Area factor: 1 is about 3 km x 3 km and "
                                                                         "3,000 buildings, 30 about 100,000."),
                    seed: int = typer.Option(7, "--seed", help="The same seed gives the same district.")):
    """Generate the sample district (Zhumadian central district, EPSG:4547): a GeoPackage, IFC buildings and a manifest.

    Example: cim sample generate --out ./district --scale 1 --seed 7
    """
    from sample_models.district import generate

    with progress_bar(None, "generating") as advance:
        seen: dict[str, int] = {}

        def progress(stage: str, n: int):
            advance(max(0, n - seen.get(stage, 0)))
            seen[stage] = n

        manifest = generate(out, scale=scale, seed=seed, progress=progress)
    t = Table("file", "layer", "features", "import with")
    for f in manifest["files"]:
        for layer in f.get("layers", [f]):
            count = layer.get("count", sum(layer.get("counts", {}).values()))
            t.add_row(f["path"], layer.get("layer", ""), str(count),
                      layer["command"] or f"(with the {layer.get('imported_with')} layer)")
    console.print(t)
    console.print(f"manifest: {Path(out) / 'manifest.json'}")



# ---------------------------------------------------------------- import gis, cityjson (issue 4)
def _import_sources(module, files: list[str], what: str, *, headers: tuple[str, ...], cells, workers: int,
                    force: bool, **options) -> None:
    """Every `cim import`: one progress bar (files and objects), a summary table, failures at the end.

    headers and cells(result) are the importer's own columns, between dataset and status."""
    from cim_core.errors import InputError
    from importers.common import expand_sources

    paths = expand_sources(files, module.SUFFIXES)
    if not paths:
        raise InputError(f"{', '.join(files)}: no {what} file found")
    if options.get("dataset") and len(paths) > 1:
        raise InputError(f"--dataset names one dataset, but {len(paths)} files were given")
    in_workers = workers > 1 and len(paths) > 1
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[objects]} objects"), TimeElapsedColumn(),
                  console=err_console, disable=not err_console.is_terminal) as bar:
        task = bar.add_task(f"importing {what}", total=len(paths), objects=0)
        objects = [0]

        def per_object(n: int) -> None:
            objects[0] += n
            bar.update(task, objects=objects[0])

        def per_file(r) -> None:
            if in_workers:  # objects were counted in the worker processes
                objects[0] += sum(v for k, v in r.counts.items() if k != "qa_findings")
            bar.update(task, advance=1, objects=objects[0])

        results = module.import_files([str(p) for p in paths], workers=workers, force=force, progress=per_file,
                                      object_progress=per_object, **options)
    failed = [r for r in results if r.error]
    if len(results) == 1 and failed:
        raise InputError(failed[0].error)
    t = Table("file", "dataset", *headers, "status")
    for r in results:
        status = "failed" if r.error else "skipped (already loaded; --force re-imports)" \
            if r.skipped else "replaced" if r.replaced else "imported"
        t.add_row(Path(r.path).name, r.dataset, *(("",) * len(headers) if r.error else cells(r)), status)
    console.print(t)
    for r in failed:
        err_console.print(f"failed: {r.error}", markup=False, highlight=False)
    if failed:
        raise InputError(f"{len(failed)} of {len(results)} files failed")


def _counts(r) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(r.counts.items()))


def _gis_notes(r) -> str:
    rep, notes = r.report, []
    if rep.get("layer"):
        notes.append(f"layer {rep['layer']} as {rep.get('kind')}")
    h = rep.get("height")
    if h:
        notes.append(f"heights: {h['from_field']} from {h['field'] or '-'}, {h['from_floors']} from floors, "
                     f"{h['default']} default {h['default_height']:g} m")
    if rep.get("repaired"):
        notes.append(f"{rep['repaired']} invalid geometries repaired")
    if rep.get("no_geometry"):
        notes.append(f"{rep['no_geometry']} without geometry (kept)")
    if rep.get("unusable_geometry"):
        notes.append(f"{rep['unusable_geometry']['count']} with nothing usable left after repair (kept, no mesh)")
    if rep.get("crs_overridden"):
        notes.append(f"CRS {rep['crs_overridden']}")
    if rep.get("qa"):
        notes.append("QA: " + ", ".join(f"{k} {v}" for k, v in sorted(rep["qa"].items())))
    return "\n".join(notes)


@import_app.command("gis")
def import_gis(files: list[str] = typer.Argument(..., help="GeoJSON, Shapefile, GeoPackage or any file GDAL reads; "
                                                           "folders or globs for many."),
               layer: str = typer.Option(None, "--layer", help="Layer to import (needed when a file has several)."),
               kind: str = typer.Option(None, "--as", help="buildings|roads|landuse|water|green|facilities|pipes|"
                                                           "pipe-nodes (default: guessed from the layer name)."),
               crs: str = typer.Option(None, "--crs", help="Source CRS when the file has none, e.g. EPSG:4490; "
                                                           "overrides the file's."),
               height_field: str = typer.Option(None, "--height-field", help="Building height field (m above "
                                                                             "ground); default: auto-detected."),
               floors_field: str = typer.Option(None, "--floors-field", help="Floor count field, used where there "
                                                                             "is no height (x CIM_STOREY_HEIGHT)."),
               dataset: str = typer.Option(None, "--dataset", help="Dataset name (default: the file's stem, plus "
                                                                   "the layer for multi-layer files)."),
               workers: int = typer.Option(1, "--workers", help="Files imported in parallel processes."),
               force: bool = typer.Option(False, "--force", help="Re-import files already loaded.")):
    """Import GIS layers: buildings become closed LOD1 solids extruded from the ground to their height, other
    polygons flat surfaces, roads and rivers with a width field a ribbon; every attribute is kept. Pipe
    layers build the pipe network.

    Example: cim import gis district.gpkg --layer buildings --as buildings --height-field height_m
    """
    from importers import gis

    _import_sources(gis, files, "GIS layers", headers=("objects", "notes"),
                    cells=lambda r: (_counts(r), _gis_notes(r)), dataset=dataset, workers=workers, force=force,
                    layer=layer, kind=kind, crs=crs, height_field=height_field, floors_field=floors_field)


def _cityjson_notes(r) -> str:
    rep, notes = r.report, []
    if rep.get("version"):
        notes.append(f"CityJSON {rep['version']}{' (sequence)' if rep.get('sequence') else ''}, "
                     f"CRS {rep.get('crs')}")
    if rep.get("lod"):
        notes.append("LoD " + ", ".join(f"{k}: {v}" for k, v in sorted(rep["lod"].items())))
    if rep.get("skipped_types"):
        notes.append("not imported: " + ", ".join(f"{k} {v}" for k, v in sorted(rep["skipped_types"].items())))
    return "\n".join(notes)


@import_app.command("cityjson")
def import_cityjson(files: list[str] = typer.Argument(..., help="CityJSON 1.1/2.0 (.city.json, .json) or "
                                                                "CityJSONSeq (.jsonl) files, folders or globs."),
                    crs: str = typer.Option(None, "--crs", help="Source CRS when the file names none, e.g. "
                                                                "EPSG:7415; overrides the file's."),
                    dataset: str = typer.Option(None, "--dataset", help="Dataset name (default: the file's stem)."),
                    workers: int = typer.Option(1, "--workers", help="Files imported in parallel processes."),
                    force: bool = typer.Option(False, "--force", help="Re-import files already loaded.")):
    """Import CityJSON buildings and building parts: the highest LoD geometry of each, with roof, wall and
    ground surfaces as materials, attributes, and parts linked to their building.

    Example: cim import cityjson rotterdam.city.json --crs EPSG:7415
    """
    from importers import cityjson

    _import_sources(cityjson, files, "CityJSON", headers=("objects", "notes"),
                    cells=lambda r: (_counts(r), _cityjson_notes(r)), dataset=dataset, workers=workers, force=force,
                    crs=crs)


# ---------------------------------------------------------------- import pipes, epanet, swmm (issue 4)
def _offset(value: str | None) -> tuple[float, float] | None:
    """'E,N' -> (E, N)."""
    if value is None:
        return None
    try:
        e, n = (float(v) for v in value.split(","))
    except ValueError:
        raise typer.BadParameter(f"--offset wants E,N in metres, e.g. 501800,3649500; got {value!r}") from None
    return e, n


def _network_cells(r) -> tuple[str, str, str]:
    qa = r.report.get("qa") or {}
    return (str(r.counts.get("pipe_node", "")), str(r.counts.get("pipe_segment", "")),
            ", ".join(f"{k} {v}" for k, v in qa.items()) or ("" if r.skipped else "none"))


def _run_network_imports(module, files: list[str], what: str, workers: int, force: bool, options: dict) -> None:
    """Bulk import with the survey QA counts of each dataset in the summary."""
    _import_sources(module, files, what, headers=("nodes", "segments", "QA findings"), cells=_network_cells,
                    workers=workers, force=force, **options)


@import_app.command("pipes")
def import_pipes(files: list[str] = typer.Argument(..., help="Survey files (GeoPackage, Shapefile, GeoJSON...), "
                                                             "folders or globs."),
                 layer: str = typer.Option(None, "--layer", help="Line layer of pipes (default: 'pipes', else the "
                                                                 "first line layer); a point layer imports nodes only."),
                 nodes_layer: str = typer.Option(None, "--nodes-layer", help="Point layer of nodes (default: "
                                                                             "pipe_nodes or *_nodes)."),
                 crs: str = typer.Option(None, "--crs", help="Source CRS when the file has none, e.g. EPSG:4547."),
                 field: list[str] = typer.Option([], "--field", help="Map a field: TARGET=SOURCE, e.g. "
                                                                      "diameter_mm=DN (repeatable)."),
                 utility: str = typer.Option("unknown", "--utility", help="Utility of features without one: water, "
                                             "rain, sewage, combined, gas, heat, power, telecom."),
                 depth_to: str = typer.Option("auto", "--depth-to", help="What depths refer to: auto (invert for "
                                              "drainage, centreline otherwise), invert or axis."),
                 snap: float = typer.Option(0.5, "--snap", help="Snap tolerance (m) joining segment ends to nodes."),
                 dataset: str = typer.Option(None, "--dataset", help="Dataset name (default FILE-STEM_LAYER)."),
                 workers: int = typer.Option(1, "--workers", help="Files imported in parallel."),
                 force: bool = typer.Option(False, "--force", help="Re-import files already loaded.")):
    """Import pipe survey layers (CJJ 61 fields; Chinese field names such as 管径, 材质, 起点埋深 are recognised)
    as 3D pipe networks, with topology and survey QA (dangling ends, duplicates, lengths, tees, depth mismatches).

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
    _run_network_imports(pipes, files, "pipe layers", workers, force, dict(
        layer=layer, nodes_layer=nodes_layer, crs=crs, field_map=field_map, utility=utility, depth_to=depth_to,
        snap_tolerance=snap, dataset=dataset))


@import_app.command("epanet")
def import_epanet(files: list[str] = typer.Argument(..., help="EPANET .inp files, folders or globs."),
                  crs: str = typer.Option(None, "--crs", help="CRS of the model's coordinates (default: the "
                                                              "storage CRS)."),
                  offset: str = typer.Option(None, "--offset", help="E,N added to every coordinate (in the CRS of "
                                                                    "--crs), to place a locally drawn network."),
                  scale: float = typer.Option(1.0, "--scale", help="Factor applied to coordinates before the offset "
                                                                   "(e.g. 0.3048 for feet)."),
                  dataset: str = typer.Option(None, "--dataset", help="Dataset name (default: the file's stem)."),
                  workers: int = typer.Option(1, "--workers", help="Files imported in parallel."),
                  force: bool = typer.Option(False, "--force", help="Re-import files already loaded.")):
    """Import EPANET water network models (junctions, tanks, reservoirs, pipes, pumps, valves) with WNTR.
    Pipes lie at the default cover (CIM_DEFAULT_PIPE_COVER) below the node elevations.

    Example: cim import epanet Net3.inp --crs EPSG:4547 --offset 501800,3649500
    """
    from importers import epanet

    _run_network_imports(epanet, files, "EPANET models", workers, force,
                         dict(crs=crs, offset=_offset(offset), scale=scale, dataset=dataset))


@import_app.command("swmm")
def import_swmm(files: list[str] = typer.Argument(..., help="SWMM .inp files, folders or globs."),
                crs: str = typer.Option(None, "--crs", help="CRS of the model's coordinates (default: the "
                                                            "storage CRS)."),
                offset: str = typer.Option(None, "--offset", help="E,N added to every coordinate (in the CRS of "
                                                                  "--crs), to place a locally drawn network."),
                scale: float = typer.Option(1.0, "--scale", help="Factor applied to coordinates before the offset."),
                utility: str = typer.Option("combined", "--utility", help="sewage, rain or combined."),
                dataset: str = typer.Option(None, "--dataset", help="Dataset name (default: the file's stem)."),
                workers: int = typer.Option(1, "--workers", help="Files imported in parallel."),
                force: bool = typer.Option(False, "--force", help="Re-import files already loaded.")):
    """Import EPA SWMM drainage models: junctions as manholes, outfalls, storage, conduits with inverts from
    offsets and sections from [XSECTIONS] (US units are converted to metres).

    Example: cim import swmm Example1.inp --crs EPSG:4547 --offset 501800,3649500 --utility rain
    """
    from importers import swmm

    _run_network_imports(swmm, files, "SWMM models", workers, force,
                         dict(crs=crs, offset=_offset(offset), scale=scale, utility=utility, dataset=dataset))


@app.command("qa")
def qa(dataset: str = typer.Argument(..., help="Dataset name, as `cim datasets` lists it."),
       examples: int = typer.Option(3, "--examples", help="Example messages shown per rule.")):
    """Summarise the stored QA findings of a dataset (for pipe surveys: dangling ends, duplicate segments,
    segments too long or short, tees whose degree is not 3, depth mismatches at nodes).

    Example: cim qa district_pipes
    """
    from importers.pipes import qa_summary

    summary = qa_summary(dataset, examples=examples)
    if not summary:
        console.print(f"{dataset}: no QA findings")
        return
    t = Table("rule", "severity", "count", "examples")
    for rule, s in summary.items():
        t.add_row(rule, s["severity"], str(s["count"]), "\n".join(s["examples"]))
    console.print(t)


# ---------------------------------------------------------------- import ifc (issue 5)
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
    failed = "\n".join([str(r.report.get("failed_count", "")),
                        *(f"{f['ifc_class']} {f['GlobalId']}" for f in bad[:5])])
    order = ("building", "storey", "space", "element", "pipe_segment", "site")
    return method, ", ".join(f"{r.counts[k]} {k}" for k in order if r.counts.get(k)), failed


@import_app.command("ifc")
def import_ifc(files: list[str] = typer.Argument(..., help="IFC files (IFC2X3, IFC4, IFC4X3), folders or globs."),
               dataset: str = typer.Option(None, "--dataset", help="Dataset name (default: the file's stem); "
                                                                   "one file only."),
               crs: str = typer.Option(None, "--crs", help="CRS of the model's map coordinates when the file does "
                                                           "not name one (or of --at), e.g. EPSG:4547."),
               at: str = typer.Option(None, "--at", help="E,N[,H]: put the model's origin there (storage CRS, or "
                                                         "--crs); overrides the file's georeference."),
               rotation: float = typer.Option(None, "--rotation", help="With --at: degrees counter-clockwise from "
                                                                        "grid east to the model's x axis."),
               workers: int = typer.Option(1, "--workers", help="Files imported in parallel processes."),
               force: bool = typer.Option(False, "--force", help="Re-import files already loaded.")):
    """Import IFC building models: site, buildings, storeys, spaces and elements with their property sets,
    materials and meshes, placed by the file's IfcMapConversion, ePSet_MapConversion or IfcSite reference
    (or by --at). Buildings get a footprint and height range; pipe segments enter the pipe network.

    Example: cim import ifc models/*.ifc --workers 2
    """
    from importers import ifc

    _import_sources(ifc, files, "IFC files", headers=("georeference", "objects", "failed elements"),
                    cells=_ifc_cells, workers=workers, force=force, dataset=dataset, crs=crs, at=_ifc_at(at),
                    rotation=rotation)


# ---------------------------------------------------------------- tiles (issue 6)
@tiles_app.command("build")
def tiles_build(
    out: Path = typer.Option(..., "--out", "-o", help="Folder of the static tileset (tileset.json + one per layer)."),
    layer: list[str] = typer.Option(None, "--layer", "-l", help="Layer(s) to build: buildings, bim, pipes "
                                                                  "(default: all)."),
    incremental: bool = typer.Option(False, "--incremental", help="Rebuild only the tiles that imports since the "
                                                                   "last build into OUT touched."),
):
    """Write a static 3D Tiles 1.1 tileset of the database, for any static host or CDN.

    Example: cim tiles build --out ./tiles && cim tiles build --layer pipes --out ./tiles
    """
    from services.tiles import LAYERS, build

    layers = tuple(layer) if layer else LAYERS
    with progress_bar(None, "tiles") as advance:
        report = build(out, layers, incremental=incremental, progress=advance)
    t = Table("layer", "features", "tiles", "rebuilt", "bytes", "bytes/feature", "seconds")
    for r in report.layers:
        per = f"{r.content_bytes / r.features:.0f}" if r.features and not r.skipped else ""
        t.add_row(r.layer, str(r.features), str(r.tiles), "unchanged" if r.skipped else str(r.rebuilt),
                  f"{r.bytes:,}", per, f"{r.seconds:.1f}")
    console.print(t)
    console.print(f"{out / 'tileset.json'} (vertical offset {report.vertical_offset:+.2f} m)")


# ---------------------------------------------------------------- serve, keys (issue 7)
@app.command("serve")
def serve(host: str = typer.Option("127.0.0.1", help="Address to listen on; 0.0.0.0 to share on the network."),
          port: int = typer.Option(8000, help="Port to listen on."),
          workers: int = typer.Option(1, min=1, help="Worker processes (each with its own connection pool).")):
    """Serve the features API (/api), the 3D tiles (/tiles) and the viewer (/) with uvicorn.

    Example: cim serve --port 8000 --workers 2
    """
    import uvicorn

    engine = cdb.get_engine()  # start and migrate the database once, before the workers fork
    console.print(f"database: {cdb.describe_url(engine.url.render_as_string())}; "
                  f"serving http://{host}:{port}/api (OpenAPI docs at /api/docs)")
    uvicorn.run("services.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level="warning")


@keys_app.command("create")
def keys_create(role: str = typer.Option(..., help="Role of the key: `cim keys roles` lists them."),
                name: str = typer.Option(None, help="A label, e.g. who holds the key.")):
    """Create an API key for a role. The key is printed once; only its hash is stored.

    Example: cim keys create --role water --name "water utility GIS"
    """
    from services import auth

    key_id, token = auth.create_key(role, name)
    console.print(f"key {key_id} for role {role}" + (f" ({name})" if name else "") + ": store it now, "
                  "it cannot be shown again")
    print(token)


@keys_app.command("list")
def keys_list():
    """List API keys (id, label, role, first characters, when created, last used, revoked).

    Example: cim keys list
    """
    from services import auth

    t = Table("id", "name", "role", "key", "created", "last used", "revoked")
    fmt = lambda d: d.strftime("%Y-%m-%d %H:%M") if d else ""  # noqa: E731
    for k in auth.list_keys():
        t.add_row(str(k["id"]), k["name"] or "", k["role"], k["prefix"] + "...", fmt(k["created_at"]),
                  fmt(k["last_used_at"]), fmt(k["revoked_at"]) and f"revoked {fmt(k['revoked_at'])}")
    console.print(t)


@keys_app.command("revoke")
def keys_revoke(key_id: int = typer.Argument(..., help="Id of the key, from `cim keys list`.")):
    """Revoke an API key: it is refused from the next request on.

    Example: cim keys revoke 3
    """
    from services import auth

    auth.revoke_key(key_id)
    console.print(f"revoked key {key_id}")


@keys_app.command("roles")
def keys_roles():
    """List roles and the layers each may read beyond the public ones ('*' is every layer).

    Example: cim keys roles
    """
    from services import auth

    t = Table("role", "grants", "description")
    for r in auth.list_roles():
        t.add_row(r["name"], ", ".join(r["grants"]) or "(public layers only)", r["description"])
    console.print(t)


@keys_app.command("audit")
def keys_audit(limit: int = typer.Option(50, help="How many of the latest entries."),
               layer: str = typer.Option(None, help="Only this layer, e.g. pipes_water.")):
    """Show who read restricted layers (and who was refused), latest first.

    Example: cim keys audit --layer pipes_water --limit 20
    """
    from services import auth

    t = Table("when", "key", "role", "layer", "object", "status", "client", "request")
    for a in auth.audit_entries(limit, layer):
        key = f"{a['key_id']} {a['key_name'] or ''}".strip() if a["key_id"] else "anonymous"
        t.add_row(a["at"].strftime("%Y-%m-%d %H:%M:%S"), key, a["role"], a["layer"], str(a["object_id"] or ""),
                  str(a["status"]), a["client"] or "", a["path"])
    console.print(t)


# ---------------------------------------------------------------- demo (issue 8)
def _manifest_imports(manifest_path: Path) -> list[tuple[str, Path, dict]]:
    """(importer, file, options) for each `cim import ...` command listed in a sample-district manifest."""
    import json
    import shlex

    from cim_core.errors import InputError

    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    commands = [layer["command"] for f in manifest["files"] for layer in f.get("layers", []) if layer["command"]]
    commands += [f["command"] for f in manifest["files"] if "command" in f]
    steps = []
    for cmd in commands:
        argv = shlex.split(cmd)
        if argv[:2] != ["cim", "import"] or len(argv) < 4:
            raise InputError(f"{manifest_path}: cannot follow {cmd!r}", hint="expected `cim import KIND FILE ...`")
        options: dict = {}
        rest = argv[4:]
        for i, arg in enumerate(rest):
            if arg.startswith("--"):
                value = rest[i + 1] if i + 1 < len(rest) and not rest[i + 1].startswith("--") else True
                options[_DEMO_KWARGS.get(arg, arg[2:].replace("-", "_"))] = value
        steps.append((argv[2], manifest_path.parent / argv[3], options))
    return steps


# CLI options of the manifest's commands whose Python keyword differs from the option's name.
_DEMO_KWARGS = {"--as": "kind"}


def _demo_load(manifest_path: Path) -> list[tuple[str, str]]:
    """Import every manifest entry whose dataset is missing or was loaded from other content."""
    import importlib

    from cim_core.errors import InputError

    loaded = {d["name"]: d["sha256"] for d in store.list_datasets()}
    todo = [(kind, path, opts) for kind, path, opts in _manifest_imports(manifest_path)
            if loaded.get(opts.get("dataset")) != store.sha256_of(path)]
    done = []
    with progress_bar(len(todo), "importing the sample district") as advance:
        for kind, path, opts in todo:
            # force: one GeoPackage feeds several datasets, so its checksum alone does not tell them apart.
            result = importlib.import_module(f"importers.{kind}").import_file(path, force=True, **opts)
            if result.error:
                raise InputError(f"{path}: {result.error}")
            done.append((result.dataset, ", ".join(f"{k} {v}" for k, v in sorted(result.counts.items()))))
            advance()
    return done


@app.command("demo")
def demo(port: int = typer.Option(8000, help="Port to serve on."),
         scale: float = typer.Option(1.0, help="Sample district scale: 1 is about 3,000 buildings."),
         host: str = typer.Option("127.0.0.1", help="Address to listen on; 0.0.0.0 to share on the network.")):
    """The sample district in the browser: start the database, generate and import the district when it is not
    loaded yet, build the tiles, and serve the viewer. A second run skips the import.

    Example: cim demo --port 8000
    """
    import subprocess

    import uvicorn

    from cim_core.errors import InputError

    from sample_models.district import generate
    from services.app import VIEWER, create_app
    from services.tiles import build as build_tiles
    from services.tiles.service import cache_dir

    if not (VIEWER / "node_modules" / "cesium" / "Build" / "Cesium" / "Cesium.js").exists():
        console.print("installing CesiumJS into viewer/node_modules (npm ci)")
        if subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=VIEWER).returncode != 0:
            raise InputError(f"{VIEWER / 'package.json'}: npm ci failed", hint="install Node.js 20 and npm")
    engine = cdb.get_engine()
    console.print(f"database: {cdb.describe_url(engine.url.render_as_string())}")
    folder = cdb.get_settings().home.absolute() / "sample-district" / f"scale-{scale:g}"
    manifest = folder / "manifest.json"
    if not manifest.exists():
        with progress_bar(None, f"generating the sample district (scale {scale:g}) in {folder}") as advance:
            generate(folder, scale=scale, progress=lambda stage, n: advance(0))
    loaded = _demo_load(manifest)
    if loaded:
        t = Table("dataset", "imported")
        for name, counts in loaded:
            t.add_row(name, counts)
        console.print(t)
    else:
        console.print("sample district already loaded: import skipped")
    with progress_bar(None, "building the 3D tiles") as advance:
        # Into the cache `cim serve` reads; incremental: tiles of an unchanged database are kept as they are.
        report = build_tiles(cache_dir(), engine=engine, incremental=True, progress=lambda n=1: advance(n))
    console.print("tiles: " + ", ".join(f"{la.layer} {la.features} features" + (" (unchanged)" if la.skipped else "")
                                        for la in report.layers))
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
    console.print("Ctrl+C stops the server; the database keeps running (`cim db stop`).")
    print(f"\nopen {url}", flush=True)
    uvicorn.run(create_app(), host=host, port=port, log_level="warning")



def main():
    try:
        app()
    except CimError as exc:
        if _debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted: nothing of the current import was written", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        if _debug:
            raise
        first = str(exc).strip().splitlines()
        print(f"error: {type(exc).__name__}: {first[0] if first else ''} (run with --debug for details)",
              file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

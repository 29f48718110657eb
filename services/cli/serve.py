"""`cim serve` and `cim demo`: the API, the tiles and the viewer over HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.table import Table

from cim_core import db as cdb

from .output import console, counts_text, progress_bar, steps_bar

if TYPE_CHECKING:
    import sqlalchemy as sa


def _check_port(host: str, port: int) -> None:
    """Fail at once, not when uvicorn starts after minutes of work, when host:port cannot be listened on."""
    import errno
    import socket

    from cim_core.errors import InputError

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: a port in TIME_WAIT is free
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InputError(f"port {port} on {host} is in use (another server?); "
                                 "choose another with --port") from exc
            raise InputError(f"cannot listen on {host} port {port}: {exc.strerror}") from exc


def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on; 0.0.0.0 to share on the network."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, min=1, help="Worker processes (each with its own connection pool)."),
):
    """Serve the features API (/api), the 3D tiles (/tiles) and the viewer (/) with uvicorn.

    Example: cim serve --port 8000 --workers 2
    """
    from services import serve as server

    _check_port(host, port)
    engine = cdb.get_engine()  # start and migrate the database once, before the workers fork
    console.print(
        f"database: {cdb.describe_url(engine.url.render_as_string())}; "
        f"serving http://{host}:{port}/api (OpenAPI docs at /api/docs)"
    )
    server.run(host=host, port=port, workers=workers)


def _install_cesium() -> None:
    """CesiumJS into viewer/node_modules, unless it is there."""
    import subprocess

    from cim_core.errors import InputError
    from services.app import VIEWER

    if not (VIEWER / "node_modules" / "cesium" / "Build" / "Cesium" / "Cesium.js").exists():
        console.print("installing CesiumJS into viewer/node_modules (npm ci)")
        if subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=VIEWER, check=False).returncode != 0:
            raise InputError(f"{VIEWER / 'package.json'}: npm ci failed", hint="install Node.js 20 and npm")


# The demo's design storm runs before serving up to this scale: seconds at scale 1, many minutes of SWMM's
# dynamic wave at scale 30 (117,000 manholes) on a 2-core machine, so above it the storm runs beside the server;
# bench drainage leaves it out above scale 1.
STORM_MAX_SCALE = 1.0


def health_check_year() -> int:
    import datetime as dt

    return dt.date.today().year - 1


def _health_check(engine: sa.Engine, again: bool) -> None:
    """Last year's health-check indicators for the dashboard: computed once, and again after the district
    changed or a design storm (its waterlogging points) ran after it."""
    import sqlalchemy as sa

    from analyses.healthcheck import yearly
    from cim_core.errors import NotFoundError

    year = health_check_year()
    try:
        rid = yearly.latest_run(year, engine)
        with engine.connect() as c:
            stormed = c.scalar(sa.text("select exists (select 1 from analysis_runs "
                                       "where analysis = 'drainage-storm' and id > :r)"), {"r": rid})
        if not (again or stormed):
            return
    except NotFoundError:
        pass
    with progress_bar(None, f"computing the {year} health check (城市体检) for the dashboard"):
        yearly.run(year, engine=engine, requested_by="cim demo")


def _storm_due(engine: sa.Engine, again: bool) -> bool:
    """Whether the demo's design storm is to run: once, and again after the district changed."""
    import sqlalchemy as sa

    with engine.connect() as c:
        done = c.scalar(sa.text("select 1 from analysis_runs where analysis = 'drainage-storm' limit 1"))
    return again or not done


def _design_storm(engine: sa.Engine, again: bool) -> bool:
    """The waterlogging points (the viewer's layer, the health check's 严重易涝积水点数量): a 3-year 120-minute
    design storm over the sample district's drainage network, run once and again after the district changed.
    Whether it ran."""
    from analyses.drainage import storm
    from sample_models.district import dataset_of

    if not _storm_due(engine, again):
        return False
    with progress_bar(None, "running a 3-year design storm over the drainage network (waterlogging points)"):
        out = storm.run(dataset_of("pipes"), return_period=3, duration_min=120, engine=engine, requested_by="cim demo")
    console.print(f"design storm: {out['overflowing_manholes']} manhole(s) overflow, {out['flooding_points']} of them "
                  f"waterlogging points (run {out['run_id']})")
    return True


def _demo_sensors(engine: sa.Engine) -> bool:
    """Place the live simulation's sensors (as its process would) unless they are: the health check's
    monitored pipes count them. Whether they were placed now."""
    import sqlalchemy as sa

    from services.monitor.simulate import DATASET, place_sensors

    from .demo_live import SENSORS

    with engine.connect() as c:
        if c.scalar(sa.text("select 1 from datasets where name = :n"), {"n": DATASET}):
            return False
    place_sensors(engine, SENSORS)
    return True


def _load_sample_district(scale: float, engine: sa.Engine, live: bool) -> bool:
    """Generate the sample district into CIM_HOME unless it is there, import what is not loaded yet, and
    place the live simulation's sensors. Whether the design storm is due in the background (above
    STORM_MAX_SCALE)."""
    from sample_models.district import drainage, generate, is_current, load

    from .imports import survey_qa

    folder = cdb.get_settings().home.absolute() / "sample-district" / f"scale-{scale:g}"
    if not is_current(folder):  # not generated yet, or by an older generator
        with progress_bar(None, f"generating the sample district (scale {scale:g}) in {folder}") as advance:
            generate(folder, scale=scale, progress=lambda stage, n: advance(0))
    with steps_bar("importing the sample district") as step:
        loaded = load(folder, engine=engine, on_step=step)
    extras = drainage.load(folder, engine=engine, skip_loaded=True)  # the planted drainage cases (issue 15)
    for result in loaded:
        survey_qa(result)
    for result in extras:
        console.print(f"{result.dataset}: {result.imported if hasattr(result, 'imported') else counts_text(result.counts)} imported")
    stormed = later = False
    if scale <= STORM_MAX_SCALE:
        stormed = _design_storm(engine, again=bool(loaded))
    else:
        later = _storm_due(engine, again=bool(loaded))
    placed = live and _demo_sensors(engine)
    _health_check(engine, again=bool(loaded) or stormed or placed)
    if not loaded:
        console.print("sample district already loaded: import skipped")
        return later
    t = Table("dataset", "imported")
    for result in loaded:
        t.add_row(result.dataset, counts_text(result.counts))
    console.print(t)
    return later


def demo(
    port: int = typer.Option(8000, help="Port to serve on."),
    scale: float = typer.Option(1.0, help="Sample district scale: 1 is about 3,000 buildings."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on; 0.0.0.0 to share on the network."),
    live: bool = typer.Option(True, help="Also run a small monitoring simulation (broker, ingest, 50 sensors)."),
):
    """The sample district in the browser: start the database, generate and import the district when it is not
    loaded yet, build the tiles, and serve the viewer. A second run skips the import.

    Example: cim demo --port 8000
    """
    import uvicorn

    from services.app import create_app
    from services.tiles import build as build_tiles
    from services.tiles.service import cache_dir

    _check_port(host, port)
    _install_cesium()
    engine = cdb.get_engine()
    console.print(f"database: {cdb.describe_url(engine.url.render_as_string())}")
    storm_later = _load_sample_district(scale, engine, live)
    with progress_bar(None, "building the 3D tiles") as advance:
        # Into the cache `cim serve` reads; incremental: tiles of an unchanged database are kept as they are.
        report = build_tiles(cache_dir(), engine=engine, incremental=True, progress=lambda n=1: advance(n))
    console.print(
        "tiles: "
        + ", ".join(
            f"{la.layer} {la.features} features" + (" (unchanged)" if la.skipped else "")
            for la in report.layers
        )
    )
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
    console.print("Ctrl+C stops the server; the database keeps running (`cim db stop`).")
    print(f"\nopen {url}", flush=True)
    from sample_models.district import dataset_of

    from .demo_live import background_storm, live_simulation

    with live_simulation(live), background_storm(storm_later, dataset_of("pipes"), health_check_year()):
        uvicorn.run(create_app(), host=host, port=port, log_level="warning")

"""The `cim` command: a thin layer over importers and services, one module per command group.

It parses arguments, shows progress, and turns errors into one clear line and a non-zero exit code.
This package is the one part of services/ that imports importers/; nothing imports it.
"""

from __future__ import annotations

import sys

import typer

from . import (
    analyse,
    datasets,
    db,
    deploy,
    drainage,
    export,
    healthcheck,
    imports,
    keys,
    monitor,
    qa,
    renewal,
    sample,
    scenarios,
    serve,
    tiles,
    water,
)
from .output import print_error, print_interrupted, print_usage_error

app = typer.Typer(
    help="CIM/BIM digital-twin platform: import city data into PostGIS, publish 3D tiles and "
    "OGC API - Features.\n\nExample: cim db start && cim datasets",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)
app.command("qa")(qa.qa)
app.command("serve")(serve.serve)
app.command("demo")(serve.demo)
app.add_typer(db.app, name="db")
app.add_typer(datasets.app, name="datasets")
app.add_typer(imports.app, name="import")
app.add_typer(tiles.app, name="tiles")
app.add_typer(keys.app, name="keys")
app.add_typer(sample.app, name="sample")
app.add_typer(deploy.app, name="deploy")
app.add_typer(analyse.app, name="analyse")
app.add_typer(analyse.rules_app, name="rules")
app.add_typer(export.app, name="export")
app.add_typer(drainage.app, name="drainage")
app.add_typer(water.app, name="water")
app.add_typer(renewal.app, name="renewal")
analyse.app.command("storm")(drainage.storm)
analyse.app.command("hydraulics")(water.simulate)
imports.app.command("inspection")(drainage.import_inspection)
imports.app.command("incidents")(water.import_incidents)
app.add_typer(healthcheck.app, name="healthcheck")
app.add_typer(monitor.app, name="monitor")
app.add_typer(monitor.broker_app, name="broker")
app.add_typer(scenarios.app, name="scenarios")

_debug = False


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors.")):
    global _debug
    _debug = debug


def main() -> None:
    try:
        # Not standalone: Typer raises usage errors instead of printing its boxes, and returns the code of
        # a typer.Exit (--help 0, Ctrl+C 130) or the command's return value (None).
        code = app(standalone_mode=False)
    except typer.TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # the help is printed already; as Typer tells it apart
            sys.exit(0)
        print_usage_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:
        if _debug:
            raise
        print_error(exc)
        sys.exit(1)
    if code == 130:
        print_interrupted()
    sys.exit(code if isinstance(code, int) else 0)

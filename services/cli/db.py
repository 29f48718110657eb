"""`cim db`: start, stop and inspect the database."""

from __future__ import annotations

import typer

from cim_core import db as cdb

from .output import console

app = typer.Typer(
    help="The database: the embedded PostGIS cluster, or the server of CIM_DATABASE_URL.",
    no_args_is_help=True,
)


@app.command("start")
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
    console.print(
        f"{'started' if started else 'already running'}: embedded PostGIS at 127.0.0.1:{emb.port} "
        f"({emb.pgdata})"
    )


@app.command("stop")
def db_stop():
    """Stop the embedded database.

    Example: cim db stop
    """
    if cdb.get_settings().database_url:
        console.print("CIM_DATABASE_URL is set: nothing to stop")
        return
    console.print("stopped" if cdb.embedded().stop() else "not running")


@app.command("status")
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
    console.print(
        f"running at {where} ({kind})\nPostgreSQL {v['postgresql']}, PostGIS {v['postgis']}, "
        f"storage CRS EPSG:{cdb.storage_srid(engine)}"
    )


@app.command("url")
def db_url():
    """Print the database URL, for psql and other tools.

    Example: psql "$(cim db url)" -c 'select postgis_version()'
    """
    url = cdb.database_url()
    cdb.get_engine()
    print(url.replace("postgresql+psycopg://", "postgresql://"))

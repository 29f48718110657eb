"""Alembic migrations, run from code. The storage SRID is fixed when the schema is first created."""
from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from . import schema
from .errors import DatabaseError
from .settings import get_settings

SCRIPTS = Path(__file__).parent / "migrations"


def _compare_type(ctx, inspected_column, metadata_column, inspected_type, metadata_type):
    # A geometry column's SRID is the database's, set by the migration; the schema leaves it out.
    return False if isinstance(metadata_type, schema.Geometry) else None


_PARTITION = re.compile(r"readings_p\d{8}")


def _include_object(obj, name, type_, reflected, compare_to):
    # PostGIS's own table is not ours to compare, nor the daily partitions of readings.
    return not (type_ == "table" and (name == "spatial_ref_sys" or _PARTITION.fullmatch(name or "")))


# How the declared schema (cim_core.schema) is compared with a database, by migrations and autogenerate.
COMPARE = {"target_metadata": schema.metadata, "compare_type": _compare_type, "include_object": _include_object}


def _recorded_srid(conn: sa.Connection) -> int | None:
    if not conn.scalar(sa.text("select to_regclass('cim_meta') is not null")):
        return None
    value = conn.scalar(sa.text("select value from cim_meta where key = 'srid'"))
    return int(value) if value else None


def _config(conn: sa.Connection, srid: int) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    cfg.attributes["connection"] = conn
    cfg.attributes["srid"] = srid
    return cfg


def _run(engine: sa.Engine, fn, target: str, srid: int | None = None) -> None:
    wanted = srid or get_settings().srid
    with engine.begin() as conn:
        # One migrator at a time (several workers may start together).
        conn.execute(sa.text("select pg_advisory_xact_lock(7461001)"))
        recorded = _recorded_srid(conn)
        if recorded and wanted and recorded != wanted:
            raise DatabaseError(f"the database was created with storage CRS EPSG:{recorded}, "
                                f"but CIM_SRID asks for EPSG:{wanted}",
                                hint="unset CIM_SRID or use another database")
        srid = recorded or wanted or get_settings().default_srid
        try:
            conn.execute(sa.text("create extension if not exists postgis"))
        except sa.exc.DBAPIError as exc:
            raise DatabaseError(f"cannot enable PostGIS: {str(exc.orig).strip().splitlines()[0]}",
                                hint="install postgresql-15-postgis-3 on the database server") from None
        fn(_config(conn, srid), target)


def upgrade(engine: sa.Engine, target: str = "head", srid: int | None = None) -> None:
    """Migrate to `target`; a new schema gets storage CRS `srid` (else CIM_SRID, else the default)."""
    _run(engine, command.upgrade, target, srid)


def downgrade(engine: sa.Engine, target: str = "base") -> None:
    _run(engine, command.downgrade, target)


def current(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        if not conn.scalar(sa.text("select to_regclass('alembic_version') is not null")):
            return None
        return conn.scalar(sa.text("select version_num from alembic_version"))

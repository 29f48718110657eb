"""The schema is declared once (cim_core.schema): the migrations build exactly it, and a new column
reaches the bulk writer and the API without another edit."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import sqlalchemy as sa

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from cim_core import schema
from cim_core.migrate import COMPARE


def test_migrations_build_the_declared_schema(db):
    opts = {k: v for k, v in COMPARE.items() if k != "target_metadata"}
    with db.connect() as c, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reflection does not know PostGIS's geometry type
        diffs = compare_metadata(MigrationContext.configure(c, opts=opts), COMPARE["target_metadata"])
    assert diffs == []


# Run in a child process: the declared schema is changed in memory, as one edit to cim_core/schema.py would.
NEW_COLUMN = textwrap.dedent("""
    import dataclasses, sys
    import numpy as np
    import sqlalchemy as sa
    from alembic.migration import MigrationContext
    from alembic.operations import Operations
    from fastapi.testclient import TestClient

    from cim_core import schema, store
    from cim_core.model import CityObject, DatasetInfo, PipeSegment

    # the one edit: a column in the declared schema
    schema.pipe_segments.append_column(sa.Column("condition_grade", sa.SmallInteger))
    import importlib; importlib.reload(store)
    # a throwaway migration adding it to the database
    engine = sa.create_engine(sys.argv[1])
    with engine.begin() as c:
        Operations(MigrationContext.configure(c)).add_column(
            "pipe_segments", sa.Column("condition_grade", sa.SmallInteger))

    @dataclasses.dataclass(slots=True)
    class GradedSegment(PipeSegment):
        condition_grade: int | None = None

    line = np.array([[500000.0, 3650000.0, 50.0], [500030.0, 3650000.0, 49.8]])
    seg = CityObject("s1", "pipe_segment", pipe=GradedSegment("sewage", line, diameter_mm=400, condition_grade=3))
    store.write_dataset(DatasetInfo("graded", "test", "graded.gpkg", "x"), [seg], engine=engine)
    with engine.connect() as c:
        print("stored", c.scalar(sa.text("select condition_grade from pipe_segments")))

    from services.app import create_app
    from services.auth import create_key
    _, key = create_key("utilities", engine=engine)
    client = TestClient(create_app())
    doc = client.get("/api/collections/pipes_sewage/items", headers={"X-API-Key": key}).json()
    print("api", doc["features"][0]["properties"]["condition_grade"])
    q = client.get("/api/collections/pipes_sewage/queryables", headers={"X-API-Key": key}).json()
    print("queryable", q["properties"]["condition_grade"]["type"])
""")


def test_a_new_column_reaches_writer_and_api(cli_env):
    out = subprocess.run([sys.executable, "-c", NEW_COLUMN, cli_env["CIM_DATABASE_URL"]], env=cli_env,
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split("\n")[:3] == ["stored 3", "api 3", "queryable integer"]


def test_every_foreign_key_is_indexed():
    """Deleting a dataset cascades through every foreign key to its objects; a key without an index on its
    referencing column makes that a scan of the whole table per deleted object (minutes for 100k objects)."""
    unindexed = []
    for table in schema.metadata.tables.values():
        leading = {tuple(c.name for c in index.columns)[0] for index in table.indexes}
        leading |= {table.primary_key.columns.values()[0].name} if table.primary_key.columns else set()
        leading |= {tuple(u.columns.keys())[0] for u in table.constraints if isinstance(u, sa.UniqueConstraint)}
        for fk in table.foreign_keys:
            if fk.parent.name not in leading and fk.column.table.name in ("city_objects", "datasets"):
                unindexed.append(f"{table.name}.{fk.parent.name}")
    assert not unindexed, unindexed

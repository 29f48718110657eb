"""The embedded cluster, migrations, the storage CRS, and the `cim` command's database handling."""
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa
from pyproj import CRS

from cim_core import crs as ccrs
from cim_core.db import Embedded
from cim_core.errors import DatabaseError, GeoreferenceError
from cim_core.migrate import current, downgrade, upgrade

CIM = [sys.executable, "-m", "services.cli"]


def tables(engine):
    with engine.connect() as c:
        return set(c.scalars(sa.text("select tablename from pg_tables where schemaname = 'public'")))


def test_migrations_up_down_up(db):
    assert current(db) is not None
    assert {"datasets", "city_objects", "pipe_segments", "pipe_nodes", "cim_meta"} <= tables(db)
    downgrade(db, "base")
    assert current(db) is None
    assert not {"datasets", "city_objects", "pipe_segments"} & tables(db)
    upgrade(db, srid=4547)
    assert {"datasets", "city_objects", "pipe_segments"} <= tables(db)


def test_storage_srid_is_recorded_and_kept(make_db):
    engine = make_db(25832)
    with engine.connect() as c:
        assert c.scalar(sa.text("select value from cim_meta where key = 'srid'")) == "25832"
        assert c.scalar(sa.text("select find_srid('public', 'city_objects', 'footprint')")) == 25832
    with pytest.raises(DatabaseError, match="created with storage CRS EPSG:25832"):
        upgrade(engine, srid=4547)


def test_embedded_cluster_starts_once(tmp_path):
    emb = Embedded(tmp_path / "home")
    try:
        assert emb.start() is True
        assert emb.running()
        assert emb.start() is False  # a second start is a no-op
        with sa.create_engine(emb.url()).connect() as c:
            assert c.scalar(sa.text("select current_database()")) == "cim"
    finally:
        emb.stop()
    assert not emb.running()


def test_cli_db_commands(tmp_path):
    env = {**os.environ, "CIM_HOME": str(tmp_path / "home")}
    env.pop("CIM_DATABASE_URL", None)
    run = lambda *a: subprocess.run(CIM + list(a), env=env, capture_output=True, text=True)  # noqa: E731
    try:
        assert run("db", "status").returncode != 0
        assert run("db", "start").returncode == 0
        st = run("db", "status")
        assert st.returncode == 0 and "PostGIS 3." in st.stdout and "PostgreSQL 15" in st.stdout
        url = run("db", "url").stdout.strip()
        out = subprocess.run(["psql", url, "-Atc", "select postgis_lib_version()"], capture_output=True, text=True)
        assert out.stdout.startswith("3.")
        ds = run("datasets")
        assert ds.returncode == 0 and "no datasets" in ds.stdout
    finally:
        run("db", "stop")


def test_bad_database_url_gives_one_line_without_password():
    env = {**os.environ, "CIM_DATABASE_URL": "postgresql://alice:s3cret@127.0.0.1:1/nowhere"}
    proc = subprocess.run(CIM + ["datasets"], env=env, capture_output=True, text=True)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "127.0.0.1:1" in lines[0] and "s3cret" not in lines[0] and "Traceback" not in proc.stderr


def test_crs_parsing_and_axis_order():
    assert ccrs.parse_crs("EPSG:4547") == CRS.from_epsg(4547)
    assert ccrs.parse_crs("4490") == CRS.from_epsg(4490)
    assert ccrs.parse_crs("http://www.opengis.net/def/crs/EPSG/0/4526") == CRS.from_epsg(4526)
    # CGCS2000 geographic is latitude first officially; our transforms take (lon, lat).
    x, y = ccrs.transform(4490, 4547, [114.0], [33.0])
    assert abs(x[0] - 500000) < 1 and 3_600_000 < y[0] < 3_700_000
    # The zone-prefixed 3-degree CRS (EPSG:4526, zone 38 at 114E) differs only by the false easting prefix.
    x2, _ = ccrs.transform(4490, 4526, [114.0], [33.0])
    assert abs(x2[0] - 38_500_000) < 1
    ecef = ccrs.to_ecef(4547, [[500000.0, y[0], 0.0]])
    assert abs((ecef ** 2).sum() ** 0.5 - 6_371_000) < 20_000


def test_source_outside_area_of_use_is_refused():
    lonlat_as_projected = (114.0, 32.9, 114.1, 33.0)
    with pytest.raises(GeoreferenceError, match="longitude/latitude"):
        ccrs.check_extent("roads.geojson", CRS.from_epsg(4547), lonlat_as_projected, 4547)
    with pytest.raises(GeoreferenceError, match="EPSG:25832"):
        ccrs.check_extent("karlsruhe.gpkg", CRS.from_epsg(4326), (8.4, 49.0, 8.5, 49.1), 4547)
    ccrs.check_extent("zhumadian.gpkg", CRS.from_epsg(4490), (113.9, 32.9, 114.1, 33.1), 4547)
    assert ccrs.suggest_crs(114.02, 32.98) == "EPSG:4547"


def test_help_lists_commands_with_examples():
    out = subprocess.run(CIM + ["--help"], capture_output=True, text=True).stdout
    for cmd in ("db", "datasets", "import", "tiles", "sample"):
        assert cmd in out
    assert "Example" in out

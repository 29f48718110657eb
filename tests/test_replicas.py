"""Read scale-out: the API reads from real streaming replicas of the embedded cluster (pg_basebackup -R and
a postmaster of their own) and writes to the primary; reads go on while the primary is down."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa
from conftest import DATA
from fastapi.testclient import TestClient
from test_api import buildings, info, pipes

from cim_core import db as cdb
from cim_core.db import free_port
from cim_core.migrate import upgrade
from cim_core.settings import get_settings
from cim_core.store import write_dataset
from importers import gis
from services import auth
from services.app import create_app

WUHAN = DATA / "wuhan_osm_buildings.geojson"  # 241 buildings




def count(client: TestClient, collection: str = "buildings", **headers) -> int:
    r = client.get(f"/api/collections/{collection}/items?limit=1&count=true", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["numberMatched"]


def eventually(check, seconds: float = 30.0):
    """Poll until `check()` is truthy (a replica replays the primary's WAL a moment later)."""
    deadline = time.monotonic() + seconds
    while not (found := check()):
        assert time.monotonic() < deadline, "the replica did not catch up"
        time.sleep(0.1)
    return found


def served_by(engine: sa.Engine) -> tuple[bool, int]:
    with engine.connect() as c:
        return tuple(c.execute(sa.text("select pg_is_in_recovery(), inet_server_port()")).one())


@pytest.fixture
def clusters(tmp_path):
    """A primary with the access tables and a few datasets, and two streaming replicas of it, all running."""
    primary = cdb.Embedded(tmp_path / "primary")
    made = [primary]
    engine = None
    try:
        primary.start()
        engine = sa.create_engine(primary.url())
        upgrade(engine, srid=4547)
        write_dataset(info("blocks"), buildings(20), engine=engine)
        write_dataset(info("network"), pipes(), engine=engine)
        for name in ("replica1", "replica2"):
            made.append(primary.make_standby(tmp_path / name))
            made[-1].start()
        yield engine, *made
    finally:
        if engine is not None:
            engine.dispose()
        for emb in reversed(made):
            emb.stop()
            shutil.rmtree(emb.pgdata.resolve(), ignore_errors=True)


def test_connections_rotate_over_replicas_and_fall_back(clusters):
    _, primary, r1, r2 = clusters
    dead = f"postgresql://cim@127.0.0.1:{free_port()}/cim"
    connect = cdb.ReadConnector([dead, r1.url(), r2.url()], primary.url())
    ports = []
    for _ in range(6):
        conn = connect()
        ports.append(conn.execute("select inet_server_port()").fetchone()[0])
        conn.close()
    assert set(ports) == {r1.port, r2.port} and abs(ports.count(r1.port) - ports.count(r2.port)) <= 1
    conn = cdb.ReadConnector([dead], primary.url())()  # no replica answers: the primary serves
    assert conn.execute("select pg_is_in_recovery()").fetchone()[0] is False
    conn.close()


def test_api_reads_replicas_writes_primary_and_survives_the_primary(clusters, monkeypatch, tmp_path, caplog):
    primary_engine, primary, r1, r2 = clusters
    dead = f"postgresql://cim@127.0.0.1:{free_port()}/cim"  # a replica that is down from the start
    monkeypatch.setenv("CIM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CIM_DATABASE_URL", primary.url())
    monkeypatch.setenv("CIM_DATABASE_READ_URLS", f"{dead}, {r1.url()},{r2.url()}")
    get_settings.cache_clear()
    with TestClient(create_app()) as client:
        assert {served_by(auth.current_engine()) for _ in range(4)} <= {(True, r1.port), (True, r2.port)}
        assert count(client) == 20
        # a new import through the primary shows in the API once the replicas replayed it
        assert gis.import_file(WUHAN, dataset="wuhan").counts == {"building": 241}
        eventually(lambda: count(client) == 261)
        # the API's writes (key use, audit rows) go to the primary: a replica would refuse them
        key_id, key = auth.create_key("utilities", engine=primary_engine)
        late_id, late = auth.create_key("public", engine=primary_engine)  # first used with the primary down
        with auth.current_engine().connect() as c:
            eventually(lambda: c.scalar(sa.text("select count(*) from api_keys where id in (:a, :b)"),
                                        {"a": key_id, "b": late_id}) == 2)
        r = client.get("/api/collections/pipes_water/items", headers={"X-API-Key": key})
        assert r.status_code == 200 and len(r.json()["features"]) == 2
        with primary_engine.connect() as c:
            used = c.scalar(sa.text("select last_used_at from api_keys where id = :i"), {"i": key_id})
            audited = c.scalar(sa.text("select count(*) from audit_log where key_id = :i and layer = 'pipes_water' "
                                       "and status = 200"), {"i": key_id})
        assert used is not None and audited == 1

        primary.stop()
        assert count(client) == 261  # reads go on
        assert count(client, **{"X-API-Key": late}) == 261  # served; its use cannot be recorded
        assert f"key {late_id}: last use not recorded" in caplog.text
        assert client.get("/api/collections/pipes_gas/items").status_code == 401  # refusals still answer
        # a restricted read that cannot be audited is refused, without naming the database
        r = client.get("/api/collections/pipes_water/items", headers={"X-API-Key": key})
        assert r.status_code == 503 and r.headers["content-type"].startswith("application/problem+json")
        assert str(primary.port) not in r.text
    # writes fail with one line
    env = {**os.environ, "CIM_DATABASE_URL": primary.url(), "CIM_DATABASE_READ_URLS": r1.url()}
    proc = subprocess.run([sys.executable, "-m", "services.cli", "import", "gis", str(WUHAN), "--dataset", "x"],
                          env=env, capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "cannot connect" in proc.stderr, proc.stderr

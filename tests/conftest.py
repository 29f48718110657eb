"""Fixtures: one embedded PostGIS cluster per test session, a fresh database per test that asks."""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from cim_core import db as cdb
from cim_core.migrate import upgrade
from cim_core.settings import get_settings

DATA = Path(__file__).parent / "data"
ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory) -> cdb.Embedded:
    """The product's own embedded cluster, in a temporary CIM_HOME."""
    home = tmp_path_factory.mktemp("cim_home")
    emb = cdb.Embedded(home)
    emb.start()
    yield emb
    emb.stop()
    shutil.rmtree(emb.pgdata.resolve(), ignore_errors=True)


def new_database(cluster: cdb.Embedded) -> str:
    name = "t_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(cluster.url().rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'create database "{name}"'))
    admin.dispose()
    return cluster.url().rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def make_db(cluster, monkeypatch):
    """make_db(srid=4547) -> a migrated engine on a new database, also set as CIM_DATABASE_URL."""
    engines = []

    def make(srid: int = 4547) -> sa.Engine:
        url = new_database(cluster)
        engine = sa.create_engine(url)
        upgrade(engine, srid=srid)
        monkeypatch.setenv("CIM_DATABASE_URL", url)
        monkeypatch.delenv("CIM_SRID", raising=False)
        get_settings.cache_clear()
        engines.append(engine)
        return engine

    yield make
    for e in engines:
        e.dispose()
    cdb.dispose_engines()  # the engines the code under test opened on this test's database
    get_settings.cache_clear()


@pytest.fixture
def db(make_db) -> sa.Engine:
    """A fresh database in the default storage CRS, EPSG:4547."""
    return make_db(4547)


@pytest.fixture
def cli_env(db) -> dict[str, str]:
    """Environment for running `cim` in a subprocess against the test database."""
    return {**os.environ, "CIM_DATABASE_URL": db.url.render_as_string(hide_password=False)}


@pytest.fixture
def mosquitto(tmp_path, monkeypatch):
    """A real Mosquitto on a free local port in a temporary folder, also set as CIM_MQTT_URL."""
    from services.monitor.broker import Broker

    broker = Broker(tmp_path / "mosquitto")
    broker.start()
    monkeypatch.setenv("CIM_MQTT_URL", broker.url())
    get_settings.cache_clear()
    yield broker
    broker.stop()
    get_settings.cache_clear()


@pytest.fixture
def own_cluster(tmp_path):
    """(cluster, engine): a migrated cluster of the test's own, for tests that stop and start the database
    (so that no other test is disturbed); its CIM_HOME is tmp_path / "home"."""
    emb = cdb.Embedded(tmp_path / "home")
    emb.start()
    engine = sa.create_engine(emb.url())
    upgrade(engine, srid=4547)
    yield emb, engine
    engine.dispose()
    emb.stop()

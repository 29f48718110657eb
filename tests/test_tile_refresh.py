"""The tile cache under N worker processes (issue 12): one builder at a time (a PostgreSQL advisory lock),
the other processes keep serving the previous files meanwhile, and no reader ever sees half a file."""
from __future__ import annotations

import json
import multiprocessing as mp
import queue
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from test_tiles import SMALL, buildings, check_tileset, pipes

from cim_core.settings import get_settings

WAIT_S = 120  # generous: the machine is shared; nothing here is a timing assertion


@pytest.fixture
def home(db, tmp_path, monkeypatch):
    monkeypatch.setenv("CIM_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    from services.tiles import service
    service.reset()
    monkeypatch.setattr(service, "OPTIONS", SMALL)
    yield tmp_path / "home"
    service.reset()


def _client():
    from services.tiles import service
    app = FastAPI()
    app.include_router(service.router)
    return TestClient(app)


def _version(resp) -> str:
    assert resp.status_code == 200, resp.text
    return resp.json()["asset"]["tilesetVersion"]


def test_a_process_finding_the_builder_lock_taken_serves_the_previous_files(db, home):
    from services.tiles import service
    buildings(n=20, engine=db)
    client = _client()
    before = _version(client.get("/tiles/tileset.json"))
    pipes(engine=db)  # the cache is now stale
    with db.connect().execution_options(isolation_level="AUTOCOMMIT") as other:  # another process's builder
        assert other.scalar(sa.text("select pg_try_advisory_lock(:k)"), {"k": service.lock_key(service.cache_dir())})
        service.reset_clock()
        assert service.refresh() is None  # returns at once: no waiting for the other builder
        service.reset_clock()
        assert _version(client.get("/tiles/tileset.json")) == before
        assert client.get("/tiles/buildings/tileset.json").status_code == 200
        other.execute(sa.text("select pg_advisory_unlock_all()"))
    service.reset_clock()
    after = _version(client.get("/tiles/tileset.json"))
    assert int(after) > int(before)
    assert "pipes" in {la["name"] for la in json.loads((home / "tiles" / "tileset.json").read_text())["extras"]["layers"]}


def _worker(name: str, events: mp.Queue, release) -> None:
    """One `cim serve` worker's view: GET the root tileset (which refreshes the cache). A build this process
    starts waits (holding the builder lock) until the test releases it: the other worker must answer
    meanwhile, with the previous files."""
    from services.tiles import builder, service
    service.OPTIONS = SMALL
    real = builder.build

    def held_build(*args, **kwargs):
        events.put((name, "built", None))
        release.wait(WAIT_S)
        return real(*args, **kwargs)

    service.build = held_build
    resp = _client().get("/tiles/tileset.json")
    events.put((name, "served", resp.json()["asset"]["tilesetVersion"] if resp.status_code == 200 else resp.text))


def _reader(folder: str, stop, out: mp.Queue) -> None:
    """Read every file of the cache again and again; report any that is not whole."""
    bad, reads = [], 0
    while not stop.is_set():
        for p in Path(folder).rglob("*"):
            if not p.is_file() or ".tmp" in p.name:
                continue
            try:
                data = p.read_bytes()
            except FileNotFoundError:  # a stale tile removed by the build
                continue
            reads += 1
            if p.suffix == ".json":
                try:
                    json.loads(data)
                except ValueError:
                    bad.append(str(p))
            elif p.suffix == ".glb" and (data[:4] != b"glTF" or int.from_bytes(data[8:12], "little") != len(data)):
                bad.append(str(p))
    out.put((bad, reads))


def test_two_processes_refresh_at_once_one_builds_the_other_serves(db, home):
    buildings(n=60, engine=db)
    client = _client()
    before = _version(client.get("/tiles/tileset.json"))
    buildings(n=30, name="more", engine=db)
    pipes(engine=db)
    ctx = mp.get_context("spawn")
    events, done = ctx.Queue(), ctx.Queue()
    release, stop = ctx.Event(), ctx.Event()
    reader = ctx.Process(target=_reader, args=(str(home / "tiles"), stop, done))
    workers = [ctx.Process(target=_worker, args=(n, events, release)) for n in ("a", "b")]
    reader.start()
    for w in workers:
        w.start()
    seen = []
    try:
        while len([e for e in seen if e[1] == "served"]) < 2:
            seen.append(events.get(timeout=WAIT_S))
            if seen[-1][1] == "served":
                release.set()  # the first answer came while the build was held
    except queue.Empty:
        pytest.fail(f"the workers did not both answer; events: {seen}")
    finally:
        release.set()
        for w in workers:
            w.join(WAIT_S)
        stop.set()
        bad, reads = done.get(timeout=WAIT_S)
        reader.join(WAIT_S)
    built = [name for name, what, _ in seen if what == "built"]
    served = [(name, version) for name, what, version in seen if what == "served"]
    assert len(built) == 1, seen
    builder = built[0]
    (first, first_version), (second, second_version) = served
    assert first != builder and first_version == before  # the other worker answered with the previous files
    assert second == builder and int(second_version) > int(before)
    assert bad == [] and reads > 0
    check_tileset(home / "tiles" / "tileset.json")

"""The bulk write path: counts, atomic replace, and imports that fail or are killed."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import shapely
import sqlalchemy as sa

from cim_core.errors import InputError
from cim_core.model import CityObject, DatasetInfo, Mesh, PipeNode, PipeSegment, QAFinding
from cim_core.store import list_datasets, remove_dataset, write_dataset

X0, Y0 = 501800.0, 3649500.0  # near 114.02E 32.98N in EPSG:4547


def box_objects(n, prefix="b", height=10.0):
    for i in range(n):
        x, y = X0 + (i % 100) * 20, Y0 + (i // 100) * 20
        fp = shapely.box(x, y, x + 10, y + 10)
        v = np.array([[x, y, 0], [x + 10, y, 0], [x + 10, y + 10, 0], [x, y + 10, 0]], float)
        v = np.vstack([v, v + [0, 0, height]])
        f = np.array([[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7]])
        yield CityObject(key=f"{prefix}{i}", cls="building", uid=f"{prefix}{i}", name=f"楼 {i}",
                         attributes={"height": height, "floors": 3}, footprint=fp, mesh=Mesh(v, f))


def info(name="blocks", sha="abc"):
    return DatasetInfo(name=name, kind="test", source_path="/dev/null", sha256=sha, source_crs="EPSG:4547")


def count(engine, sql):
    with engine.connect() as c:
        return c.scalar(sa.text(sql))


def test_write_and_read_back(db):
    res = write_dataset(info(), box_objects(12000), engine=db)
    assert res.counts == {"building": 12000}
    assert count(db, "select count(*) from city_objects") == 12000
    with db.connect() as c:
        row = c.execute(sa.text("select name, attributes, zmin, zmax, st_area(footprint), mesh_vertices "
                                "from city_objects where key = 'b5'")).one()
    assert row[0] == "楼 5" and row[1] == {"height": 10.0, "floors": 3}
    assert (row[2], row[3], row[4]) == (0.0, 10.0, 100.0)
    assert np.frombuffer(row[5], "<f8").reshape(-1, 3).shape == (8, 3)
    assert [d["name"] for d in list_datasets(db)] == ["blocks"]


def analyzed(engine, table):
    """(times ANALYZE was run on the table by a command, not by autovacuum; its row estimate)"""
    with engine.connect() as c:
        return tuple(c.execute(sa.text("select s.analyze_count, c.reltuples from pg_stat_user_tables s "
                                       "join pg_class c on c.oid = s.relid where s.relname = :t"), {"t": table}).one())


def test_import_of_many_rows_analyzes_the_tables_it_filled(db):
    assert analyzed(db, "city_objects") == (0, -1)  # never analyzed
    write_dataset(info(), box_objects(1500), engine=db)
    assert analyzed(db, "city_objects") == (1, 1500)  # the planner knows the rows at once
    with db.connect() as c:  # footprint_3857 is never searched: no statistics (migration 0013)
        assert set(c.scalars(sa.text("select attname from pg_stats where tablename = 'city_objects' "
                                     "and attname like 'footprint%'"))) == {"footprint"}
    assert analyzed(db, "pipe_segments")[0] == 0  # nothing written there
    write_dataset(info("few"), box_objects(100, prefix="f"), engine=db)  # under ANALYZE_MIN_ROWS
    assert analyzed(db, "city_objects") == (1, 1500)
    write_dataset(info(), box_objects(1200), engine=db)  # replaced: 1,200 rows, over 10% of 1,500
    assert analyzed(db, "city_objects") == (2, 1300)


def test_tree_and_pipes_with_forward_references(db):
    objs = [
        CityObject(key="storey1", cls="storey", parent="bldg"),  # parent comes later
        CityObject(key="bldg", cls="building"),
        CityObject(key="p1", cls="pipe_segment", pipe=PipeSegment(
            utility="water", centerline=np.array([[X0, Y0, -1.5], [X0 + 30, Y0, -1.5]]),
            diameter_mm=300, from_node="n1", to_node="n2")),
        CityObject(key="n1", cls="pipe_node", node=PipeNode("water", "valve", (X0, Y0, 0.0), depth=1.5)),
        CityObject(key="n2", cls="pipe_node", node=PipeNode("water", "hydrant", (X0 + 30, Y0, 0.0), depth=1.5)),
    ]
    write_dataset(info("net"), objs, [QAFinding("dangling_end", "test", "n2", (X0 + 30, Y0))], engine=db)
    with db.connect() as c:
        assert c.scalar(sa.text("select p.key from city_objects s join city_objects p on p.id = s.parent_id "
                                "where s.key = 'storey1'")) == "bldg"
        length, fk = c.execute(sa.text("select length_m, (select key from city_objects where id = from_node) "
                                       "from pipe_segments")).one()
        assert length == pytest.approx(30.0) and fk == "n1"
        assert c.scalar(sa.text("select count(*) from qa_findings")) == 1


def test_missing_reference_writes_nothing(db):
    objs = [CityObject(key="s", cls="storey", parent="nowhere")]
    with pytest.raises(InputError, match="missing"):
        write_dataset(info("bad"), objs, engine=db)
    assert count(db, "select count(*) from datasets") == 0
    assert count(db, "select count(*) from city_objects") == 0


def test_replace_is_atomic_and_never_duplicates(db):
    write_dataset(info(), box_objects(100), engine=db)
    write_dataset(info(), box_objects(40), engine=db)
    assert count(db, "select count(*) from city_objects") == 40
    assert count(db, "select count(*) from datasets") == 1

    def failing():
        yield from box_objects(30)
        raise RuntimeError("source broke mid-way")

    with pytest.raises(RuntimeError):
        write_dataset(info(), failing(), engine=db)
    assert count(db, "select count(*) from city_objects") == 40
    remove_dataset("blocks", engine=db)
    assert count(db, "select count(*) from city_objects") == 0
    assert count(db, "select count(*) from change_log") == 3  # two writes that landed and one removal


def test_failures_while_a_batch_is_being_copied_leave_the_previous_version(db):
    """Batches are COPYed by a thread while the next one is built: a source that breaks, a duplicate key, or
    a row the server refuses, in a later batch, still leave the old version whole."""
    write_dataset(info(), box_objects(40), engine=db)

    def broken():
        yield from box_objects(7000, prefix="new")  # the first batch is in the COPY when this breaks
        raise RuntimeError("source broke mid-way")

    def duplicated():
        yield from box_objects(6000, prefix="new")
        yield next(box_objects(1, prefix="new"))  # key new0 again, in the second batch

    def refused():
        yield from box_objects(6000, prefix="new")
        yield CityObject(key="classless", cls=None)  # class is not null: the server refuses the row

    for source, error in ((broken(), RuntimeError), (duplicated(), InputError), (refused(), Exception)):
        with pytest.raises(error):
            write_dataset(info(), source, engine=db)
        assert count(db, "select count(*) from city_objects") == 40
        assert count(db, "select count(*) from city_objects where key like 'new%'") == 0
    objs = list(box_objects(5))
    with pytest.raises(InputError, match="duplicate object key 'b3'"):  # within one batch
        write_dataset(info("dup"), [*objs, objs[3]], engine=db)
    assert write_dataset(info(), box_objects(6000), engine=db).counts == {"building": 6000}


def test_killed_import_leaves_previous_version(db, tmp_path):
    write_dataset(info(), box_objects(500), engine=db)
    flag = tmp_path / "writing"
    script = textwrap.dedent(f"""
        import time, sys
        sys.path.insert(0, {os.getcwd()!r})
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_store import box_objects, info
        from cim_core.store import write_dataset
        import sqlalchemy as sa
        def slow():
            for i, o in enumerate(box_objects(100000, prefix="new")):
                if i == 20000:
                    open({str(flag)!r}, "w").close()
                    time.sleep(60)
                yield o
        write_dataset(info(), slow(), engine=sa.create_engine({db.url.render_as_string(hide_password=False)!r}))
    """)
    child = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.time() + 60
    while not flag.exists() and time.time() < deadline and child.poll() is None:
        time.sleep(0.1)
    assert flag.exists(), "the child never reached the middle of its import"
    # The child has written 20,000 new rows in its open transaction; kill it hard.
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    time.sleep(0.5)
    assert count(db, "select count(*) from city_objects") == 500
    assert count(db, "select count(*) from city_objects where key like 'new%'") == 0
    assert count(db, "select status from datasets") == "complete"

"""The one bulk write path: a dataset's objects go in with COPY inside one transaction.

Writing a dataset whose name exists replaces it atomically: readers see the old version until
the commit, and an import that fails or is killed leaves the old version as it was.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
import orjson
import shapely
import sqlalchemy as sa
from psycopg.types.json import Jsonb
from psycopg.types.string import BytesBinaryDumper

from . import scenarios, schema
from .db import get_engine, storage_srid
from .errors import InputError, NotFoundError
from .model import CityObject, DatasetInfo, QAFinding

BATCH = 5000
# ANALYZE the tables an import filled when it wrote more than this share of a table's rows (as last
# counted by ANALYZE or VACUUM, pg_class.reltuples): the autovacuum daemon's own default,
# autovacuum_analyze_scale_factor = 0.1 (PostgreSQL 15 manual 25.1.6), but at once, not up to a
# minute later (autovacuum_naptime), as the manual advises after a bulk load (14.4.9 "Run ANALYZE
# Afterwards"): the planner's estimates of a table just filled are wrong until then (the excavation's
# p95 at scale 30 was 57 ms right after an import, 32 ms after ANALYZE). Below ANALYZE_MIN_ROWS the
# autovacuum daemon's later run is soon enough (bench/gis_import.py measures the cost).
ANALYZE_SHARE = 0.1
ANALYZE_MIN_ROWS = 1000


def _copy_columns(table, skip: tuple[str, ...] = ()) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(columns, COPY types) of a table, its jsonb columns sent as bytea: _jsonb encodes their values."""
    cols, types = schema.copy_columns(table, skip)
    return cols, tuple("bytea" if t == "jsonb" else t for t in types)


OBJECT_COLUMNS, OBJECT_TYPES = _copy_columns(schema.city_objects)
SEGMENT_COLUMNS, SEGMENT_TYPES = _copy_columns(schema.pipe_segments)
NODE_COLUMNS, NODE_TYPES = _copy_columns(schema.pipe_nodes)
FINDING_COLUMNS, FINDING_TYPES = _copy_columns(schema.qa_findings, skip=("id",))
# Record attributes whose name differs from their column's; every other column is read from the
# record's attribute of the same name, so a new column needs no edit here.
RENAMED = {"class": "cls"}


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return None if not np.isfinite(o) else float(o)
    if isinstance(o, (dt.date, dt.datetime)):
        return o.isoformat()
    if isinstance(o, bytes):
        return o.decode("utf-8", "replace")
    raise TypeError


class _Json(Jsonb):
    pass


def dumps(obj) -> bytes:
    return orjson.dumps(obj, default=_json_default, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def _jsonb(obj) -> bytes:
    """A jsonb value in a binary COPY, as PostgreSQL's jsonb_recv reads it: version 1, then the JSON text.
    COPY hands a field's bytes to the column's own receive function whatever type the client named, and
    this takes half the client CPU of psycopg's Jsonb dumper (0.075 against 0.15 s for 105,000 values)."""
    return b"\x01" + dumps(obj)


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class WriteResult:
    dataset_id: int
    name: str
    counts: dict[str, int] = field(default_factory=dict)
    replaced: bool = False


class _Ids:
    """Database ids for dataset-local keys, reserved from the sequence in blocks.

    A key may be referenced (as parent or pipe node) before its object arrives; every referenced
    key must be defined by the end of the dataset.
    """

    def __init__(self, cur):
        self.cur, self.pool, self.ids, self.defined = cur, [], {}, set()

    def reserve(self, n: int) -> None:
        """Have n ids at hand; called before a COPY, during which no other query may run."""
        if len(self.pool) < n:
            self.cur.execute("select nextval('city_objects_id_seq') from generate_series(1, %s)",
                             (n - len(self.pool),))
            self.pool[:0] = [r[0] for r in self.cur.fetchall()][::-1]

    def __call__(self, key: str) -> int:
        i = self.ids.get(key)
        if i is None:
            i = self.ids[key] = self.pool.pop()
        return i

    def define(self, keys: list[str]) -> list[int]:
        """The ids of a batch of objects' own keys."""
        new = set(keys)
        if len(new) < len(keys) or not self.defined.isdisjoint(new):
            seen = set(self.defined)
            dup = next(k for k in keys if k in seen or seen.add(k))
            raise InputError(f"duplicate object key {dup!r} in one dataset")
        self.defined |= new
        return [self(k) for k in keys]

    def undefined(self) -> list[str]:
        return [k for k in self.ids if k not in self.defined]


def _ewkb(geoms: list, srid: int) -> list[bytes | None]:
    arr = np.array(geoms, dtype=object)
    out: list[bytes | None] = [None] * len(geoms)
    mask = np.array([g is not None for g in geoms], bool)
    if mask.any():
        wkb = shapely.to_wkb(shapely.set_srid(arr[mask], srid), include_srid=True)
        for i, w in zip(np.flatnonzero(mask), wkb):
            out[i] = w
    return out


def _footprint(o: CityObject):
    """The stored 2D footprint: the object's own, else its mesh's box, node point or pipe line."""
    if o.footprint is not None:
        return o.footprint
    if o.mesh is not None and len(o.mesh.vertices):
        v = o.mesh.vertices
        return shapely.box(v[:, 0].min(), v[:, 1].min(), v[:, 0].max(), v[:, 1].max())
    if o.node is not None:
        return shapely.Point(o.node.point[0], o.node.point[1])
    if o.pipe is not None:
        return shapely.LineString(o.pipe.centerline[:, :2])
    return None


def _object_rows(batch: list[CityObject], dataset_id: int, ids: _Ids, srid: int):
    """The COPY rows of a batch, built column by column (a comprehension per column, zip to rows)."""
    keys = [o.key for o in batch]
    if None in keys:
        raise InputError("an object has no key")
    meshes = [o.mesh if o.mesh is not None and len(o.mesh.vertices) else None for o in batch]
    derived = {
        "id": ids.define(keys), "dataset_id": [dataset_id] * len(batch),
        "parent_id": [ids(o.parent) if o.parent is not None else None for o in batch],
        "attributes": [_jsonb(o.attributes) for o in batch],
        "footprint": _ewkb([_footprint(o) for o in batch], srid),
        "zmin": [o.zmin if o.zmin is not None or m is None else float(m.vertices[:, 2].min())
                 for o, m in zip(batch, meshes)],
        "zmax": [o.zmax if o.zmax is not None or m is None else float(m.vertices[:, 2].max())
                 for o, m in zip(batch, meshes)],
        "mesh_vertices": [o.mesh.vertices.tobytes() if o.mesh is not None else None for o in batch],
        "mesh_faces": [o.mesh.faces.tobytes() if o.mesh is not None else None for o in batch],
        "mesh_face_materials": [o.mesh.face_materials.tobytes()
                                if o.mesh is not None and o.mesh.face_materials is not None else None
                                for o in batch],
        "materials": [_jsonb(o.mesh.materials) if o.mesh is not None and o.mesh.materials is not None else None
                      for o in batch],
    }
    return _rows(batch, OBJECT_COLUMNS, derived)


def _rows(records: list, columns: tuple[str, ...], derived: dict[str, list]):
    """COPY rows built column by column: a derived column's values, else each record's attribute of the
    column's name (RENAMED), zipped into rows."""
    return zip(*(derived[c] if c in derived else [getattr(r, RENAMED.get(c, c), None) for r in records]
                 for c in columns))


def _segment_rows(segs: list[CityObject], ids: _Ids, srid: int):
    pipes = [o.pipe for o in segs]
    return _rows(pipes, SEGMENT_COLUMNS, {
        "object_id": [ids(o.key) for o in segs],
        "from_node": [ids(p.from_node) if p.from_node is not None else None for p in pipes],
        "to_node": [ids(p.to_node) if p.to_node is not None else None for p in pipes],
        "length_m": [float(np.linalg.norm(np.diff(p.centerline, axis=0), axis=1).sum()) for p in pipes],
        "centerline": [_linez_ewkb(p.centerline, srid) for p in pipes]})


def _node_rows(nodes: list[CityObject], ids: _Ids, srid: int):
    return _rows([o.node for o in nodes], NODE_COLUMNS, {"object_id": [ids(o.key) for o in nodes],
                                                         "geom": [_pointz_ewkb(o.node.point, srid) for o in nodes]})


def _finding_rows(findings: list[QAFinding], dataset_id: int, object_ids: dict[str, int], srid: int):
    return _rows(findings, FINDING_COLUMNS, {
        "dataset_id": [dataset_id] * len(findings),
        "object_id": [object_ids.get(f.object_key) if f.object_key else None for f in findings],
        "details": [_jsonb(f.details) for f in findings],
        "geom": [_ewkb([shapely.Point(f.location)], srid)[0] if f.location else None for f in findings]})


def _linez_ewkb(xyz: np.ndarray, srid: int) -> bytes:
    return shapely.to_wkb(shapely.set_srid(shapely.linestrings(np.asarray(xyz, float)), srid),
                          include_srid=True, output_dimension=3)


def _pointz_ewkb(p, srid: int) -> bytes:
    return shapely.to_wkb(shapely.set_srid(shapely.points(np.asarray(p, float)), srid),
                          include_srid=True, output_dimension=3)


def _copy(cur, table: str, columns, types, rows) -> None:
    with cur.copy(f"copy {table} ({', '.join(columns)}) from stdin (format binary)") as cp:
        cp.set_types(types)
        for r in rows:
            cp.write_row(r)


def _batches(it: Iterable, n: int) -> Iterator[list]:
    it = iter(it)
    while chunk := list(islice(it, n)):
        yield chunk


def _replace_old(cur, info: DatasetInfo):
    """Delete the dataset of the same name (inside the transaction); its id, extent and classes."""
    cur.execute("select pg_advisory_xact_lock(hashtext(%s))", (info.name,))
    cur.execute("""select d.id, st_asbinary(st_envelope(st_extent(o.footprint))), d.scenario_id
                   from datasets d left join city_objects o on o.dataset_id = d.id
                   where d.name = %s group by d.id""", (info.name,))
    old = cur.fetchone()
    old_classes: list[str] = []
    if old:
        cur.execute("select distinct class from city_objects where dataset_id = %s", (old[0],))
        old_classes = [r[0] for r in cur.fetchall()]
        cur.execute("delete from datasets where id = %s", (old[0],))
    return old, old_classes


def _scenario_id(cur, info: DatasetInfo, old) -> int | None:
    """The dataset's scenario: the one named (created when missing), else the replaced dataset's, else as-is."""
    if info.scenario is None or scenarios.is_as_is(info.scenario):
        return old[2] if old and info.scenario is None else None
    scenarios.check_name(info.scenario)
    cur.execute("insert into scenarios (name, title) values (%s, %s) on conflict (name) do nothing",
                (info.scenario, info.scenario))
    cur.execute("select id from scenarios where name = %s", (info.scenario,))
    return cur.fetchone()[0]


def _need(batch: list[CityObject]) -> int:
    """The ids a batch may take: each object may bring its own key, a parent and two pipe nodes."""
    return sum(1 + (o.parent is not None) + (o.pipe is not None) * 2 for o in batch)


def _copy_batch(cur, tables: list[tuple[str, tuple, tuple, list]]) -> None:
    for table, columns, types, rows in tables:
        if rows:
            _copy(cur, table, columns, types, rows)


def _copy_objects(cur, objects: Iterable[CityObject], dataset_id: int, ids: _Ids, srid: int,
                  counts: dict[str, int], progress: Callable[[int], None] | None) -> dict[str, int]:
    """COPY the objects, their pipe nodes and segments; the number of rows written to each table.

    A thread COPYs each batch while this one builds the next batch's rows: the server's work on a batch
    (parsing, indexes, the foreign key checks at the end of each COPY) overlaps the client's on the next,
    instead of following it. No other query may run while a COPY does, so the ids of the next batch are
    reserved between two COPYs, one batch ahead."""
    rows = dict.fromkeys(("city_objects", "pipe_nodes", "pipe_segments"), 0)
    batches = _batches(objects, BATCH)
    batch = next(batches, None)
    if batch:
        ids.reserve(_need(batch))
    with ThreadPoolExecutor(1, thread_name_prefix="copy") as writer:
        copying: Future | None = None
        while batch:
            nodes = [o for o in batch if o.node is not None]
            segs = [o for o in batch if o.pipe is not None]
            tables = [
                ("city_objects", OBJECT_COLUMNS, OBJECT_TYPES, list(_object_rows(batch, dataset_id, ids, srid))),
                ("pipe_nodes", NODE_COLUMNS, NODE_TYPES, list(_node_rows(nodes, ids, srid))),
                ("pipe_segments", SEGMENT_COLUMNS, SEGMENT_TYPES, list(_segment_rows(segs, ids, srid)))]
            following = next(batches, None)
            if copying:
                copying.result()
            if following:
                ids.reserve(_need(following))
            copying = writer.submit(_copy_batch, cur, tables)
            for o in batch:
                counts[o.cls] = counts.get(o.cls, 0) + 1
            rows["city_objects"] += len(batch)
            rows["pipe_nodes"] += len(nodes)
            rows["pipe_segments"] += len(segs)
            if progress:
                progress(len(batch))
            batch = following
        if copying:
            copying.result()
    return rows


def _analyze(raw, rows: dict[str, int]) -> None:
    """ANALYZE (after the import's commit) the tables that got many rows (ANALYZE_SHARE)."""
    with raw.driver_connection.cursor() as cur:
        cur.execute("select relname, reltuples from pg_class where oid = any(%s::regclass[])", (list(rows),))
        tables = [t for t, n in cur.fetchall()
                  if rows[t] >= ANALYZE_MIN_ROWS and rows[t] > ANALYZE_SHARE * max(n, 0)]
        if tables:
            cur.execute(f"analyze {', '.join(tables)}")
    raw.commit()


def _log_change(cur, name: str, classes: list[str], dataset_id: int, old_extent: bytes | None, srid: int):
    """The changed region: the old extent and the new one."""
    cur.execute("""insert into change_log (dataset_name, classes, region)
                   select %s, %s, st_expand(st_collect(e), 1.0) from (
                       select st_setsrid(st_extent(footprint)::geometry, %s) e from city_objects where dataset_id = %s
                       union all select st_setsrid(st_geomfromwkb(%s), %s)) x""",
                (name, classes, srid, dataset_id, old_extent, srid))


def write_dataset(info: DatasetInfo, objects: Iterable[CityObject], qa: Iterable[QAFinding] = (),
                  *, engine: sa.Engine | None = None,
                  progress: Callable[[int], None] | None = None) -> WriteResult:
    """Store one dataset in one transaction, replacing a dataset of the same name.

    `objects` may be a generator; it is consumed in batches so memory stays bounded. Parents
    and pipe nodes may come before or after the objects that reference them.
    """
    engine = engine or get_engine()
    srid = storage_srid(engine)
    raw = engine.raw_connection()
    counts: dict[str, int] = {}
    try:
        with raw.driver_connection.cursor() as cur:
            # COPY's bytea values (geometries, meshes, _jsonb) through psycopg's C dumper: the one it would pick,
            # psycopg.dbapi20's, wraps it in Python and costs twice as much per value
            cur.adapters.register_dumper(bytes, BytesBinaryDumper)
            old, old_classes = _replace_old(cur, info)
            cur.execute("""insert into datasets (name, kind, source_path, sha256, source_crs, report, status,
                                                   scenario_id)
                           values (%s, %s, %s, %s, %s, %s, 'writing', %s) returning id""",
                        (info.name, info.kind, Path(info.source_path).name,
                         info.sha256.result() if isinstance(info.sha256, Future) else info.sha256,
                         info.source_crs, _Json(info.report, dumps=dumps), _scenario_id(cur, info, old)))
            dataset_id = cur.fetchone()[0]
            ids = _Ids(cur)
            rows = _copy_objects(cur, objects, dataset_id, ids, srid, counts, progress)
            missing = ids.undefined()
            if missing:
                raise InputError(f"{info.source_path}: {len(missing)} referenced objects are missing "
                                 f"(first: {missing[0]!r})")
            findings = list(qa)
            if findings:
                _copy(cur, "qa_findings", FINDING_COLUMNS, FINDING_TYPES,
                      _finding_rows(findings, dataset_id, ids.ids, srid))
                counts["qa_findings"] = rows["qa_findings"] = len(findings)
            # The report again: an importer may add to it while its objects stream (failed elements...).
            cur.execute("update datasets set counts = %s, report = %s, status = 'complete' where id = %s",
                        (_Json(counts, dumps=dumps), _Json(info.report, dumps=dumps), dataset_id))
            _log_change(cur, info.name, sorted(set(counts) - {"qa_findings"} | set(old_classes)), dataset_id,
                        old[1] if old else None, srid)
        raw.commit()
        _analyze(raw, rows)
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()
    return WriteResult(dataset_id=dataset_id, name=info.name, counts=counts, replaced=bool(old))


def list_datasets(engine: sa.Engine | None = None) -> list[dict]:
    engine = engine or get_engine()
    with engine.connect() as c:
        rows = c.execute(sa.text("select id, name, kind, source_path, sha256, source_crs, counts, report, "
                                 "imported_at, status from datasets order by name")).mappings().all()
    return [dict(r) for r in rows]


def find_dataset(sha256: str, options: str, engine: sa.Engine | None = None) -> dict | None:
    """The complete dataset loaded from a source with this content and import options (report["options"])."""
    engine = engine or get_engine()
    with engine.connect() as c:
        row = c.execute(sa.text("select id, name from datasets where sha256 = :s and status = 'complete' "
                                "and report->>'options' = :o limit 1"),
                        {"s": sha256, "o": options}).mappings().first()
    return dict(row) if row else None


def remove_dataset(name: str, engine: sa.Engine | None = None) -> None:
    engine = engine or get_engine()
    with engine.begin() as c:
        row = c.execute(sa.text("""select d.id, st_expand(st_setsrid(st_extent(o.footprint)::geometry, :srid), 1.0) region,
                                          array_remove(array_agg(distinct o.class), null) classes
                                   from datasets d left join city_objects o on o.dataset_id = d.id
                                   where d.name = :n group by d.id"""), {"n": name, "srid": storage_srid(engine)}).first()
        if row is None:
            raise NotFoundError(f"no dataset named {name!r}", hint="`cim datasets` lists them")
        c.execute(sa.text("delete from datasets where id = :i"), {"i": row.id})
        c.execute(sa.text("insert into change_log (dataset_name, classes, region) values (:n, :c, :r)"),
                  {"n": name, "c": list(row.classes or []), "r": row.region})

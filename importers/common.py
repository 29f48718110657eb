"""What every importer shares: source discovery, skip-if-loaded, bulk runs over many files, and the
readers of GIS sources (layers, attributes, numbers, keys).

Each importer module offers SUFFIXES (what a folder search finds),
    import_file(path, *, dataset=None, engine=None, force=False, on_objects=None, **options) -> ImportResult
and, built on `import_many`,
    import_files(paths, *, workers=1, force=False, on_file=None, on_objects=None, **options).
on_objects(n) is called as objects are written (n of them); on_file(result) as each file is done.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import sqlalchemy as sa

from cim_core.db import get_engine
from cim_core.errors import CimError, InputError
from cim_core.settings import get_settings
from cim_core.store import WriteResult, find_dataset, sha256_of

# Files a folder search finds for the GIS and survey importers.
GIS_SUFFIXES = (".gpkg", ".shp", ".geojson", ".json", ".fgb", ".gml", ".kml", ".sqlite", ".gdb")
# The first number in a text: '12.5', 'DN300', '1.2 m', and '12,5' with a decimal comma (common in
# European data).
NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)?")


@dataclass
class ImportResult:
    path: str
    dataset: str
    counts: dict[str, int] = field(default_factory=dict)
    skipped: bool = False
    replaced: bool = False
    # importer-specific: repairs, defaults, failures, georef method
    report: dict = field(default_factory=dict)
    error: str | None = None

    @classmethod
    def written(cls, path: Path, res: WriteResult, report: dict) -> ImportResult:
        """The result of a source written as one dataset."""
        return cls(path=str(path), dataset=res.name, counts=res.counts, replaced=res.replaced, report=report)


def expand_sources(sources: Iterable[str | Path], suffixes: tuple[str, ...]) -> list[Path]:
    """Files from paths, directories (searched recursively by suffix) and glob patterns."""
    out: list[Path] = []
    for s in sources:
        s = str(s)
        matches = sorted(glob.glob(s, recursive=True)) if any(c in s for c in "*?[") else [s]
        if not matches:
            raise InputError(f"{s}: no file matches")
        for m in matches:
            p = Path(m)
            if p.is_dir():
                out += sorted(f for f in p.rglob("*") if f.is_file() and f.name.lower().endswith(suffixes))
            elif p.exists():
                out.append(p)
            else:
                raise InputError(f"{p}: no such file")
    return out


# Settings that change what an import writes; part of every skip key, so that a changed setting re-imports.
RESULT_SETTINGS = ("storey_height", "default_building_height", "default_pipe_cover",
                   "default_pipe_diameter_mm")
# Files a Shapefile's content is spread over besides the .shp.
SHAPEFILE_PARTS = (".dbf", ".shx", ".prj", ".cpg")


def options_key(options: dict) -> str:
    """The options part of a source's skip key, stored as its dataset's report["options"]: the import options
    (one GeoPackage may feed several datasets) and the settings that change the result."""
    s = get_settings()
    return json.dumps({**options, "settings": {n: getattr(s, n) for n in RESULT_SETTINGS}}, sort_keys=True,
                      default=str)


def content_sha256(path: Path) -> str:
    """The content part of a source's skip key: the file's SHA-256; for a Shapefile, or a folder source (a
    FileGDB), one over the names and SHA-256s of its files."""
    if path.is_dir():
        parts = {f.relative_to(path).as_posix(): f for f in sorted(path.rglob("*")) if f.is_file()}
    elif path.suffix.lower() == ".shp":
        case = str.lower if path.suffix == ".shp" else str.upper
        parts = {x: q for x in (".shp", *SHAPEFILE_PARTS) if (q := path.with_suffix(case(x))).is_file()}
    else:
        return sha256_of(path)
    h = hashlib.sha256()
    for name, f in parts.items():
        h.update(f"{name}:{sha256_of(f)}\n".encode())
    return h.hexdigest()


def _in_thread(fn: Callable[..., str], *args) -> Future[str]:
    """fn(*args) in a thread of its own (not a pool, whose state a forked worker process would inherit)."""
    fut: Future[str] = Future()

    def work() -> None:
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits for the result
            fut.set_exception(exc)

    threading.Thread(target=work, daemon=True).start()
    return fut


def already_loaded(path: Path, force: bool, options: dict,
                   engine: sa.Engine | None = None) -> tuple[str | Future[str], dict | None]:
    """(content SHA-256, the dataset already holding this content imported with these options, unless force).

    The skip key is the content and every option that changes the result: `options` must hold the importer's
    options, the target dataset's name among them (so the same content under another file name, which names
    another dataset, is imported; in another folder under the same name, it is skipped: the result would be
    the same). The importer stores options_key(options) as report["options"].
    With force there is nothing to look up: the SHA-256 comes as a Future, computed while the importer reads
    the source (hashlib releases the GIL), for DatasetInfo.sha256."""
    if force:
        return _in_thread(content_sha256, path), None
    sha = content_sha256(path)
    return sha, find_dataset(sha, options_key(options), engine=engine)


def _one(import_file: Callable, path: Path, options: dict) -> ImportResult:
    try:
        return import_file(path, **options)
    except CimError as exc:
        return ImportResult(path=str(path), dataset="", error=str(exc))


def import_many(import_file: Callable[..., ImportResult], paths: list[Path], *, workers: int = 1,
                on_file: Callable[[ImportResult], None] | None = None,
                on_objects: Callable[[int], None] | None = None, **options) -> list[ImportResult]:
    """Import files one dataset each, in `workers` processes; a failed file is reported, not fatal.

    on_file(result) follows files; on_objects(n), objects written, works in this process only (a callback
    cannot cross into worker processes), so it is not called when workers > 1.
    """
    results: list[ImportResult] = []
    if workers <= 1 or len(paths) <= 1:
        if on_objects:
            options = {**options, "on_objects": on_objects}
        for p in paths:
            r = _one(import_file, p, options)
            results.append(r)
            if on_file:
                on_file(r)
        return results
    # Start and migrate the database once, before the workers race to do it; then drop the pooled
    # connections, which forked workers must not share.
    get_engine().dispose()
    with ProcessPoolExecutor(max_workers=min(workers, os.cpu_count() or 1, len(paths))) as pool:
        futures = [pool.submit(partial(_one, import_file, p, options)) for p in paths]
        for f in as_completed(futures):
            r = f.result()
            results.append(r)
            if on_file:
                on_file(r)
    return sorted(results, key=lambda r: r.path)


# ---------------------------------------------------------------- GIS sources
def layers(path: str | Path) -> list[tuple[str, str]]:
    """(name, geometry type) of each layer of a source."""
    try:
        return [(str(n), str(g or "")) for n, g in pyogrio.list_layers(path)]
    except Exception as exc:  # GDAL's messages are specific enough; keep the first line
        first = str(exc).strip().splitlines()[0]
        raise InputError(f"{path}: cannot be read as a GIS source: {first}") from None


def numbers(col: np.ndarray | None, n: int) -> np.ndarray:
    """A column as float64, NaN where null or without a number (see NUMBER); all NaN without a column."""
    if col is None:
        return np.full(n, np.nan)
    if col.dtype.kind in "iufb":
        return col.astype(np.float64)
    out = np.full(n, np.nan)
    for i, v in enumerate(col.tolist()):
        if isinstance(v, (int, float)):
            out[i] = v
        elif v is not None and (m := NUMBER.search(v.decode("utf-8", "replace") if isinstance(v, bytes)
                                                   else str(v))):
            out[i] = float(m.group().replace(",", "."))
    return out


def _json_column(col: np.ndarray, ogr_type: str) -> list:
    """A column as JSON-safe Python values, None for nulls (integers stay integers)."""
    if col.dtype.kind == "f":
        null = np.isnan(col)
        values = np.where(null, 0, col).astype(np.int64).tolist() if ogr_type.startswith("OFTInteger") \
            else col.tolist()
        return [None if n else v for v, n in zip(values, null.tolist())] if null.any() else values
    if col.dtype.kind == "M":
        return [None if v == "NaT" else v for v in np.datetime_as_string(col).tolist()]
    if col.dtype.kind == "O":
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in col.tolist()]
    return col.tolist()


def attributes(meta: dict, data: list[np.ndarray], n: int) -> list[dict[str, Any]]:
    """Every source attribute of every feature (pyogrio.raw's meta and columns); nulls are left out.

    Features are grouped by which fields are null, so that each group's dicts come from dict(zip()) in C."""
    names = [str(f) for f in meta["fields"]]
    cols = [_json_column(c, t) for c, t in zip(data, meta["ogr_types"])]
    if not cols:
        return [{} for _ in range(n)]
    null = np.array([[v is None for v in c] for c in cols])  # (fields, features)
    pattern = np.packbits(null, axis=0).T.copy().view(np.dtype((np.void, (len(cols) + 7) // 8))).ravel()
    groups, first, inverse = np.unique(pattern, return_index=True, return_inverse=True)
    out: list[dict[str, Any]] = [None] * n  # type: ignore[list-item]
    for g, f in enumerate(first.tolist()):
        keep = [i for i in range(len(cols)) if not null[i, f]]
        members = np.flatnonzero(inverse == g).tolist() if len(groups) > 1 else range(n)
        sub = [names[i] for i in keep]
        picked = [[cols[i][j] for j in members] for i in keep] if len(groups) > 1 else [cols[i] for i in keep]
        for j, row in zip(members, zip(*picked)):
            out[j] = dict(zip(sub, row))
        if not keep:
            for j in members:
                out[j] = {}
    return out


def feature_keys(col: np.ndarray | None, n: int) -> tuple[list[str], list[str | None]]:
    """(keys, uids) of features from their id column: the id where every feature has a distinct one,
    else the feature index; uids keep the ids."""
    if col is None:
        idx = [str(i) for i in range(n)]
        return idx, idx
    uids = [None if v is None or v != v else str(int(v)) if isinstance(v, float) and v.is_integer()
            else str(v) for v in col.tolist()]
    if None not in uids and len(set(uids)) == n:
        return uids, uids
    return [str(i) for i in range(n)], uids


def network_keys(ids: list[str | None], utility: np.ndarray, prefix: str) -> tuple[list[str], list[str]]:
    """Dataset keys of nodes or segments from their ids: 'node:ID'; 'node:UTILITY:ID' where utilities number
    their features separately and an id recurs across them; the row number appended to an id repeated
    within one utility (returned as repeated); 'node#ROW' without an id."""
    per_id: dict[str, set] = {}
    for i, u in zip(ids, utility):
        if i is not None:
            per_id.setdefault(i, set()).add(str(u))
    seen: set[str] = set()
    keys, repeated = [], []
    for row, (i, u) in enumerate(zip(ids, utility)):
        if i is None:
            k = f"{prefix}#{row}"
        else:
            k = f"{prefix}:{u}:{i}" if len(per_id[i]) > 1 else f"{prefix}:{i}"
            if k in seen:
                repeated.append(k)
                k = f"{k}#{row}"
        seen.add(k)
        keys.append(k)
    return keys, repeated

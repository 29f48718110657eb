"""What every importer shares: source discovery, skip-if-loaded, and bulk runs over many files.

Each importer module offers
    import_file(path, *, dataset=None, engine=None, force=False, progress=None, **options) -> ImportResult
and, built on `import_many`, import_files(paths, *, workers=1, force=False, progress=None, **options).
"""
from __future__ import annotations

import glob
import json
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import sqlalchemy as sa

from cim_core.db import get_engine
from cim_core.errors import CimError, InputError
from cim_core.store import find_dataset, sha256_of


@dataclass
class ImportResult:
    path: str
    dataset: str
    counts: dict[str, int] = field(default_factory=dict)
    skipped: bool = False
    replaced: bool = False
    report: dict = field(default_factory=dict)  # importer-specific: repairs, defaults, failures, georef method
    error: str | None = None


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


def options_key(options: dict) -> str:
    """The import options as stored in a dataset's report: one GeoPackage may feed several datasets."""
    return json.dumps(options, sort_keys=True, default=str)


def already_loaded(path: Path, force: bool, options: dict | None = None,
                   engine: sa.Engine | None = None) -> tuple[str, dict | None]:
    """(sha256, the dataset already holding this exact content, imported with these options, unless force).

    An importer that passes options stores options_key(options) as report["options"]."""
    sha = sha256_of(path)
    if force:
        return sha, None
    return sha, find_dataset(sha, options_key(options) if options is not None else None, engine=engine)


def _one(import_file: Callable, path: Path, options: dict) -> ImportResult:
    try:
        return import_file(path, **options)
    except CimError as exc:
        return ImportResult(path=str(path), dataset="", error=str(exc))


def import_many(import_file: Callable[..., ImportResult], paths: list[Path], *, workers: int = 1,
                progress: Callable[[ImportResult], None] | None = None,
                object_progress: Callable[[int], None] | None = None, **options) -> list[ImportResult]:
    """Import files one dataset each, in `workers` processes; a failed file is reported, not fatal.

    progress(result) follows files; object_progress(n), objects written, works in this process only
    (a callback cannot cross into worker processes), so it is not called when workers > 1.
    """
    results: list[ImportResult] = []
    if workers <= 1 or len(paths) <= 1:
        if object_progress:
            options = {**options, "progress": object_progress}
        for p in paths:
            r = _one(import_file, p, options)
            results.append(r)
            if progress:
                progress(r)
        return results
    # Start and migrate the database once, before the workers race to do it; then drop the pooled
    # connections, which forked workers must not share.
    get_engine().dispose()
    with ProcessPoolExecutor(max_workers=min(workers, os.cpu_count() or 1, len(paths))) as pool:
        futures = [pool.submit(partial(_one, import_file, p, options)) for p in paths]
        for f in as_completed(futures):
            r = f.result()
            results.append(r)
            if progress:
                progress(r)
    return sorted(results, key=lambda r: r.path)

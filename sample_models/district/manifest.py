"""The manifest's imports: which importer loads each file or layer, with which options, and load().

Each entry is stored in manifest.json as {"importer", "path", "options"}: the call
importers.<importer>.import_file(folder / path, **options). Next to it the manifest shows a human the
same import as a `cim import` command; nothing reads that command back.
"""

from __future__ import annotations

import importlib
import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cim_core.errors import InputError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from importers.common import ImportResult

# Options whose `cim import` flag differs from the keyword's name.
CLI_FLAGS = {"kind": "--as"}
# The generated files' version, in each manifest: raised when a change of the generator changes them, so that
# `cim demo` generates a district of an older version again (and imports what changed).
VERSION = 2


@dataclass(frozen=True)
class ImportEntry:
    """One import: importers.<importer>.import_file(folder / path, **options); options name the dataset."""

    importer: str
    path: str  # relative to the manifest's folder
    options: dict[str, str] = field(default_factory=dict)

    @property
    def dataset(self) -> str:
        return self.options["dataset"]

    @property
    def command(self) -> str:
        """The same import as a `cim import` command, to run in the manifest's folder."""
        flags = [
            f"{CLI_FLAGS.get(k, '--' + k.replace('_', '-'))} {shlex.quote(str(v))}"
            for k, v in self.options.items()
        ]
        return " ".join(["cim import", self.importer, shlex.quote(self.path), *flags])

    def as_json(self) -> dict:
        return {"importer": self.importer, "path": self.path, "options": dict(self.options)}


def _listed(manifest: dict) -> list[dict]:
    """The manifest's layers, then its other files (IFC): the items that may carry an import."""
    return [layer for f in manifest["files"] for layer in f.get("layers", [])] + [
        f for f in manifest["files"] if "layers" not in f
    ]


def is_current(folder: str | Path) -> bool:
    """Whether `folder` holds a district of this generator's VERSION."""
    path = Path(folder) / "manifest.json"
    if not path.exists():
        return False
    return json.loads(path.read_text(encoding="utf-8")).get("version") == VERSION


def entries(folder: str | Path) -> list[ImportEntry]:
    """The imports of the district in `folder`, in the order of its manifest (layers, then IFC files)."""
    path = Path(folder) / "manifest.json"
    listed = _listed(json.loads(path.read_text(encoding="utf-8")))
    if any("import" not in item for item in listed):
        raise InputError(
            f"{path}: written by an older generator, without import entries",
            hint="generate the district again with `cim sample generate`",
        )
    return [ImportEntry(**item["import"]) for item in listed if item["import"]]


def load(
    folder: str | Path, *, engine: sa.Engine | None = None, on_step: Callable[[int, int], None] | None = None
) -> list[ImportResult]:
    """Import every entry of the district in `folder` whose dataset is missing or was loaded from other
    content; returns the result of each import done (none when the district is loaded already).

    on_step(done, total) follows the imports to do: once before the first, then after each.
    """
    from cim_core import store

    folder = Path(folder)
    listed = entries(folder)
    sha256 = {p: store.sha256_of(folder / p) for p in {e.path for e in listed}}
    loaded = {d["name"]: d["sha256"] for d in store.list_datasets(engine)}
    todo = [e for e in listed if loaded.get(e.dataset) != sha256[e.path]]
    done: list[ImportResult] = []
    if on_step:
        on_step(0, len(todo))
    for e in todo:
        importer = importlib.import_module(f"importers.{e.importer}")
        # force: one GeoPackage feeds several datasets, so its checksum alone does not tell them apart.
        result = importer.import_file(folder / e.path, engine=engine, force=True, **e.options)
        if result.error:
            raise InputError(f"{folder / e.path}: {result.error}")
        done.append(result)
        if on_step:
            on_step(len(done), len(todo))
    define_scenarios(folder, engine)
    return done


def define_scenarios(folder: Path, engine: sa.Engine | None = None) -> None:
    """The renewal plans of the manifest (`scenarios`: name, title, description, removes), as
    cim_core.scenarios records; their datasets come with the imports (option `scenario`)."""
    from cim_core import scenarios

    manifest = json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))
    for s in manifest.get("scenarios", []):
        scenarios.define(s["name"], title=s.get("title"), description=s.get("description"),
                         removes=[(r["dataset"], r.get("key")) for r in s.get("removes", [])], engine=engine)

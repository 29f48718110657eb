"""IFC import: `cim import ifc` (importers.ifc.import_file) against a bare ifcopenshell.geom iteration.

One run, on the sample district's IFC buildings (sample_models.district, generated once into the work
folder; the five buildings do not depend on the scale, so the district is generated at a small scale)
and on the real IFC files in tests/data, each into a database of a fitting storage CRS in one embedded
PostGIS cluster of the bench's own (CIM_HOME under the work folder, stopped at the end):
- bare: ifcopenshell.open + the geometry iterator with the importer's settings (world coordinates,
  material names, default materials, openings and virtual elements excluded, 1 thread), touching each
  shape's vertex, face and material buffers; nothing else;
- ours: the whole import (open, georeference, property sets, meshes, footprints, pipes, COPY, commit).
The two alternate, ROUNDS times per file; the figures are medians. Also measured once: the iterator
with 2 threads against 1, and `import_files` with 2 worker processes against 1 on the sample files.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import time
import uuid
from pathlib import Path

ROUNDS = 2
SEED = 7
DISTRICT_SCALE = 0.01
DATA = Path(__file__).parent.parent / "tests" / "data"
# real files: (name, storage SRID, import options)
REAL = [
    ("duplex.ifc", 26916, {}),
    ("AC20-FZK-Haus.ifc", 25832, {}),
    ("IfcOpenHouse_IFC4.ifc", 4547, {"at": (501800.0, 3649500.0, 75.0)}),
    ("geographic-referencing-utm.ifc", 25832, {}),
    ("pipe_12d_drainage.ifc", 7855, {"crs": "EPSG:7855"}),
]


def _district(work: Path) -> list[Path]:
    from sample_models.district import generate

    folder = work / "district"
    manifest = folder / "manifest.json"
    if not (manifest.exists() and json.loads(manifest.read_text()).get("seed") == SEED):
        shutil.rmtree(folder, ignore_errors=True)
        print(f"generating the sample district at scale {DISTRICT_SCALE:g} (once)", flush=True)
        generate(folder, scale=DISTRICT_SCALE, seed=SEED)
    return sorted((folder / "ifc").glob("*.ifc"))


def _bare(path: Path, threads: int = 1) -> tuple[float, int]:
    """Seconds and shapes of a bare iteration with the importer's settings."""
    import ifcopenshell
    import ifcopenshell.geom

    from importers.ifc import SKIP

    t = time.perf_counter()
    model = ifcopenshell.open(str(path))
    s = ifcopenshell.geom.settings()
    s.set("use-world-coords", True)
    s.set("use-material-names", True)
    s.set("apply-default-materials", True)
    it = ifcopenshell.geom.iterator(s, model, threads, exclude=list(SKIP))
    n = 0
    if it.initialize():
        while True:
            g = it.get().geometry
            len(g.verts_buffer), len(g.faces_buffer), len(g.material_ids_buffer), len(g.materials)
            n += 1
            if not it.next():
                break
    return time.perf_counter() - t, n


def run(scale: float, work: Path) -> dict:
    work = work.absolute()
    sample = _district(work)
    os.environ["CIM_HOME"] = str(work / "home")
    os.environ.pop("CIM_DATABASE_URL", None)
    os.environ.pop("CIM_SRID", None)

    import sqlalchemy as sa

    from cim_core import db as cdb
    from cim_core.migrate import upgrade
    from cim_core.settings import get_settings
    from importers import ifc

    get_settings.cache_clear()
    emb = cdb.embedded()
    emb.start()
    engines: dict[int, sa.Engine] = {}

    def engine_for(srid: int) -> sa.Engine:
        if srid not in engines:
            name = f"bench_ifc_{srid}_{uuid.uuid4().hex[:6]}"
            base = emb.url().rsplit("/", 1)[0]
            admin = sa.create_engine(base + "/postgres", isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(sa.text(f'create database "{name}"'))
            admin.dispose()
            engines[srid] = sa.create_engine(base + "/" + name)
            upgrade(engines[srid], srid=srid)
        return engines[srid]

    files = [(p, 4547, {}, "sample") for p in sample] + [(DATA / n, s, o, "real") for n, s, o in REAL]
    per_file = []
    try:
        for path, srid, opts, group in files:
            engine = engine_for(srid)
            ifc.import_file(path, engine=engine, force=True, **opts)  # warm: imports, catalogue, page cache
            bare, ours, shapes, objects = [], [], 0, 0
            for _ in range(ROUNDS):
                t, shapes = _bare(path)
                bare.append(t)
                t = time.perf_counter()
                r = ifc.import_file(path, engine=engine, force=True, **opts)
                ours.append(time.perf_counter() - t)
                objects = sum(r.counts.values())
            row = {"file": path.name, "group": group, "shapes": shapes, "objects": objects,
                   "bare_s": round(statistics.median(bare), 3), "import_s": round(statistics.median(ours), 3)}
            row["ratio"] = round(row["import_s"] / row["bare_s"], 3)
            print(json.dumps(row), flush=True)
            per_file.append(row)

        def total(group: str | None) -> dict:
            rows = [r for r in per_file if group in (None, r["group"])]
            b, o = sum(r["bare_s"] for r in rows), sum(r["import_s"] for r in rows)
            n = sum(r["shapes"] for r in rows)
            return {"files": len(rows), "shapes": n, "objects": sum(r["objects"] for r in rows),
                    "bare_s": round(b, 3), "import_s": round(o, 3), "ratio": round(o / b, 3),
                    "bare_elements_per_s": round(n / b, 1), "import_elements_per_s": round(n / o, 1)}

        biggest = max(sample, key=lambda p: p.stat().st_size)
        threads = {f"{k}_threads_s": round(_bare(biggest, k)[0], 3) for k in (1, 2)}
        workers = {}
        for k in (1, 2):
            t = time.perf_counter()
            results = ifc.import_files([str(p) for p in sample], workers=k, force=True)
            workers[f"{k}_workers_s"] = round(time.perf_counter() - t, 3)
            assert not any(r.error for r in results), [r.error for r in results]
        return {"rounds": ROUNDS, "district_scale": DISTRICT_SCALE, "goal": "import_s <= 1.3 x bare_s",
                "sample": total("sample"), "real": total("real"), "all": total(None), "files": per_file,
                "iterator_threads": {"file": biggest.name, **threads},
                "import_files_workers": {"files": len(sample), **workers}}
    finally:
        for e in engines.values():
            e.dispose()
        emb.stop()

"""GIS import: `cim import gis` (read, transform, repair, COPY footprints with their heights as meshless LOD1
buildings, which the tile builder extrudes) against `ogr2ogr -f PostgreSQL`.

One run, on the buildings layer of the generated sample district (sample_models.district, about 3,000
x scale footprints; generated once per scale into the work folder), into one embedded PostGIS cluster of
the bench's own (CIM_HOME under the work folder, stopped at the end):
- ogr2ogr (Debian gdal-bin, installed when missing) with COPY and its default GiST index, into a table of
  the same database; the table is dropped before each run;
- our import through the Python API (importers.gis.import_file, --force), and once through the `cim`
  command, which adds the interpreter's start and imports.
The two are run alternately, ROUNDS times each; the figures are the medians. The machine is shared, so
besides wall time the bench records CPU seconds, which other load hardly changes: the client's (our
process, or ogr2ogr as a child) and the database server's (this cluster's processes, exited backends
included through the postmaster's children times).
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROUNDS = 3
SEED = 7


def _ensure_ogr2ogr() -> str:
    exe = shutil.which("ogr2ogr")
    if not exe:
        subprocess.run(["apt-get", "install", "-y", "gdal-bin"], check=True, capture_output=True)
        exe = shutil.which("ogr2ogr")
    return exe


def _server_cpu(pgdata: Path) -> float:
    """CPU seconds used so far by one PostgreSQL cluster: postmaster (with its reaped children) + live children."""
    tick = os.sysconf("SC_CLK_TCK")
    pm = int((pgdata / "postmaster.pid").read_text().split()[0])
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry), int(stat[1])
        if pid == pm:
            total += sum(int(x) for x in stat[11:15])  # utime, stime, cutime, cstime
        elif ppid == pm:
            total += int(stat[11]) + int(stat[12])
    return total / tick


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _district(scale: float, work: Path) -> Path:
    """The sample district's GeoPackage at this scale, generated once."""
    from sample_models.district import generate

    folder = work / f"district-{scale:g}"
    gpkg = folder / "district.gpkg"
    manifest = folder / "manifest.json"
    if not (manifest.exists() and json.loads(manifest.read_text()).get("seed") == SEED and gpkg.exists()):
        shutil.rmtree(folder, ignore_errors=True)
        print(f"generating the sample district at scale {scale:g} (once)", flush=True)
        generate(folder, scale=scale, seed=SEED)
    return gpkg


def _empty(engine, ogr: bool = True) -> None:
    """Drop our dataset, and ogr2ogr's table with ogr (untimed). The bench's own cluster holds nothing else, so the
    model's tables are truncated: deleting 100,000 objects fires each foreign key's trigger per row (about
    7 s; a cost of replacing or removing a dataset, not of importing)."""
    import sqlalchemy as sa

    with engine.begin() as c:
        if ogr:
            c.execute(sa.text("drop table if exists b_ogr"))
        c.execute(sa.text("truncate datasets, city_objects, change_log cascade"))


def _rounds(engine, pgdata: Path, ogr2ogr: str, pg: str, gpkg: Path, opts: dict):
    """ROUNDS of ogr2ogr and our import, alternately, each into an empty target: (our seconds, theirs, our
    (client, server) CPU seconds, theirs, our last result)."""
    from importers import gis

    ours, theirs, ours_cpu, theirs_cpu = [], [], [], []
    for _ in range(ROUNDS):
        # both start from an empty target, untimed: ogr2ogr's table and our dataset are dropped
        _empty(engine)
        s0, c0, t0 = _server_cpu(pgdata), _children_cpu(), time.perf_counter()
        subprocess.run([ogr2ogr, "-f", "PostgreSQL", pg, str(gpkg), "buildings", "-nln", "b_ogr",
                        "-lco", "GEOMETRY_NAME=geom", "--config", "PG_USE_COPY", "YES"],
                       check=True, capture_output=True)
        theirs.append(time.perf_counter() - t0)
        theirs_cpu.append((_children_cpu() - c0, _server_cpu(pgdata) - s0))
        s0, c0, t0 = _server_cpu(pgdata), time.process_time(), time.perf_counter()
        res = gis.import_file(gpkg, force=True, engine=engine, **opts)
        ours.append(time.perf_counter() - t0)
        ours_cpu.append((time.process_time() - c0, _server_cpu(pgdata) - s0))
    return ours, theirs, ours_cpu, theirs_cpu, res


def run(scale: float, work: Path) -> dict:
    work = work.absolute()
    ogr2ogr = _ensure_ogr2ogr()
    gpkg = _district(scale, work)
    home = work / "home"
    os.environ["CIM_HOME"] = str(home)
    os.environ.pop("CIM_DATABASE_URL", None)
    os.environ.pop("CIM_SRID", None)
    env = {**os.environ, "COLUMNS": "200"}

    import pyogrio
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from cim_core import db as cdb
    from cim_core.settings import get_settings
    from importers import gis

    get_settings.cache_clear()
    emb = cdb.embedded()
    try:
        engine = cdb.get_engine()
        url = make_url(cdb.database_url())
        pg = f"PG:host={url.host} port={url.port} dbname={url.database} user={url.username}"
        n = int(pyogrio.read_info(gpkg, layer="buildings")["features"])
        opts = dict(layer="buildings", kind="buildings", height_field="height_m", floors_field="floors",
                    dataset="bench-buildings")
        _empty(engine)
        gis.import_file(gpkg, force=True, engine=engine, **opts)  # warm: imports, page cache, catalogue
        ours, theirs, ours_cpu, theirs_cpu, res = _rounds(engine, emb.pgdata.resolve(), ogr2ogr, pg, gpkg,
                                                          opts)
        _empty(engine, ogr=False)
        t0 = time.perf_counter()
        cli = subprocess.run([str(Path(sys.executable).with_name("cim")), "import", "gis", str(gpkg), "--layer",
                              "buildings", "--as", "buildings", "--height-field", "height_m", "--floors-field",
                              "floors", "--dataset", "bench-buildings", "--force"],
                             env=env, capture_output=True, text=True)
        cli_s = time.perf_counter() - t0
        if cli.returncode != 0:
            raise RuntimeError(f"cim import gis failed: {cli.stderr.strip()}")
        with engine.connect() as c:
            ogr_rows = c.scalar(sa.text("select count(*) from b_ogr"))
            solids = c.execute(sa.text(
                "select count(*), count(o.mesh_faces) from city_objects o "
                "join datasets d on d.id = o.dataset_id "
                "where d.name = 'bench-buildings' and o.lod = 1")).one()
            c.execute(sa.text("drop table if exists b_ogr"))
            c.commit()
    finally:
        emb.stop()
    ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)

    def cpu(runs):
        client, server = (statistics.median(x) for x in zip(*runs))
        return {"client": round(client, 3), "server": round(server, 3), "total": round(client + server, 3)}

    ours_c, theirs_c = cpu(ours_cpu), cpu(theirs_cpu)
    return {
        "layer": f"{gpkg.name}:buildings (sample district, scale {scale:g}, seed {SEED})",
        "features": n,
        "ours": {"what": "importers.gis.import_file: read, transform, repair, COPY in one transaction (GiST "
                         "index kept); LOD1 buildings stored meshless (footprint, zmin, zmax)",
                 "seconds_median": round(ours_s, 3), "seconds_runs": [round(s, 3) for s in ours],
                 "features_per_s": round(n / ours_s), "objects": res.counts.get("building", 0),
                 "lod1_buildings": solids[0], "stored_meshes": solids[1],
                 "cpu_seconds_median": ours_c, "cli_seconds": round(cli_s, 3)},
        "ogr2ogr": {"what": f"{ogr2ogr} -f PostgreSQL --config PG_USE_COPY YES (GiST index)",
                    "version": subprocess.run([ogr2ogr, "--version"], capture_output=True, text=True).stdout.strip(),
                    "seconds_median": round(theirs_s, 3), "seconds_runs": [round(s, 3) for s in theirs],
                    "features_per_s": round(n / theirs_s), "cpu_seconds_median": theirs_c, "rows": ogr_rows},
        "ratio": round(ours_s / theirs_s, 2),
        "ratio_cli": round(cli_s / theirs_s, 2),
        "ratio_cpu": round(ours_c["total"] / theirs_c["total"], 2),
        "load_average": os.getloadavg(),
        "goal": "ratio <= 2.0",
    }

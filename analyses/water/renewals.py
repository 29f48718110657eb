"""Renewals done, and progress against the city's target (issue 14).

A renewal is recorded as a new version of the segment, as 3DCityDB keeps versions: the old version's
validity ends on the renewal date (`valid_to`; its key gets `@DATE` so that the current one keeps the key)
and stays in the model as history; the new version, valid from that date, carries the new material,
install year (and diameter, if given), `attributes.renewal` (date, what it replaced) and
`attributes.renewed_year` (what the health check counts against the 144.34 km). Every current
reader (the network model, tiles, the API's current features) sees only the new version.

Progress: the length of current segments renewed, by year of the renewal date and by street (the nearest
named road centre line within STREET_REACH_M of the segment's midpoint), against the target of
data/renewal.toml (144.34 km by 2027-12-31) or the one given.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from cim_core.db import get_engine
from cim_core.errors import InputError
from cim_core.runs import now, record_run
from cim_core.schema import city_objects, copy_columns, pipe_segments

from .renewal import config, write_sheets

STREET_REACH_M = 60.0  # a segment farther than this from any named road lies along no street (assumed)
_FIELDS = ("segment", "material", "year", "date", "diameter_mm")


def _parse(row: dict, where: str, today: dt.date) -> dict:
    """A renewal from strings or values; InputError naming `where` and the field."""
    seg = str(row.get("segment") or "").strip()
    material = str(row.get("material") or "").strip()
    if not seg or not material:
        raise InputError(f"{where}: segment and material are required")
    try:
        year = int(row.get("year"))
        date = dt.date.fromisoformat(str(row["date"]).strip()) if row.get("date") else today
        dia = float(row["diameter_mm"]) if row.get("diameter_mm") not in (None, "") else None
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: {exc}") from None
    if date > today:
        raise InputError(f"{where}: date {date} is in the future; record a renewal once it is done")
    if not 1900 <= year <= date.year:
        raise InputError(f"{where}: year {year} must lie between 1900 and the renewal date's year {date.year}")
    if dia is not None and not dia > 0:
        raise InputError(f"{where}: diameter_mm {dia} must be positive")
    return {"segment": seg, "material": material, "year": year, "date": date, "diameter_mm": dia}


_COPY_OBJ, _ = copy_columns(city_objects, ("id", "key", "attributes", "valid_from", "valid_to"))
_COPY_SEG, _ = copy_columns(pipe_segments, ("object_id", "material", "install_year", "diameter_mm"))


def _current(c: sa.Connection, seg: str, utility: str, date: dt.date, where: str) -> sa.Row:
    by = "o.id = cast(:s as bigint)" if seg.isdigit() else "o.key = :s"
    rows = c.execute(sa.text(f"""
        select o.id, o.key, o.valid_from, s.material, s.install_year, s.diameter_mm, s.length_m, d.name dataset
        from city_objects o join pipe_segments s on s.object_id = o.id join datasets d on d.id = o.dataset_id
        where {by} and s.utility = :u and (o.valid_to is null or o.valid_to > current_date)"""),
                     {"s": seg, "u": utility}).all()
    if len(rows) != 1:
        raise InputError(f"{where}: " + (f"no current {utility} segment {seg!r}" if not rows else
                                         f"{len(rows)} current {utility} segments have the key {seg!r}; give the id"))
    if rows[0].valid_from and rows[0].valid_from >= date:
        raise InputError(f"{where}: segment {seg} is valid from {rows[0].valid_from}; a renewal on {date} "
                         "must come after")
    return rows[0]


def _write(c: sa.Connection, r: dict, old: sa.Row) -> int:
    renewal = {"date": r["date"].isoformat(), "previous_id": old.id, "previous_material": old.material,
               "previous_install_year": old.install_year, "length_m": old.length_m}
    c.execute(sa.text("update city_objects set valid_to = :d, key = key || '@' || :ds where id = :i"),
              {"d": r["date"], "ds": r["date"].isoformat(), "i": old.id})
    cols = ", ".join(_COPY_OBJ)
    new_id = c.scalar(sa.text(f"""
        insert into city_objects (key, attributes, valid_from, {cols})
        select :k, attributes || jsonb_build_object('renewal', cast(:r as jsonb), 'renewed_year', :y), :d, {cols}
        from city_objects where id = :i returning id"""),
                      {"k": old.key, "r": json.dumps(renewal), "d": r["date"], "y": r["date"].year, "i": old.id})
    seg_cols = ", ".join(_COPY_SEG)
    c.execute(sa.text(f"""
        insert into pipe_segments (object_id, material, install_year, diameter_mm, {seg_cols})
        select :n, :m, :y, coalesce(:dia, diameter_mm), {seg_cols} from pipe_segments where object_id = :i"""),
              {"n": new_id, "m": r["material"], "y": r["year"], "dia": r["diameter_mm"], "i": old.id})
    c.execute(sa.text("""
        insert into change_log (dataset_name, classes, region)
        select :ds, array['pipe_segment'], st_expand(st_envelope(st_force2d(centerline)), 1.0)
        from pipe_segments where object_id = :i"""), {"ds": old.dataset, "i": old.id})
    return new_id


def record(rows: list[dict], *, utility: str = "water", source: str = "renewals",
           requested_by: str | None = None, engine: sa.Engine | None = None) -> dict[str, Any]:
    """Record renewals (dicts of segment, material, year, [date], [diameter_mm]) in one transaction: every
    row is checked first, and one bad row refuses them all (InputError naming the row). Recorded as a run."""
    engine = engine or get_engine()
    t0, today = now(), dt.date.today()
    if not rows:
        raise InputError(f"{source}: no renewals")
    parsed = [_parse(r, f"{source} row {i}" if len(rows) > 1 else source, today) for i, r in enumerate(rows, 1)]
    done = []
    with engine.begin() as c:
        for i, r in enumerate(parsed, 1):
            where = f"{source} row {i}" if len(rows) > 1 else source
            old = _current(c, r["segment"], utility, r["date"], where)
            done.append({"segment": r["segment"], "old_id": old.id, "new_id": _write(c, r, old), "key": old.key,
                         "date": r["date"].isoformat(), "material": r["material"], "year": r["year"],
                         "length_m": old.length_m, "previous_material": old.material})
    km = sum(d["length_m"] or 0 for d in done) / 1000
    run = record_run("renewal-record", {"source": source, "utility": utility, "rows": len(rows)},
                     {"versioning": "old version closed (valid_to), new version valid from the renewal date"}, [],
                     {"renewed": len(done), "km": round(km, 3)}, started_at=t0, requested_by=requested_by,
                     engine=engine)
    return {"run_id": run.id, "renewed": done, "km": round(km, 3)}


def record_csv(path: str | Path, **kw) -> dict[str, Any]:
    """Renewals from a CSV with columns segment, material, year, date (YYYY-MM-DD), [diameter_mm]."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = {"segment", "material", "year"} - set(reader.fieldnames or [])
            if missing:
                raise InputError(f"{path}: missing column(s) {', '.join(sorted(missing))} "
                                 f"(expected {', '.join(_FIELDS)})")
            rows = list(reader)
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror}") from None
    return record(rows, source=str(path), **kw)


def _renewed(engine: sa.Engine, utility: str) -> list[sa.Row]:
    with engine.connect() as c:
        return c.execute(sa.text("""
            select o.id, o.key, cast(o.attributes->'renewal'->>'date' as date) d, s.length_m, s.material,
                   o.attributes->'renewal'->>'previous_material' previous, road.name street
            from city_objects o join pipe_segments s on s.object_id = o.id
            left join lateral (
                select r.name from city_objects r
                where r.class = 'road' and r.name is not null and r.footprint is not null
                  and (r.valid_to is null or r.valid_to > current_date)
                  and st_dwithin(r.footprint, st_lineinterpolatepoint(st_force2d(s.centerline), 0.5), :reach)
                order by r.footprint <-> st_lineinterpolatepoint(st_force2d(s.centerline), 0.5) limit 1) road on true
            where s.utility = :u and o.attributes ? 'renewal'
              and (o.valid_to is null or o.valid_to > current_date)
            order by d, o.id"""), {"u": utility, "reach": STREET_REACH_M}).all()


def status(*, utility: str = "water", target_km: float | None = None, target_date: str | None = None,
           engine: sa.Engine | None = None) -> dict[str, Any]:
    """Km renewed against the target, by year of renewal and by street, and the pace still needed."""
    engine = engine or get_engine()
    cfg = config()["target"]
    target_km = cfg["km"] if target_km is None else float(target_km)
    end = dt.date.fromisoformat(target_date or cfg["date"])
    if target_km <= 0:
        raise InputError(f"target_km {target_km}: must be positive")
    rows = [r for r in _renewed(engine, utility) if r.d <= end]
    today = dt.date.today()
    first = min([r.d.year for r in rows] + [today.year])
    years = {y: {"year": y, "km": 0.0, "segments": 0} for y in range(first, max(end.year, first) + 1)}
    streets: dict[str, dict] = {}
    for r in rows:
        km = (r.length_m or 0) / 1000
        for cell in (years[r.d.year], streets.setdefault(r.street or "", {"street": r.street, "km": 0.0,
                                                                              "segments": 0})):
            cell["km"] += km
            cell["segments"] += 1
    done = sum(y["km"] for y in years.values())
    cumulative = 0.0
    for y in years.values():
        cumulative += y["km"]
        y["km"], y["cumulative_km"] = round(y["km"], 3), round(cumulative, 3)
        y["share"] = round(cumulative / target_km, 4)
    left_years = max(end.year - today.year + 1, 1)
    return {"target_km": target_km, "target_date": end.isoformat(), "target_source": cfg["source"],
            "renewed_km": round(done, 3), "share": round(done / target_km, 4),
            "remaining_km": round(max(target_km - done, 0), 3),
            "needed_km_per_year": round(max(target_km - done, 0) / left_years, 3),
            "by_year": list(years.values()),
            "by_street": sorted(({**s, "km": round(s["km"], 3)} for s in streets.values()),
                                key=lambda s: (-s["km"], s["street"] or "")),
            "segments": [{"id": r.id, "key": r.key, "date": r.d.isoformat(), "street": r.street,
                          "length_m": r.length_m, "material": r.material, "previous_material": r.previous}
                         for r in rows]}


def write_status(result: dict, path: str | Path) -> Path:
    """CSV: the renewed segments (with year and street); XLSX: sheets segments, by_year, by_street, summary."""
    summary = [{k: v for k, v in result.items() if not isinstance(v, list)}]
    return write_sheets({"segments": result["segments"], "by_year": result["by_year"],
                         "by_street": result["by_street"], "summary": summary}, path,
                        ["id", "key", "date", "street", "length_m", "material", "previous_material"])

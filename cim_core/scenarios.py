"""Renewal scenarios: named plans over the as-is model (现状).

A plan's model is the as-is model minus what the plan removes (whole datasets, or single objects by their
dataset's name and key, each with its children) plus the objects of the plan's own datasets (`datasets.scenario_id`). The as-is
model is every dataset that belongs to no scenario. Every reader that draws or counts "the model" selects
with `visible(scenario_id)`: the API's features, search and vector tiles, the 3D tiles, the scenario
comparison and the health check.
"""
from __future__ import annotations

import re

import sqlalchemy as sa

from .db import get_engine
from .errors import InputError, NotFoundError

# Names of the as-is model: absent, empty, or one of these.
AS_IS = ("as-is", "现状", "asis", "current")
NAME = re.compile(r"^[\w\-.\u4e00-\u9fff]{1,64}$")


def is_as_is(name: str | None) -> bool:
    return name is None or name.strip() == "" or name.strip().lower() in AS_IS


def check_name(name: str) -> str:
    """A scenario name: letters (Chinese too), digits, '-', '_', '.'; at most 64."""
    if not NAME.match(name or "") or is_as_is(name):
        raise InputError(f"scenario name {name[:70]!r}: use 1-64 letters, digits, '-', '_' or '.', not "
                         f"{'/'.join(AS_IS[:2])} (the as-is model)")
    return name


def resolve(conn: sa.Connection, name: str | None) -> int | None:
    """The id of the scenario called `name`; None for the as-is model; NotFoundError for an unknown one."""
    if is_as_is(name):
        return None
    sid = conn.scalar(sa.text("select id from scenarios where name = :n"), {"n": name})
    if sid is None:
        raise NotFoundError(f"no scenario {name[:70]!r}", hint="`cim scenarios list` or /api/scenarios lists them")
    return int(sid)


def visible(scenario_id: int | None, o: str = "o") -> str:
    """SQL: whether the city object aliased `o` belongs to the model of the scenario (None: as-is).

    Removing one object removes its whole subtree (a building's storeys, BIM parts and installations, by
    parent_id); removing a dataset removes all of it, and parents lie in their children's dataset."""
    if scenario_id is None:
        return f"{o}.dataset_id not in (select id from datasets where scenario_id is not null)"
    sid = int(scenario_id)  # an integer from resolve(), never caller text
    return (f"({o}.dataset_id in (select id from datasets where scenario_id is null or scenario_id = {sid})"
            f" and {o}.dataset_id not in (select d.id from datasets d join scenario_removals r on r.dataset = d.name"
            f" where r.scenario_id = {sid} and r.key is null)"
            f" and {o}.id not in (with recursive gone(id) as ("
            f"select x.id from city_objects x join datasets d on d.id = x.dataset_id join scenario_removals r"
            f" on r.dataset = d.name and r.key = x.key where r.scenario_id = {sid}"
            f" union select c.id from city_objects c join gone on c.parent_id = gone.id) select id from gone))")


def current(scenario_id: int | None = None, o: str = "o") -> str:
    """SQL: the object is current (not retired by valid_to) and in the scenario's model."""
    return f"(({o}.valid_to is null or {o}.valid_to > current_date) and {visible(scenario_id, o)})"


def ensure(conn: sa.Connection, name: str, title: str | None = None) -> int:
    """The id of scenario `name`, created (with `title`) when missing."""
    check_name(name)
    conn.execute(sa.text("insert into scenarios (name, title) values (:n, :t) on conflict (name) do nothing"),
                 {"n": name, "t": title or name})
    return int(conn.scalar(sa.text("select id from scenarios where name = :n"), {"n": name}))


def parse_removal(text: str) -> tuple[str, str | None]:
    """'DATASET' (all of it) or 'DATASET:KEY' (one object)."""
    dataset, _, key = text.partition(":")
    if not dataset.strip():
        raise InputError(f"--removes {text[:70]!r}: expected DATASET or DATASET:KEY")
    return dataset.strip(), key.strip() or None


def define(name: str, *, title: str | None = None, description: str | None = None,
           removes: list[tuple[str, str | None]] | None = None, engine: sa.Engine | None = None) -> int:
    """Create or update a scenario; `removes` (when given) replaces its list of removals. Logged in
    change_log, since the plan's model changes with its removals."""
    engine = engine or get_engine()
    with engine.begin() as c:
        sid = ensure(c, name, title)
        if title is not None or description is not None:
            c.execute(sa.text("update scenarios set title = coalesce(:t, title), "
                              "description = coalesce(:d, description) where id = :i"),
                      {"t": title, "d": description, "i": sid})
        had = c.execute(sa.text("select dataset, key from scenario_removals where scenario_id = :i order by id"),
                        {"i": sid}).all()
        if removes is not None and [tuple(r) for r in had] != [tuple(r) for r in removes]:
            c.execute(sa.text("delete from scenario_removals where scenario_id = :i"), {"i": sid})
            if removes:
                c.execute(sa.text("insert into scenario_removals (scenario_id, dataset, key) values (:i, :d, :k)"),
                          [{"i": sid, "d": d, "k": k} for d, k in removes])
            c.execute(sa.text("insert into change_log (dataset_name, classes) values (:n, '{}')"),
                      {"n": f"scenario:{name}"})
    return sid


def list_scenarios(engine: sa.Engine | None = None) -> list[dict]:
    """Every scenario with its datasets and removals; the as-is model first."""
    engine = engine or get_engine()
    with engine.connect() as c:
        asis = c.execute(sa.text("select array_agg(name order by name) from datasets where scenario_id is null")).scalar()
        rows = c.execute(sa.text("""
            select s.id, s.name, s.title, s.description, s.created_at,
                   (select coalesce(array_agg(d.name order by d.name), '{}') from datasets d
                    where d.scenario_id = s.id) datasets,
                   (select coalesce(jsonb_agg(jsonb_build_object('dataset', r.dataset, 'key', r.key) order by r.id),
                                    '[]') from scenario_removals r where r.scenario_id = s.id) removes
            from scenarios s order by s.name""")).mappings().all()
    out = [{"name": "as-is", "title": "现状", "description": "the model as it is", "datasets": asis or [],
            "removes": []}]
    for r in rows:
        out.append({"name": r["name"], "title": r["title"], "description": r["description"],
                    "created_at": r["created_at"].isoformat(), "datasets": list(r["datasets"]),
                    "removes": r["removes"]})
    return out


def remove(name: str, engine: sa.Engine | None = None) -> None:
    """Delete a scenario with its datasets (their objects) and removals."""
    from .store import remove_dataset

    engine = engine or get_engine()
    with engine.connect() as c:
        resolve(c, name)
        names = c.execute(sa.text("select d.name from datasets d join scenarios s on s.id = d.scenario_id "
                                  "where s.name = :n"), {"n": name}).scalars().all()
    for d in names:
        remove_dataset(d, engine)
    with engine.begin() as c:
        c.execute(sa.text("delete from scenarios where name = :n"), {"n": name})
        c.execute(sa.text("insert into change_log (dataset_name, classes) values (:n, '{}')"),
                  {"n": f"scenario:{name}"})

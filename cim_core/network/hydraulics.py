"""The hydraulic model kept with a network dataset: what a simulation needs beyond the elements (options
and times, patterns, curves, controls, water-quality sources), in WNTR's dictionary form (SI units).

The elements' own hydraulic data (demands, elevations, roughness, pump and valve settings...) stay in their
city objects' attributes (`hydraulic`), so an edit to the network is an edit to the model.
"""
from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from psycopg.types.json import Jsonb

from cim_core.db import get_engine, id_array
from cim_core.errors import NotFoundError
from cim_core.store import dumps

PARTS = ("options", "patterns", "curves", "controls", "sources")


def _json(value) -> Jsonb:
    return Jsonb(value, dumps=lambda v: dumps(v).decode())


def store_model(dataset: str, units: str, model: dict, engine: sa.Engine | None = None) -> None:
    """Keep the model-wide parts of a hydraulic model with a dataset (replacing what it had)."""
    engine = engine or get_engine()
    with engine.begin() as c:
        ds = c.scalar(sa.text("select id from datasets where name = :n"), {"n": dataset})
        if ds is None:
            raise NotFoundError(f"no dataset named {dataset!r}", hint="`cim datasets` lists them")
        c.execute(sa.text("delete from hydraulic_models where dataset_id = :d"), {"d": ds})
        c.execute(sa.text("insert into hydraulic_models (dataset_id, units, options, patterns, curves, controls, "
                          "sources) values (:d, :u, :options, :patterns, :curves, :controls, :sources)"),
                  {"d": ds, "u": units, **{k: _json(model.get(k, {} if k == "options" else [])) for k in PARTS}})


def models_of(object_ids: Iterable[int], engine: sa.Engine | None = None) -> list[dict]:
    """The hydraulic models of the datasets these objects belong to, with their dataset's name and units,
    oldest dataset first."""
    engine = engine or get_engine()
    with engine.connect() as c:
        rows = c.execute(sa.text("""
            select d.name dataset, h.* from hydraulic_models h join datasets d on d.id = h.dataset_id
            where h.dataset_id in (select distinct dataset_id from city_objects where id = any(cast(:ids as bigint[])))
            order by d.id"""), {"ids": id_array(object_ids)}).mappings().all()
    return [dict(r) for r in rows]

"""The SQL reads of the network model: CJJ 61 colours, and the stored nodes and segments of a network."""
from __future__ import annotations

import sqlalchemy as sa

from cim_core import scenarios
from cim_core.db import id_array, storage_srid
from cim_core.errors import NotFoundError

CURRENT = "(o.valid_to is null or o.valid_to > current_date)"


def utility_materials(engine: sa.Engine) -> dict[str, list[dict]]:
    """CJJ 61 colours per utility, from the pipe_categories table, as mesh materials."""
    with engine.connect() as c:
        rows = c.execute(sa.text("select utility, name_en, color from pipe_categories")).all()
    return {u: [{"name": f"{u} ({name})", "color": [x / 255 for x in col] + [1.0]}] for u, name, col in rows}


def in_dataset(scenario_id: int | None, dataset: str = ":dataset_id") -> str:
    """SQL: the object belongs to the dataset (an SQL expression of its id), or (in a scenario) to one of the
    plan's own datasets."""
    if scenario_id is None:
        return f"o.dataset_id = {dataset}"
    plan = f"select id from datasets where scenario_id = {int(scenario_id)}"  # an id from scenarios.resolve()
    return f"(o.dataset_id = {dataset} or o.dataset_id in ({plan}))"


def _where(table: str, geom: str, utility: str | None, dataset_id: int | None,
           bbox: tuple[float, float, float, float] | None, scenario_id: int | None = None) -> str:
    # a named dataset is read as it is (a plan's too); else the as-is model's networks. In a scenario: the
    # scenario's model (cim_core.scenarios), a named dataset with what the plan removes and adds.
    conds = [CURRENT if dataset_id is not None and scenario_id is None else scenarios.current(scenario_id)]
    if utility is not None:
        conds.append(f"{table}.utility = :utility")
    if dataset_id is not None:
        conds.append(in_dataset(scenario_id))
    if bbox is not None:
        conds.append(f"{table}.{geom} && st_makeenvelope(:xmin, :ymin, :xmax, :ymax, :srid)")
    return " and ".join(conds)


def _attribute_columns(attributes: tuple[str, ...], prefix: str) -> tuple[str, dict[str, str]]:
    """Select-list entries for attributes (JSON values, labelled `attributes.NAME`), and their bound names."""
    cols = "".join(f', o.attributes -> cast(:{prefix}{i} as text) as "attributes.{a}"'
                   for i, a in enumerate(attributes))
    return cols, {f"{prefix}{i}": a for i, a in enumerate(attributes)}


def _columns(result: sa.CursorResult) -> dict[str, tuple]:
    keys = list(result.keys())
    rows = result.all()
    return dict(zip(keys, zip(*rows) if rows else [()] * len(keys)))


def network_rows(engine: sa.Engine, *, utility: str | None = None, dataset: str | None = None,
                 bbox: tuple[float, float, float, float] | None = None, geometry: bool = False,
                 node_attributes: tuple[str, ...] = (), segment_attributes: tuple[str, ...] = (),
                 scenario_id: int | None = None) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """Columns of the (nodes, segments) of the current network (of a scenario's model: `_where`), in object id
    order; nodes are those the filters select and those the selected segments reference.

    nodes: id, key, utility, node_type, x, y, ground_z, invert_z; segments: id, key, utility, from_node,
    to_node, length_m, start_invert, end_invert, diameter_mm, with geometry centerline (WKB); then
    `attributes.NAME` for each attribute asked for.
    """
    with engine.connect() as c:
        dataset_id = None
        if dataset is not None:
            dataset_id = c.scalar(sa.text("select id from datasets where name = :n"), {"n": dataset})
            if dataset_id is None:
                raise NotFoundError(f"no dataset named {dataset!r}", hint="`cim datasets` lists them")
        params: dict = {"utility": utility, "dataset_id": dataset_id, "srid": storage_srid(engine)}
        if bbox is not None:
            params.update(zip(("xmin", "ymin", "xmax", "ymax"), bbox))
        seg_attrs, p = _attribute_columns(segment_attributes, "sattr")
        params.update(p)
        segments = _columns(c.execute(sa.text(f"""
            select s.object_id id, o.key, s.utility, s.from_node, s.to_node, s.length_m, s.start_invert,
                   s.end_invert, s.diameter_mm{", st_asbinary(s.centerline) centerline" if geometry else ""}
                   {seg_attrs}
            from pipe_segments s join city_objects o on o.id = s.object_id
            where {_where("s", "centerline", utility, dataset_id, bbox, scenario_id)} order by s.object_id"""), params))
        node_attrs, p = _attribute_columns(node_attributes, "nattr")
        params.update(p)
        ends = segments["from_node"] + segments["to_node"]
        params["referenced"] = id_array(sorted({i for i in ends if i is not None}))
        nodes = _columns(c.execute(sa.text(f"""
            select n.object_id id, o.key, n.utility, n.node_type, st_x(n.geom) x, st_y(n.geom) y, n.ground_z,
                   n.invert_z{node_attrs}
            from pipe_nodes n join city_objects o on o.id = n.object_id
            where ({_where("n", "geom", utility, dataset_id, bbox, scenario_id)}) or n.object_id = any(cast(:referenced as bigint[]))
            order by n.object_id"""), params))
    return nodes, segments

"""What the model says around an alarm: its asset; the buildings and pipes near a gas alarm; the valves
that isolate the water main of a pressure alarm (the first valves met walking the network outward)."""
from __future__ import annotations

import sqlalchemy as sa

GAS_BUILDINGS_M = 50.0  # project choice: buildings an operator checks around a gas reading
GAS_PIPES_M = 30.0
NEAREST_NODE_M = 50.0

_ASSET = sa.text("select id, class, key, name from city_objects where id = :i")
_NEAR = sa.text("""
    select o.id, o.key, o.name, round(st_distance(o.footprint, st_force2d(s.geom))::numeric, 1)::float distance_m
    from sensors s join city_objects o on o.class = :cls and st_dwithin(o.footprint, st_force2d(s.geom), :d)
    where s.object_id = :s order by distance_m limit 20""")
_PIPES = sa.text("""
    select p.object_id id, p.utility, round(st_distance(st_force2d(p.centerline), st_force2d(s.geom))::numeric, 1)::float
           distance_m
    from sensors s join pipe_segments p on st_dwithin(st_force2d(p.centerline), st_force2d(s.geom), :d)
    where s.object_id = :s order by distance_m limit 20""")
_START = sa.text("""
    select n.object_id from sensors s join pipe_nodes n on n.object_id = s.asset_id where s.object_id = :s
    union select unnest(array[g.from_node, g.to_node]) from sensors s join pipe_segments g
      on g.object_id = s.asset_id where s.object_id = :s""")
_NEAREST = sa.text("""
    select n.object_id from sensors s join pipe_nodes n on n.utility = 'water'
      and st_dwithin(n.geom, s.geom, :d) where s.object_id = :s order by st_distance(n.geom, s.geom) limit 1""")
# Walk the water network from the start nodes; a valve ends the walk (it is where the main is shut).
_VALVES = sa.text("""
    with recursive walk(node) as (
        select unnest(cast(:start as bigint[]))
        union
        select case when g.from_node = w.node then g.to_node else g.from_node end
        from walk w join pipe_nodes n on n.object_id = w.node
        join pipe_segments g on g.utility = 'water' and (g.from_node = w.node or g.to_node = w.node)
        where n.node_type <> 'valve' or w.node = any(cast(:start as bigint[])))
    select o.id, o.key from walk w join pipe_nodes n on n.object_id = w.node join city_objects o on o.id = w.node
    where n.node_type = 'valve' and not w.node = any(cast(:start as bigint[])) order by o.key""")


def alarm_context(conn: sa.Connection, sensor: dict, rule: str) -> dict:
    """The context stored with a new alarm."""
    ctx: dict = {"sensor": sensor["code"], "kind": sensor["kind"]}
    if sensor["asset_id"]:
        a = conn.execute(_ASSET, {"i": sensor["asset_id"]}).first()
        ctx["asset"] = dict(a._mapping) if a else None
    if sensor["kind"] == "gas":
        ctx["buildings_within_m"] = GAS_BUILDINGS_M
        ctx["buildings"] = [dict(r._mapping) for r in
                            conn.execute(_NEAR, {"s": sensor["id"], "cls": "building", "d": GAS_BUILDINGS_M})]
        ctx["pipes_within_m"] = GAS_PIPES_M
        ctx["pipes"] = [dict(r._mapping) for r in conn.execute(_PIPES, {"s": sensor["id"], "d": GAS_PIPES_M})]
    if sensor["kind"] in ("pressure", "flow"):
        start = [r[0] for r in conn.execute(_START, {"s": sensor["id"]}) if r[0] is not None]
        if not start:
            start = [r[0] for r in conn.execute(_NEAREST, {"s": sensor["id"], "d": NEAREST_NODE_M})]
        ctx["isolation_valves"] = [dict(r._mapping) for r in conn.execute(_VALVES, {"start": start})] if start else []
    return ctx

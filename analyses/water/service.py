"""Who the water network serves: each current building is served by its nearest junction of the water
network within reach (a service connection), unless its `water_service` attribute says it has none (an
urban village not yet on the public network). Its demand is its floor area (footprint x floors) times the
daily demand per m2 of its use (data/demand.csv, configurable, with sources).

Burst isolation reads the buildings cut off from here, the EPANET export the junction demands, and
`unserved` lists the buildings the public network does not reach.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from scipy.spatial import cKDTree

from cim_core.network.graph import Network

DATA = Path(__file__).parent / "data"
REACH_M = 80.0  # a service connection longer than this is taken as no connection (assumed; unconfirmed)
NO_SERVICE = ("none", "well", "unconnected")  # `water_service` values of a building off the public network
_NOT_CONNECTABLE = ("valve", "reservoir", "tank")


@lru_cache
def demand_table(path: str | None = None) -> dict[str, float]:
    """Litres per m2 of floor per day by building use (lower case); `default` for the rest."""
    with open(path or DATA / "demand.csv", newline="", encoding="utf-8") as f:
        return {r["use"].lower(): float(r["litres_per_m2_day"]) for r in csv.DictReader(f)}


@dataclass
class Service:
    """Buildings near a network: object id, name, the node index serving each (-1: none), demand (m3/s)."""
    building: np.ndarray
    name: list[str | None]
    node: np.ndarray
    demand_m3s: np.ndarray
    off_network: np.ndarray  # flagged as having no public supply

    def node_demand(self, n_nodes: int) -> np.ndarray:
        served = self.node >= 0
        return np.bincount(self.node[served], weights=self.demand_m3s[served], minlength=n_nodes)

    def at(self, nodes: np.ndarray) -> dict:
        """The buildings served by these node indices, and their demand."""
        hit = np.isin(self.node, nodes) & (self.node >= 0)
        return {"buildings": self.building[hit].tolist(), "building_demand_m3s": float(self.demand_m3s[hit].sum())}


def _buildings(engine: sa.Engine, lo: np.ndarray, hi: np.ndarray) -> list:
    with engine.connect() as c:
        return c.execute(sa.text("""
            select o.id, o.name, st_x(p), st_y(p), st_area(o.footprint) * greatest(coalesce(
                     case when o.attributes->>'floors' ~ '^[0-9.]+$' then (o.attributes->>'floors')::float end, 1), 1),
                   lower(coalesce(o.attributes->>'use', 'default')), lower(coalesce(o.attributes->>'water_service', ''))
            from city_objects o, st_pointonsurface(o.footprint) p
            where o.class = 'building' and o.footprint is not null
              and (o.valid_to is null or o.valid_to > current_date)
              and o.footprint && st_makeenvelope(:x0, :y0, :x1, :y1, st_srid(o.footprint))"""),
                         {"x0": lo[0], "y0": lo[1], "x1": hi[0], "y1": hi[1]}).all()


def service(engine: sa.Engine, net: Network, *, reach_m: float = REACH_M, demand: str | None = None) -> Service:
    """The buildings within reach of the network's box, each with its serving node (or -1) and demand."""
    ok = ~np.isin(net.node_type.astype(str), _NOT_CONNECTABLE)
    cand = np.flatnonzero(ok)
    empty = Service(np.empty(0, np.int64), [], np.empty(0, int), np.empty(0), np.empty(0, bool))
    if not len(cand):
        return empty
    xy = net.node_xy[cand]
    rows = _buildings(engine, xy.min(axis=0) - reach_m, xy.max(axis=0) + reach_m)
    if not rows:
        return empty
    table = demand_table(demand)
    dist, k = cKDTree(xy).query(np.array([(r[2], r[3]) for r in rows], float), distance_upper_bound=reach_m)
    off = np.array([r[6] in NO_SERVICE for r in rows], bool)
    node = np.where(np.isfinite(dist) & ~off, cand[np.minimum(k, len(cand) - 1)], -1)
    litres = np.array([float(r[4] or 0) * table.get(r[5], table["default"]) for r in rows])
    return Service(np.array([r[0] for r in rows], np.int64), [r[1] for r in rows], node,
                   litres / 1000 / 86400, off)


def unserved(engine: sa.Engine, *, utility: str = "water", reach_m: float = REACH_M) -> dict:
    """Buildings the public water network does not serve: flagged off the network, or with no junction
    within reach. Counted and listed (object ids) for a query or an indicator."""
    net = Network.load(engine, utility=utility)
    s = service(engine, net, reach_m=reach_m)
    none = s.node < 0
    return {"buildings": s.building[none].tolist(), "count": int(none.sum()), "flagged": int(s.off_network.sum()),
            "served": int((~none).sum()), "reach_m": reach_m}

"""The model's objects an indicator set names, read from PostGIS into `Layer`s, and the units of each level."""
from __future__ import annotations

import numpy as np
import shapely
import sqlalchemy as sa

from analyses.alarms.coverage import monitored
from cim_core import scenarios

from .definitions import IndicatorSet, Selector
from .kinds import Layer, Unit
from .walking import WalkNetwork

# Pipe segments and nodes: their typed columns filter like attributes (utility, material, install_year,
# node_type...); a line is `monitored` by the live monitoring's rule (a sensor on it or on one of its ends).
PIPE_ATTRS = ("o.attributes || jsonb_strip_nulls(jsonb_build_object('utility', coalesce(s.utility, n.utility), "
              "'material', s.material, 'install_year', s.install_year, 'diameter_mm', s.diameter_mm, "
              "'pressure_class', s.pressure_class, 'node_type', n.node_type, 'monitored', "
              f"case when s.object_id is not null and {monitored('s')} then true end))")
GEOM = "st_asbinary(coalesce(st_force2d(s.centerline), o.footprint))"
SELECT = f"""
    select o.id, coalesce(o.name, o.key) as name, {PIPE_ATTRS} as attrs, {GEOM} as wkb
    from city_objects o left join pipe_segments s on s.object_id = o.id
         left join pipe_nodes n on n.object_id = o.id
    where o.class = :cls and coalesce(s.centerline, o.footprint) is not null"""


# Waterlogging points (严重易涝积水点): the flooding manholes of the latest design-storm run (analyses.drainage.storm
# stores them as `flooding` findings of a `drainage-storm` run).
FLOODING = """
    select o.id, coalesce(o.name, o.key) as name, f.details as attrs, st_asbinary(st_force2d(n.geom)) as wkb
    from qa_findings f join city_objects o on o.id = f.object_id join pipe_nodes n on n.object_id = o.id
    where f.rule = 'flooding' and f.run_id = (select max(id) from analysis_runs where analysis = 'drainage-storm')
    order by o.id"""


def _where(sel: Selector) -> tuple[str, dict]:
    sql, params = [], {"cls": sel.cls}
    for k, (key, val) in enumerate(sel.where.items()):
        vals = [str(v).lower() if isinstance(v, bool) else str(v) for v in (val if isinstance(val, list) else [val])]
        sql.append(f"({PIPE_ATTRS}) ->> :k{k} = any(:v{k})")
        params |= {f"k{k}": key, f"v{k}": vals}
    for k, key in enumerate(sel.has):
        sql.append(f"o.attributes ? :h{k}")
        params[f"h{k}"] = key
    for k, key in enumerate(sel.lacks):
        sql.append(f"not o.attributes ? :l{k}")
        params[f"l{k}"] = key
    if sel.min_lod is not None:
        sql.append("o.lod >= :lod")
        params["lod"] = sel.min_lod
    if sel.min_area is not None:
        sql.append("st_area(o.footprint) >= :amin")
        params["amin"] = sel.min_area
    if sel.max_area is not None:
        sql.append("st_area(o.footprint) < :amax")
        params["amax"] = sel.max_area
    return "".join(f" and {s}" for s in sql), params


def read_extent(conn: sa.Connection, sel: Selector, scenario_id: int | None = None) -> tuple | None:
    """The exact bounds of a selector's objects. The cast to box3d computes them from the coordinates in
    double precision; the database's own extents (st_extent, the index boxes) are rounded to single."""
    extra, params = _where(sel)
    box = f"coalesce(st_force2d(s.centerline), o.footprint)::box3d"
    sql = SELECT.replace(f"o.id, coalesce(o.name, o.key) as name, {PIPE_ATTRS} as attrs, {GEOM} as wkb",
                         f"min(st_xmin({box})), min(st_ymin({box})), max(st_xmax({box})), max(st_ymax({box}))")
    row = conn.execute(sa.text(sql + extra + f" and {scenarios.current(scenario_id)}"), params).one()
    return None if row[0] is None else tuple(float(v) for v in row)


def read_layer(conn: sa.Connection, sel: Selector, scenario_id: int | None = None) -> Layer:
    """The objects of a selector in the model of a scenario (None: as-is; cim_core.scenarios)."""
    extra, params = _where(sel)
    extra += f" and {scenarios.current(scenario_id)}"
    rows = conn.execute(sa.text(FLOODING if sel.cls == "waterlogging_point" else SELECT + extra + " order by o.id"),
                        params).all()
    return Layer(np.array([r.id for r in rows], dtype=np.int64), [r.name for r in rows],
                 shapely.from_wkb([bytes(r.wkb) for r in rows]) if rows else np.zeros(0, dtype=object),
                 [r.attrs for r in rows])


class ModelInputs:
    """The layers of an indicator set's classes, read once per run."""

    def __init__(self, iset: IndicatorSet, engine: sa.Engine, year: int, scenario_id: int | None = None):
        self.iset, self.engine, self.cell_m, self.year = iset, engine, iset.cell_m, year
        self.scenario_id = scenario_id
        self._layers: dict[str, Layer] = {}
        self._walk: WalkNetwork | None | bool = False

    def layer(self, name: str) -> Layer:
        if name not in self._layers:
            with self.engine.connect() as c:
                self._layers[name] = read_layer(c, self.iset.classes[name], self.scenario_id)
        return self._layers[name]

    def selector_keys(self, name: str) -> set[str]:
        return set(self.iset.classes[name].where)

    def walk(self) -> WalkNetwork | None:
        """The walking network of the set's `streets` class (None when the model has no streets)."""
        if self._walk is False:
            streets = self.layer("streets") if "streets" in self.iset.classes else None
            self._walk = WalkNetwork.from_lines(streets.geoms) if streets is not None and len(streets) else None
        return self._walk

    def units(self, level: str) -> list[Unit]:
        """The units of a level; the district is one unit: the set's district object, else the extent of the
        land classes (the built-up area)."""
        sel = self.iset.units.get(level)
        if sel is not None:
            with self.engine.connect() as c:
                lay = read_layer(c, sel, self.scenario_id)
            if len(lay) or level != "district":
                return [Unit(level, str(lay.attrs[i].get("id", lay.ids[i])), lay.names[i], lay.geoms[i],
                             int(lay.ids[i])) for i in range(len(lay))]
        if level != "district":
            return []
        if "built_up" not in self.iset.classes:
            return []
        if "built_up" in self._layers:
            land = self._layers["built_up"]
            bounds = tuple(shapely.total_bounds(land.geoms)) if len(land) else None
        else:  # only its extent is needed: the geometries, without names and attributes
            with self.engine.connect() as c:
                bounds = read_extent(c, self.iset.classes["built_up"], self.scenario_id)
        return [] if bounds is None else [Unit("district", "district", "城区", shapely.box(*bounds))]

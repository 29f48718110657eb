"""Running a SWMM model (the EPA SWMM 5 engine through swmm-toolkit) and reading its results per node and link.

Per node: peak depth, surcharge duration, flooding volume and duration; per conduit: peak flow and the
capacity ratio (peak flow over the full-pipe flow by Manning's formula). Volumes and flows are in the
model's units (FLOW_UNITS) unless `to_si` converts them (m3, m3/s, m).
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cim_core.errors import InputError

FEET = 0.3048
# Flow units: m3/s per model flow unit, and m3 per flooding volume unit (SWMM reports volume in ft3 or
# m3 by the length unit; the toolkit's node statistics follow the same rule).
FLOW_SI = {"CFS": FEET ** 3, "GPM": 0.00378541 / 60, "MGD": 3785.41 / 86400, "CMS": 1.0, "LPS": 0.001,
           "MLD": 1000 / 86400}
MANNING_K = {"SI": 1.0, "US": 1.486}


@dataclass
class Results:
    flow_units: str
    nodes: dict[str, dict] = field(default_factory=dict)
    links: dict[str, dict] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def _full_flow(n: float, geom: tuple[str, float, float], slope: float, us: bool) -> float:
    """Manning full flow of a circular or rectangular closed section (model units)."""
    shape, g1, g2 = geom
    if shape == "CIRCULAR":
        area, radius = math.pi * g1 ** 2 / 4, g1 / 4
    elif shape.startswith("RECT") and g2 > 0:
        area, radius = g1 * g2, g1 * g2 / (2 * (g1 + g2))
    else:
        return math.nan
    return MANNING_K["US" if us else "SI"] / n * area * radius ** (2 / 3) * math.sqrt(abs(slope)) if n else math.nan


# Seconds of model time per return of the engine to Python: the run goes to its end in C (swmm_stride), which
# gives the same statistics as stepping one routing step at a time in Python, much faster.
STRIDE_S = 30 * 86400
FLOW_UNITS = ("CFS", "GPM", "MGD", "CMS", "LPS", "MLD")  # the engine's flow unit codes, in order
# The engine is one global project per process: runs from several threads (the API) take turns.
_ENGINE = threading.Lock()


def simulate(inp: str | Path) -> Results:
    """Run a model to its end and collect the per-object statistics. The EPA SWMM 5 engine is driven through
    swmm-toolkit directly (what pyswmm wraps): no binary results file is written and the statistics are read
    from the engine's structures, the same values as pyswmm's `statistics` (tests/test_drainage_swmm.py)."""
    from swmm.toolkit import solver

    inp = Path(inp)
    rpt = inp.with_suffix(".rpt")
    with _ENGINE:
        try:
            solver.swmm_open(str(inp), str(rpt), str(inp.with_suffix(".out")))
            try:
                solver.swmm_start(0)
                while solver.swmm_stride(STRIDE_S) > 0:
                    pass
                res = Results(FLOW_UNITS[solver.simulation_get_unit(1)])
                _collect(res)
                solver.swmm_end()
            finally:
                solver.swmm_close()
        except Exception as exc:  # noqa: BLE001  the toolkit raises bare Exceptions; its report file says why
            lines = [ln.strip() for ln in rpt.read_text(errors="replace").splitlines() if "ERROR" in ln] \
                if rpt.exists() else []
            raise InputError(f"{inp}: SWMM could not run the model: {lines[0] if lines else exc}") from None
    return res


def _collect(res: Results) -> None:
    """Per-node and per-conduit statistics of a finished run (before swmm_end frees them), by object index."""
    from swmm.toolkit import solver
    from swmm.toolkit.shared_enum import LinkType, NodeType, ObjectType

    node, link = ObjectType.NODE.value, ObjectType.LINK.value
    for i in range(solver.project_get_count(node)):
        st = solver.node_get_stats(i)
        res.nodes[solver.project_get_id(node, i)] = {
            "peak_depth": st.maxDepth, "surcharge_hours": st.timeSurcharged, "flooding_volume": st.volFlooded,
            "flooding_hours": st.timeFlooded, "peak_inflow": st.maxInflow,
            "outfall": solver.node_get_type(i) is NodeType.OUTFALL}
    for i in range(solver.project_get_count(link)):
        if solver.link_get_type(i) is not LinkType.CONDUIT:
            continue
        st = solver.link_get_stats(i)
        res.links[solver.project_get_id(link, i)] = {
            "peak_flow": st.maxFlow, "peak_depth": st.maxDepth, "peak_velocity": st.maxVeloc,
            "surcharge_hours": st.timeSurcharged}


def capacity_ratios(res: Results, conduits: dict[str, tuple[float, tuple[str, float, float], float]]) -> None:
    """Add the capacity ratio (peak / full flow) to the conduits: name -> (n, (shape, geom1, geom2), slope)."""
    us = res.flow_units in ("CFS", "GPM", "MGD")
    per_cube = (FEET ** 3 if us else 1.0) / FLOW_SI[res.flow_units]  # flow units per (length unit)^3/s
    for nm, (n, geom, slope) in conduits.items():
        if nm in res.links:
            full = _full_flow(n, geom, slope, us) * per_cube
            res.links[nm]["capacity_ratio"] = res.links[nm]["peak_flow"] / full if full and math.isfinite(full) \
                else None

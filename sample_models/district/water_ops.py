"""What water supply operations need of the sample district's water network (issue 14): valve statuses as
a utility's records have them (most open, a few seized or missing in the field), and the district's source,
the node nearest the south-west corner, where the main from the waterworks enters (a reservoir node).

Statuses come from a hash of the node id, so they follow the seed without drawing from the generator's
random stream (the rest of the district stays as it was).
"""
from __future__ import annotations

import zlib

import numpy as np

SEIZED_PER_MILLE = 50  # valves found seized on exercising (5 %)
MISSING_PER_MILLE = 30  # valves in the records but not found in the field (3 %)


def valve_status(node_ids: np.ndarray, node_type: np.ndarray) -> np.ndarray:
    """`status` of every node: open / seized / missing for valves, None for the others."""
    h = np.array([zlib.crc32(str(i).encode()) % 1000 for i in node_ids])
    status = np.where(h < SEIZED_PER_MILLE, "seized", np.where(h < SEIZED_PER_MILLE + MISSING_PER_MILLE,
                                                                "missing", "open")).astype(object)
    status[node_type != "valve"] = None
    return status


def with_source(node_xy: np.ndarray, node_type: np.ndarray) -> np.ndarray:
    """Node types with the junction nearest the south-west corner made the network's source (reservoir)."""
    out = node_type.copy()
    junctions = np.flatnonzero(node_type == "junction")
    if len(junctions):
        corner = node_xy.min(axis=0)
        out[junctions[np.argmin(np.linalg.norm(node_xy[junctions] - corner, axis=1))]] = "reservoir"
    return out

"""Deterministic generator of a sample district: Zhumadian's central district (驻马店市中心城区).

`generate(out, scale=1, seed=7)` writes district.gpkg (roads, rivers, river_banks, landuse, compounds,
buildings, green, facilities, pipes, pipe_nodes; EPSG:4547), ifc/*.ifc (IFC4 buildings standing on
footprints of the buildings layer) and manifest.json (each file and layer with counts, the import that
loads it and the equivalent `cim import` command). `load(folder)` imports what is not loaded yet.
"""

from .generator import dataset_of, generate
from .manifest import ImportEntry, entries, is_current, load

__all__ = ["ImportEntry", "dataset_of", "entries", "generate", "is_current", "load"]

"""3D Tiles 1.1 of the CIM: a builder (static export and the service's cache) and the /tiles router."""
from .builder import BuildReport, TreeOptions, build
from .source import LAYERS

__all__ = ["LAYERS", "BuildReport", "TreeOptions", "build"]

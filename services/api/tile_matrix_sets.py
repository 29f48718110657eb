"""The tile matrix sets of the vector tiles (OGC Two Dimensional Tile Matrix Set 2.0): WebMercatorQuad for web
maps, and a quad in the storage CRS where that CRS is projected (CGCS2000 Gauss-Kruger for Zhumadian), so
that a GIS client of the city's own grid gets tiles without reprojection and the database none per tile.

The storage quad covers the CRS's area of use (EPSG's, through PROJ) with one square tile at matrix 0 whose
side is 256 cells of a power of two metres, so that some matrix has 1 m cells exactly (matrix 14 for EPSG:4547).
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import sqlalchemy as sa
from pyproj import CRS, Transformer

from cim_core.errors import InputError, NotFoundError

WEB_MERCATOR = "WebMercatorQuad"
ORIGIN = 20037508.3427892  # half the earth's circumference in EPSG:3857 metres
TILE = 256  # cells across a tile (the matrices' tileWidth)
WMTS_PIXEL = 0.00028  # metres per pixel in scale denominators (OGC 17-083r4, 6.1)


class Quad(NamedTuple):
    """A tile matrix set of square tiles, one at matrix 0, each halving into four at the next matrix."""
    id: str
    title: str
    srid: int
    left: float  # easting of the matrices' top-left corner
    top: float  # northing of that corner
    side: float  # the matrix-0 tile's side in CRS units (metres)
    max_zoom: int
    uri: str | None = None  # the registered definition, for the well-known set

    def check(self, z: int, row: int, col: int) -> None:
        """400 unless (z, row, col) is a tile of this set."""
        if not 0 <= z <= self.max_zoom:
            raise InputError(f"tileMatrix {z} is out of range: {self.id} has matrices 0 to {self.max_zoom}")
        n = 2 ** z
        if not (0 <= row < n and 0 <= col < n):
            raise InputError(f"tile row {row}, column {col} is outside matrix {z} (rows and columns 0 to {n - 1})")

    def bounds(self) -> sa.ColumnElement:
        """The matrix-0 tile as ST_TileEnvelope's bounds."""
        return sa.func.ST_MakeEnvelope(self.left, self.top - self.side, self.left + self.side, self.top, self.srid)

    def lonlat_box(self, z: int, row: int, col: int, margin: float) -> tuple[float, float, float, float]:
        """A tile grown by `margin` tiles on each side, as (west, south, east, north) in degrees."""
        size = self.side / 2 ** z
        x0, x1 = self.left + (col - margin) * size, self.left + (col + 1 + margin) * size
        y0, y1 = self.top - (row + 1 + margin) * size, self.top - (row - margin) * size
        if self.srid == 3857:
            lon0, lon1 = (math.degrees(x / 6378137.0) for x in (x0, x1))
            lat0, lat1 = (math.degrees(math.atan(math.sinh(y / 6378137.0))) for y in (y0, y1))
            return lon0, lat0, lon1, lat1
        return _to_lonlat(self.srid).transform_bounds(x0, y0, x1, y1)

    def doc(self) -> dict:
        """The JSON encoding (OGC 17-083r4), corner and axes in the CRS's own axis order."""
        crs = CRS.from_epsg(self.srid)
        axes = crs.axis_info
        corner = [self.top, self.left] if axes[0].direction == "north" else [self.left, self.top]
        unit = axes[0].unit_conversion_factor
        matrices = [{"id": str(z), "scaleDenominator": self.side / TILE / 2 ** z * unit / WMTS_PIXEL,
                     "cellSize": self.side / TILE / 2 ** z, "cornerOfOrigin": "topLeft", "pointOfOrigin": corner,
                     "tileWidth": TILE, "tileHeight": TILE, "matrixWidth": 2 ** z, "matrixHeight": 2 ** z}
                    for z in range(self.max_zoom + 1)]
        doc = {"id": self.id, "title": self.title, "crs": f"http://www.opengis.net/def/crs/EPSG/0/{self.srid}",
               "orderedAxes": [a.abbrev for a in axes], "tileMatrices": matrices}
        if self.uri:
            doc.update(uri=self.uri, wellKnownScaleSet="http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible")
        return doc


WEB_QUAD = Quad(WEB_MERCATOR, "Google Maps Compatible for the World", 3857, -ORIGIN, ORIGIN, 2 * ORIGIN, 24,
                "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad")


@lru_cache(maxsize=8)
def _to_lonlat(srid: int) -> Transformer:
    return Transformer.from_crs(srid, 4326, always_xy=True)


@lru_cache(maxsize=8)
def storage_quad(srid: int) -> Quad | None:
    """The quad of a projected storage CRS over its area of use; None for a geographic one or Web Mercator."""
    crs = CRS.from_epsg(srid)
    if not crs.is_projected or srid == 3857 or crs.area_of_use is None:
        return None
    x0, y0, x1, y1 = Transformer.from_crs(4326, srid, always_xy=True).transform_bounds(*crs.area_of_use.bounds)
    side = TILE * 2 ** math.ceil(math.log2((max(x1 - x0, y1 - y0) + 2000) / TILE))
    max_zoom = int(math.log2(side / TILE)) + 6  # down to 1/64 m cells
    return Quad(f"EPSG{srid}Quad", f"{crs.name}: quad tiles of the storage CRS", srid,
                math.floor(x0 / 1000) * 1000, math.ceil(y1 / 1000) * 1000, side, max_zoom)


def quads(srid: int) -> list[Quad]:
    """The tile matrix sets served for a database of this storage CRS."""
    return [WEB_QUAD, *filter(None, [storage_quad(srid)])]


def quad(tms: str, srid: int) -> Quad:
    """The tile matrix set called `tms`, or 404."""
    for q in quads(srid):
        if q.id == tms:
            return q
    raise NotFoundError(f"no tile matrix set {tms[:60]!r}",
                        hint="tile matrix sets: " + ", ".join(q.id for q in quads(srid)))

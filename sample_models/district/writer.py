"""Chunked GeoPackage layer writer over pyogrio's numpy API (no geopandas, bounded memory)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyogrio.raw
import shapely

from .layout import CRS

CHUNK_FEATURES = 100_000  # features buffered per layer before they are appended (appends cost more per row)


class LayerWriter:
    """Buffers features of one layer and appends them to the GeoPackage in chunks.

    fields: name -> 'str' | 'int' | 'float'. Nulls: None in a str column, NaN in an int or float column.
    """

    def __init__(
        self,
        path: Path,
        layer: str,
        geometry_type: str,
        fields: dict[str, str],
        progress: Callable[[str, int], None] | None = None,
    ):
        self.path, self.layer, self.geometry_type, self.fields = path, layer, geometry_type, fields
        self.progress = progress
        self.count = 0
        self._written = False
        self._geoms: list[np.ndarray] = []
        self._cols: dict[str, list[np.ndarray]] = {k: [] for k in fields}
        self._buffered = 0

    def add(self, geoms: np.ndarray, **cols) -> None:
        n = len(geoms)
        if n == 0:
            return
        if set(cols) != set(self.fields):
            raise ValueError(f"{self.layer}: columns {sorted(cols)} != fields {sorted(self.fields)}")
        self._geoms.append(shapely.to_wkb(geoms))
        for k, v in cols.items():
            self._cols[k].append(
                np.broadcast_to(np.asarray(v, dtype=object if self.fields[k] == "str" else None), (n,))
            )
        self._buffered += n
        self.count += n
        if self._buffered >= CHUNK_FEATURES:
            self.flush()

    def flush(self) -> None:
        if not self._buffered and self._written:
            return
        data, masks = [], []
        for k, kind in self.fields.items():
            v = np.concatenate(self._cols[k]) if self._cols[k] else np.array([], dtype=object)
            mask = None
            if kind == "int":
                v = v.astype(float)
                mask = np.isnan(v)
                v = np.where(mask, 0, v).astype(np.int64)
            elif kind == "float":
                v = v.astype(np.float64)
            else:
                v = v.astype(object)
            data.append(v)
            masks.append(mask)
        geoms = np.concatenate(self._geoms) if self._geoms else np.array([], dtype=object)
        pyogrio.raw.write(
            str(self.path),
            geoms,
            data,
            list(self.fields),
            field_mask=masks,
            layer=self.layer,
            driver="GPKG",
            geometry_type=self.geometry_type,
            crs=CRS,
            append=self._written,
        )
        self._written = True
        self._geoms, self._cols, self._buffered = [], {k: [] for k in self.fields}, 0
        if self.progress:
            self.progress(self.layer, self.count)

    def close(self) -> int:
        self.flush()
        return self.count

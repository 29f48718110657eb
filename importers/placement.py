"""Placing a source's coordinates in the storage CRS: a network model drawn in local coordinates is scaled
and shifted (EPANET/SWMM --scale and --offset) before it is transformed."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import sqlalchemy as sa

from cim_core.crs import check_extent, crs_name, parse_crs, transform
from cim_core.db import storage_srid
from cim_core.errors import GeoreferenceError


def place(path: Path, x: np.ndarray, y: np.ndarray, crs: str | None, engine: sa.Engine, *,
          offset: tuple[float, float] | None = None, scale: float = 1.0,
          local_hint: bool = False) -> tuple[np.ndarray, np.ndarray, str]:
    """Source coordinates (scaled, then shifted by `offset`, in the source CRS; default the storage CRS)
    into the storage CRS, refusing an extent outside the storage CRS's area of use; with the name of the
    source CRS. local_hint: the refusal suggests --offset, for models drawn in local coordinates."""
    srid = storage_srid(engine)
    src = parse_crs(crs) if crs else parse_crs(srid)
    x = np.asarray(x, float) * scale + (offset[0] if offset else 0.0)
    y = np.asarray(y, float) * scale + (offset[1] if offset else 0.0)
    if len(x):
        try:
            check_extent(str(path), src, (x.min(), y.min(), x.max(), y.max()), srid)
        except GeoreferenceError:
            if not local_hint:
                raise
            raise GeoreferenceError(
                f"{path}: coordinates ({x.min():.1f}, {y.min():.1f})..({x.max():.1f}, {y.max():.1f}) "
                f"taken as {crs_name(src)} lie outside the area of use of the storage CRS EPSG:{srid}",
                hint="a network drawn in local coordinates needs --offset E,N (in the CRS of --crs) to place "
                     "it"
            ) from None
    if src.equals(parse_crs(srid)):
        return x, y, crs_name(src)
    tx, ty = transform(crs_name(src) if src.to_authority() else src.to_wkt(), srid, x, y)
    return np.asarray(tx), np.asarray(ty), crs_name(src)

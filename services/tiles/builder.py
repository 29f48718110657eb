"""Build 3D Tiles 1.1 tilesets of the CIM layers from the database, fully or incrementally.

Tree: a quadtree on a power-of-two grid of the storage CRS, split where a quad holds more features or
triangles than a leaf may; features belong to the quad of their bounding-box centre. Because the grid
is fixed, a change touches only the quads that intersect its region (and their ancestors): an
incremental build re-encodes those and keeps every other tile, file and ETag as it was.

Content: leaves hold full meshes; parents hold generalised content (see docs/tiles.md) with
refine REPLACE and a geometric error that is the largest deviation the generalisation made.
Each tile has its own east-north-up frame at its quad centre; tile transforms are relative to
the parent's frame, as 3D Tiles composes them.

Output: a local folder, or an s3:// prefix (see target.py); restricted layers are left out of object
storage unless asked for, since a bucket cannot check API keys.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
import sqlalchemy as sa

from cim_core.crs import to_ecef, to_lonlat
from cim_core.db import get_engine, storage_srid
from cim_core.errors import InputError
from cim_core.settings import get_settings
from services.auth import is_restricted

from . import glb
from .mass import block_masses
from .source import LAYER_CLASSES, LAYERS, LOADERS, LOD1_COLORS, Feature, prisms, tube_meshes
from .target import Bucket, Folder, open_target

# Per layer: the metadata class of its features and their properties (name, type).
CLASSES = {
    "buildings": ("building", [("id", "UINT32"), ("class", "STRING"), ("name", "STRING"), ("height", "FLOAT32"),
                               ("floors", "UINT16"), ("use", "STRING"), ("build_year", "INT16")]),
    "bim": ("element", [("id", "UINT32"), ("class", "STRING"), ("name", "STRING"), ("ifc_class", "STRING"),
                        ("global_id", "STRING"), ("storey_id", "UINT32"), ("storey_name", "STRING"),
                        ("building_id", "UINT32")]),
    "pipes": ("pipe", [("id", "UINT32"), ("class", "STRING"), ("name", "STRING"), ("utility", "STRING"),
                       ("diameter_mm", "FLOAT32"), ("material", "STRING"), ("install_year", "INT16"),
                       ("depth", "FLOAT32"), ("node_type", "STRING")]),
    "ground": ("ground", [("id", "UINT32"), ("class", "STRING"), ("name", "STRING"), ("kind", "STRING"),
                          ("area_m2", "FLOAT32")]),
}
DESCRIPTIONS = {"id": "city_objects.id: the id of the feature in the API",
                "depth": "metres below ground (mean of the two ends for a segment)",
                "storey_id": "0 where the element has no storey", "building_id": "0 where unknown"}
# Layers of the opening view whose colours go into the vertices (COLOR_0): a tile's opaque surfaces are one
# draw call, not one per colour (the ground's root had 10, one per land-use class, road and water colour).
VERTEX_COLORED = ("buildings", "ground")
# Layers drawn without light: the map on the ground shows its style table's colours, as the 2D map's vector
# tiles do, and a software renderer shades its many overlapping surfaces at a fraction of the cost.
UNLIT = ("ground",)
# A parent tile keeps only simplified mains: fewer tube sides than leaves.
PARENT_TUBE_SIDES = 4
EPS_M = 0.5          # padding of bounding regions, metres (earth curvature along edges, rounding)
EARTH_R = 6_371_000.0


# Bump when the cache layout (state.json, tile files) changes, so old caches are rebuilt whole.
STATE_FORMAT = 4  # 2: extras.layers with restriction flags, every class property in each table; 3: merged mass;
# 4: linear colours, the ground unlit


@dataclass
class TreeOptions:
    leaf_features: int = 300
    leaf_triangles: int = 60_000
    parent_features: int = 5_000
    parent_triangles: int = 100_000
    # like a mip pyramid: a parent draws about this share of what its children draw (the largest features),
    # so all parents together add about a third to the leaves
    parent_share: float = 0.25
    max_depth: int = 16
    meshopt: bool = True  # EXT_meshopt_compression on top of quantisation: about 3x smaller content


@dataclass
class LayerReport:
    layer: str
    features: int = 0
    tiles: int = 0
    rebuilt: int = 0
    reused: int = 0
    bytes: int = 0
    content_bytes: int = 0
    seconds: float = 0.0
    skipped: bool = False
    withheld: bool = False  # restricted: not written to object storage (include_restricted was not given)


@dataclass
class BuildReport:
    out: Path | str  # the folder, or the s3:// URL
    vertical_offset: float
    change_id: int
    layers: list[LayerReport] = field(default_factory=list)


# ---------------------------------------------------------------- frames
def enu_frame(srid: int, x: float, y: float) -> np.ndarray:
    """4x4 east-north-up (at ellipsoid height 0 over storage point x, y) to EPSG:4978."""
    lon, lat = (float(v[0]) for v in to_lonlat(srid, np.array([x]), np.array([y])))
    lo, la = np.radians(lon), np.radians(lat)
    origin = to_ecef(srid, np.array([[x, y, 0.0]]))[0]
    m = np.eye(4)
    m[:3, 0] = [-np.sin(lo), np.cos(lo), 0.0]
    m[:3, 1] = [-np.sin(la) * np.cos(lo), -np.sin(la) * np.sin(lo), np.cos(la)]
    m[:3, 2] = [np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)]
    m[:3, 3] = origin
    return m


def _column_major(m: np.ndarray) -> list[float]:
    return [float(v) for v in m.T.ravel()]


# ---------------------------------------------------------------- grid / quads
@dataclass
class Grid:
    x0: float
    y0: float
    size: float

    @classmethod
    def covering(cls, lo: np.ndarray, hi: np.ndarray) -> Grid:
        size = 2.0 ** np.ceil(np.log2(max(float(np.max(hi - lo)), 1.0)))
        while True:
            x0, y0 = np.floor(lo[0] / size) * size, np.floor(lo[1] / size) * size
            if x0 + size > hi[0] and y0 + size > hi[1]:
                return cls(float(x0), float(y0), float(size))
            size *= 2

    def covers(self, lo: np.ndarray, hi: np.ndarray) -> bool:
        return self.x0 <= lo[0] and self.y0 <= lo[1] and hi[0] < self.x0 + self.size and hi[1] < self.y0 + self.size

    def quad(self, level: int, ix: int, iy: int) -> tuple[float, float, float, float]:
        s = self.size / 2 ** level
        return (self.x0 + ix * s, self.y0 + iy * s, self.x0 + (ix + 1) * s, self.y0 + (iy + 1) * s)


# ---------------------------------------------------------------- generalisation
@dataclass
class Item:
    """One row of a tile's property table with the geometry drawn for it."""
    row: dict[str, Any]
    vertices: np.ndarray
    faces: np.ndarray
    face_colors: np.ndarray
    colors: list[tuple]
    double_sided: bool = False


def _row(f: Feature) -> dict[str, Any]:
    return {"id": f.id, "class": f.cls, "name": f.name, **f.props}


def _leaf_item(f: Feature, layer: str) -> Item:
    return Item(_row(f), f.vertices, f.faces, f.face_colors, f.colors, double_sided=layer == "bim")


class Generaliser:
    """Simplified stand-ins of features for parent tiles, each with the deviation it makes (metres).

    All stand-ins of a layer are built at once with the batch kernels; a parent tile picks from them.
    """

    def __init__(self, layer: str, features: list[Feature]):
        # feature index -> (dedup key, item, deviation); features without a stand-in are left out of parents
        self.stand: dict[int, tuple[Any, Item, float]] = {}
        if not features:
            return
        if layer == "buildings":  # parents draw merged mass instead (mass.py)
            return
        if layer == "bim":
            blocks = {f.block["id"]: f.block for f in features if f.block and f.block["footprint"] is not None}
            fps = np.array([b["footprint"] for b in blocks.values()], dtype=object)
            solids = prisms(fps, [b["zmin"] for b in blocks.values()], [b["zmax"] for b in blocks.values()])
            # every element inside a block lies within half the block's narrowest width of its surface
            rect = shapely.get_coordinates(shapely.minimum_rotated_rectangle(fps)).reshape(len(fps), 5, 2)
            half = np.linalg.norm(np.diff(rect, axis=1), axis=2).min(axis=1) / 2 if len(fps) else []
            items = {}
            for (bid, b), (v, fc, part), h in zip(blocks.items(), solids, half):
                if len(fc):
                    row = {"id": bid, "class": "building", "name": b["name"], "ifc_class": "IfcBuilding",
                           "uid": b["uid"], "storey_id": None, "storey_name": None, "building_id": bid}
                    items[bid] = (("b", bid), Item(row, v, fc, part, LOD1_COLORS), float(h))
            for i, f in enumerate(features):
                if f.block and f.block["id"] in items:
                    self.stand[i] = items[f.block["id"]]
        elif layer == "ground":  # flat and few triangles: parents draw the largest surfaces as they are
            self.stand = {i: (f.id, _leaf_item(f, layer), 0.0) for i, f in enumerate(features)}
        else:  # pipes: segments as 4-sided tubes (boxes stay boxes) on their axis; nodes only in leaves
            segs = [i for i, f in enumerate(features) if f.centerline is not None and len(f.centerline) >= 2]
            r = [features[i].size / 2 for i in segs]
            tubes = tube_meshes([features[i].centerline for i in segs], r, r, [features[i].rect for i in segs],
                                PARENT_TUBE_SIDES)
            for i, (v, fc) in zip(segs, tubes):
                f = features[i]
                # a square tube through a circle's points leaves the circle by at most r (1 - cos(pi/4))
                dev = 0.0 if f.rect else f.size / 2 * (1 - np.cos(np.pi / 4))
                self.stand[i] = (f.id, Item(_row(f), v, fc, np.zeros(len(fc), np.int64), f.colors, True), dev)


def generalise(gen: Generaliser, features: list[Feature], idx: np.ndarray, opts: TreeOptions,
               cap: int) -> tuple[list[Item], float]:
    """Stand-ins of the largest features, at most `cap` of them and within the parent budget.

    Error = the largest deviation of a drawn stand-in or the size of the largest feature left out.
    """
    sizes = np.array([features[i].size for i in idx])
    cap = min(opts.parent_features, cap)
    items, seen, tris, error = [], set(), 0, 0.0
    for i in idx[np.argsort(-sizes, kind="stable")]:
        f = features[i]
        got = gen.stand.get(int(i))
        if got is None:
            error = max(error, f.size)
            continue
        key, item, dev = got
        if key in seen:
            continue
        if len(items) >= cap or tris + len(item.faces) > opts.parent_triangles:
            error = max(error, f.size)  # left out: the whole feature is missing from this tile
            continue
        seen.add(key)
        items.append(item)
        tris += len(item.faces)
        error = max(error, dev)
    return items, error


# ---------------------------------------------------------------- content
def encode(items: list[Item], layer: str, frame: np.ndarray, srid: int, offset: float, meshopt: bool = True):
    """(glb bytes, region [w, s, e, n, hmin, hmax] in radians/metres, quantisation step in metres)."""
    cls_name, props = CLASSES[layer]
    counts = np.array([len(it.vertices) for it in items])
    verts = np.vstack([it.vertices for it in items]).astype(np.float64)
    verts[:, 2] += offset
    ecef = to_ecef(srid, verts)
    local = (ecef - frame[:3, 3]) @ frame[:3, :3]
    feature = np.repeat(np.arange(len(items)), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    faces = np.vstack([it.faces + s for it, s in zip(items, starts)])
    palette: dict[tuple, int] = {}
    face_color = np.concatenate([
        np.array([palette.setdefault((tuple(round(c, 4) for c in it.colors[i]), it.double_sided), len(palette))
                  for i in range(len(it.colors))])[it.face_colors] for it in items])
    prims = []
    for (color, double), k in palette.items():
        sel = faces[face_color == k]
        if len(sel):
            prims.append(glb.Primitive(local, sel, feature, color, name=f"{layer}-{k}", double_sided=double))
    table = {name: (kind, [(it.row.get("uid") if name == "global_id" else it.row.get(name)) for it in items])
             for name, kind in props}
    data = glb.write_glb(prims, cls_name, table, len(items), DESCRIPTIONS, meshopt=meshopt,
                         vertex_colors=layer in VERTEX_COLORED, unlit=layer in UNLIT)
    lon, lat = to_lonlat(srid, verts[:, 0], verts[:, 1])
    step = float(np.ptp(local, axis=0).max()) / 65535
    pad = EPS_M + step
    la = np.radians([lat.min(), lat.max()])
    dlat = pad / EARTH_R
    dlon = pad / (EARTH_R * np.cos(np.abs(la).max()))
    region = [float(np.radians(lon.min()) - dlon), float(la[0] - dlat), float(np.radians(lon.max()) + dlon),
              float(la[1] + dlat), float(verts[:, 2].min() - pad), float(verts[:, 2].max() + pad)]
    return data, region, step


def _union(regions: list[list[float]]) -> list[float]:
    r = np.array(regions)
    return [float(r[:, 0].min()), float(r[:, 1].min()), float(r[:, 2].max()), float(r[:, 3].max()),
            float(r[:, 4].min()), float(r[:, 5].max())]


def region_diagonal_m(region: list[float]) -> float:
    w, s, e, n, h0, h1 = region
    dx = (e - w) * EARTH_R * np.cos((s + n) / 2)
    dy = (n - s) * EARTH_R
    return float(np.sqrt(dx * dx + dy * dy + (h1 - h0) ** 2))


def etag_of(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=12).hexdigest()


# ---------------------------------------------------------------- one layer
class LayerBuilder:
    def __init__(self, layer: str, features: list[Feature], target: Folder | Bucket, srid: int, offset: float,
                 opts: TreeOptions, old: dict | None, changed: Any, grid: Grid | None,
                 progress: Callable[[int], None] | None = None):
        self.layer, self.features, self.target, self.srid, self.offset = layer, features, target, srid, offset
        self.opts, self.changed, self.progress = opts, changed, progress
        self.gen = Generaliser(layer, features)
        self.old_tiles = old or {}
        self.report = LayerReport(layer, features=len(features))
        bb = [(f.vertices[:, :2].min(axis=0), f.vertices[:, :2].max(axis=0)) for f in features]
        self.centres = np.array([(lo + hi) / 2 for lo, hi in bb])
        self.tris = np.array([f.triangles for f in features])
        lo, hi = self.centres.min(axis=0), self.centres.max(axis=0)
        self.reuse = grid is not None and grid.covers(lo, hi) and old is not None
        self.grid = grid if self.reuse else Grid.covering(lo, hi)
        self.contents: set[str] = set()

    def build(self) -> dict:
        root, _ = self._tile(0, 0, 0, np.arange(len(self.features)), np.eye(4))
        return root

    def _frame(self, level: int, ix: int, iy: int) -> np.ndarray:
        x0, y0, x1, y1 = self.grid.quad(level, ix, iy)
        return enu_frame(self.srid, (x0 + x1) / 2, (y0 + y1) / 2)

    def _collect(self, tile: dict) -> None:
        if "content" in tile:
            self.contents.add(tile["content"]["uri"])
            self.report.content_bytes += self.target.size(f"{self.layer}/{tile['content']['uri']}")
        self.report.tiles += 1
        self.report.reused += 1
        for c in tile.get("children", []):
            self._collect(c)

    def _parent_items(self, level: int, idx: np.ndarray, child_features: int) -> tuple[list[Item], float]:
        """What a parent tile draws: merged mass of every building, else generalised stand-ins of the largest
        features, as many as `parent_share` of what its children draw (the ground's flat surfaces: all of them
        within the parent budget)."""
        if self.layer == "buildings":
            masses, error = block_masses([self.features[i] for i in idx], self.grid.size / 2 ** level)
            return [Item(row, v, fc, part, LOD1_COLORS) for row, v, fc, part in masses], error
        share = 1.0 if self.layer == "ground" else self.opts.parent_share
        return generalise(self.gen, self.features, idx, self.opts, max(1, int(np.ceil(child_features * share))))

    def _tile(self, level: int, ix: int, iy: int, idx: np.ndarray, parent_world: np.ndarray):
        key = f"{level}/{ix}/{iy}"
        if self.reuse and key in self.old_tiles and not shapely.intersects(
                self.changed, shapely.box(*self.grid.quad(level, ix, iy))):
            tile = self.old_tiles[key]
            self._collect(tile)
            return tile, tile["geometricError"]
        world = self._frame(level, ix, iy)
        feats = [self.features[i] for i in idx]
        leaf = level >= self.opts.max_depth or (
            len(idx) <= self.opts.leaf_features and self.tris[idx].sum() <= self.opts.leaf_triangles)
        children, regions, child_error, child_features = [], [], 0.0, 0
        if leaf:
            items, error = [_leaf_item(f, self.layer) for f in feats], 0.0
            if len(items) > glb.MAX_FEATURES:
                raise InputError(f"{self.layer}: {len(items)} features share one spot; at most "
                                 f"{glb.MAX_FEATURES} fit a tile")
        else:
            x0, y0, x1, y1 = self.grid.quad(level, ix, iy)
            mx, my = (x0 + x1) / 2, (y0 + y1) / 2
            c = self.centres[idx]
            east, north = c[:, 0] >= mx, c[:, 1] >= my
            for dx in (0, 1):
                for dy in (0, 1):
                    sub = idx[(east == bool(dx)) & (north == bool(dy))]
                    if len(sub):
                        child, ce = self._tile(level + 1, 2 * ix + dx, 2 * iy + dy, sub, world)
                        children.append(child)
                        regions.append(child["boundingVolume"]["region"])
                        child_error = max(child_error, ce)
                        child_features += child["extras"]["features"]
            items, error = self._parent_items(level, idx, child_features)
        tile: dict[str, Any] = {}
        if items:
            data, region, step = encode(items, self.layer, world, self.srid, self.offset, self.opts.meshopt)
            uri = f"{key}.glb"
            self.target.write(f"{self.layer}/{uri}", data)
            self.contents.add(uri)
            self.report.content_bytes += len(data)
            regions.append(region)
            if not leaf:
                error = max(error, step)
            tile["content"] = {"uri": uri}
        if self.progress:
            self.progress(len(idx) if leaf else 0)
        error = max(error, child_error)
        tile = {"boundingVolume": {"region": _union(regions)}, "geometricError": round(error, 3),
                "refine": "REPLACE", "transform": _column_major(np.linalg.solve(parent_world, world)),
                **tile, "extras": {"quad": key, "features": len(items)}}
        if children:
            tile["children"] = children
        self.report.tiles += 1
        self.report.rebuilt += 1
        return tile, tile["geometricError"]


def _index_tiles(tile: dict, out: dict) -> dict:
    key = tile.get("extras", {}).get("quad")
    if key:
        out[key] = tile
    for c in tile.get("children", []):
        _index_tiles(c, out)
    return out


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def _read_json(target: Folder | Bucket, rel: str) -> dict | None:
    data = target.read(rel)
    try:
        return json.loads(data) if data is not None else None
    except ValueError:
        return None


def _write_json(target: Folder | Bucket, rel: str, obj: dict) -> None:
    target.write(rel, json.dumps(obj, separators=(",", ":")).encode())


# ---------------------------------------------------------------- offset / changes
def derive_offset(conn: sa.Connection) -> float:
    """Minus the median ground of the district: buildings' zmin, else pipe nodes' ground, else 0."""
    for sql in (("select percentile_cont(0.5) within group (order by zmin) from city_objects "
                 "where class in ('building', 'building_part') and zmin is not null"),
                "select percentile_cont(0.5) within group (order by coalesce(ground_z, st_z(geom))) from pipe_nodes",
                "select percentile_cont(0.5) within group (order by zmin) from city_objects where zmin is not null"):
        v = conn.execute(sa.text(sql)).scalar()
        if v is not None:
            return -float(v)
    return 0.0


def last_change_id(conn: sa.Connection) -> int:
    return int(conn.execute(sa.text("select coalesce(max(id), 0) from change_log")).scalar())


def changes_since(conn: sa.Connection, change_id: int) -> list[tuple[set[str], Any]]:
    rows = conn.execute(sa.text("select classes, st_asbinary(region) r from change_log where id > :i order by id"),
                        {"i": change_id}).all()
    return [(set(r.classes), shapely.from_wkb(bytes(r.r)) if r.r is not None else None) for r in rows]


# ---------------------------------------------------------------- the whole tileset
@dataclass
class _Pass:
    """What every layer of one build shares."""
    target: Folder | Bucket
    conn: sa.Connection
    srid: int
    offset: float
    change_id: int
    opts: TreeOptions
    progress: Callable[[int], None] | None
    scenario_id: int | None = None  # the model of a renewal plan (cim_core.scenarios); None: as-is


def build(out: str | Path, layers: tuple[str, ...] | list[str] = LAYERS, *, engine: sa.Engine | None = None,
          incremental: bool = False, opts: TreeOptions | None = None,
          progress: Callable[[int], None] | None = None, include_restricted: bool = False,
          scenario_id: int | None = None, vertical_offset: float | None = None) -> BuildReport:
    """Write (or bring up to date, with `incremental`) a tileset under `out`: tileset.json + one per layer.

    `out` is a local folder or an s3://bucket/prefix URL. Restricted layers go to a folder as to the tile
    service's cache, but are left out of object storage (and removed from it) unless `include_restricted`:
    a bucket hands every object to whoever may read it, without asking for an API key.
    Incremental: only layers whose classes changed since the last build are rebuilt, and in them only
    the tiles whose quad intersects a changed region; the vertical offset of the first build is kept.
    `scenario_id`: the model of a renewal plan instead of the as-is model (its builds are never incremental);
    `vertical_offset` (the as-is tileset's, so that both stand on the same ground) overrides the derived one.
    """
    unknown = [la for la in layers if la not in LAYERS]
    if unknown:
        raise InputError(f"unknown tile layer {unknown[0]!r}", hint=f"choose from {', '.join(LAYERS)}")
    target = open_target(out)
    engine = engine or get_engine()
    withheld = set()
    if target.remote and not include_restricted:
        withheld = {la for la in LAYERS if is_restricted(la, engine)}
    if layers and set(layers) <= withheld:
        raise InputError(f"{', '.join(layers)}: restricted, so not written to object storage",
                         hint="a bucket cannot check API keys: --include-restricted writes them, "
                              "for a private bucket only")
    srid = storage_srid(engine)
    saved = _read_json(target, "state.json") if scenario_id is None else None
    if saved and (saved.get("format") != STATE_FORMAT or saved.get("srid") != srid):
        saved = None  # another builder version or database CRS: rebuild all
    state = saved if incremental else None
    with engine.connect() as conn:
        change_id = last_change_id(conn)
        changes = changes_since(conn, state["change_id"]) if state else []
        configured = get_settings().vertical_offset if vertical_offset is None else vertical_offset
        offset = configured if configured is not None else (
            state["vertical_offset"] if state else derive_offset(conn))
        if state and offset != state["vertical_offset"]:
            state = None  # a new offset moves every vertex
        report = BuildReport(out=out if target.remote else Path(out), vertical_offset=offset,
                             change_id=change_id)
        layer_states, since = (state or {}).get("layers", {}), change_id
        if saved and not incremental and offset == saved["vertical_offset"]:
            # a full build of some layers keeps the others as they are; the next incremental build looks at the
            # changes since the older build (the rebuilt layers' share of them is redone, harmlessly)
            layer_states = {k: v for k, v in saved["layers"].items() if k not in layers}
            since = saved["change_id"] if layer_states else change_id
        for layer in withheld:
            layer_states.pop(layer, None)
            target.remove_folder(layer)
        run = _Pass(target, conn, srid, offset, change_id, opts or TreeOptions(), progress, scenario_id)
        for layer in layers:
            if layer in withheld:
                report.layers.append(LayerReport(layer, withheld=True))
                continue
            touched = [region for classes, region in changes if classes & LAYER_CLASSES[layer]]
            report.layers.append(_build_layer(run, layer, layer_states, touched))
        _write_root(target, srid, offset, change_id, layer_states, engine)
        _write_json(target, "state.json", {"format": STATE_FORMAT, "srid": srid, "vertical_offset": offset,
                                           "change_id": since, "layers": layer_states})
    return report


def _build_layer(run: _Pass, layer: str, layer_states: dict, touched: list) -> LayerReport:
    """Build or bring up to date one layer's tileset; updates `layer_states`."""
    t0 = time.perf_counter()
    target = run.target
    ls = layer_states.get(layer)
    old_ts = _read_json(target, f"{layer}/tileset.json") if ls else None
    if ls is not None and old_ts is not None and not touched:
        return LayerReport(layer, features=ls["features"], skipped=True)
    features = LOADERS[layer](run.conn, run.scenario_id)
    if not features:
        layer_states.pop(layer, None)
        target.remove_folder(layer)
        return LayerReport(layer)
    changed = shapely.union_all([r for r in touched if r is not None]) if touched else None
    full = changed is None or any(r is None for r in touched)
    grid = Grid(*ls["grid"]) if ls and not full else None
    old_tiles = _index_tiles(old_ts["root"], {}) if old_ts and not full else None
    lb = LayerBuilder(layer, features, target, run.srid, run.offset, run.opts, old_tiles, changed, grid,
                      run.progress)
    root = lb.build()
    tileset = {"asset": {"version": "1.1", "generator": "cim tiles", "tilesetVersion": str(run.change_id)},
               "geometricError": _tileset_error(layer, root), "root": root,
               "extras": {"layer": layer, "srid": run.srid, "vertical_offset": run.offset}}
    _write_json(target, f"{layer}/tileset.json", tileset)
    files = target.files(layer)
    target.remove([rel for rel in files if rel.endswith(".glb") and rel[len(layer) + 1:] not in lb.contents])
    rep = lb.report
    rep.seconds = time.perf_counter() - t0
    rep.bytes = sum(target.size(rel) for rel in target.files(layer))
    layer_states[layer] = {"grid": [lb.grid.x0, lb.grid.y0, lb.grid.size], "features": len(features)}
    return rep


def _tileset_error(layer: str, root: dict) -> float:
    """The error of not drawing the layer at all (3D Tiles: the tileset's geometricError).

    Left out, a layer is missed by its whole extent (the region's diagonal), except BIM: the buildings
    layer draws each BIM building's LOD1 block, which is all that BIM's root draws, so leaving BIM out
    costs only its root's error, and a viewer asks for BIM's tiles only once that error shows on screen
    (CesiumJS skips a tileset whose geometricError is under its screen-space threshold).
    """
    if layer == "bim":
        return round(root["geometricError"], 3)
    return round(max(region_diagonal_m(root["boundingVolume"]["region"]), root["geometricError"]), 3)


def _write_root(target: Folder | Bucket, srid: int, offset: float, change_id: int, layer_states: dict,
                engine: sa.Engine) -> None:
    """The root tileset: every built layer as an external tileset, added together (refine ADD).

    `extras.layers` lists them for clients, each with whether it needs an API key of a granted role.
    """
    children, layers = [], []
    for layer in LAYERS:
        ts = _read_json(target, f"{layer}/tileset.json") if layer in layer_states else None
        if ts is None:
            continue
        children.append({"boundingVolume": ts["root"]["boundingVolume"], "geometricError": ts["geometricError"],
                         "content": {"uri": f"{layer}/tileset.json"}})
        layers.append({"name": layer, "restricted": is_restricted(layer, engine)})
    root: dict[str, Any] = {"asset": {"version": "1.1", "generator": "cim tiles", "tilesetVersion": str(change_id)},
                            "extras": {"srid": srid, "vertical_offset": offset, "layers": layers}}
    if children:
        err = max(c["geometricError"] for c in children)
        root["geometricError"] = err
        root["root"] = {"boundingVolume": {"region": _union([c["boundingVolume"]["region"] for c in children])},
                        "geometricError": err, "refine": "ADD", "children": children}
    else:
        raise InputError("nothing to tile: the database has no buildings, BIM elements or pipes",
                         hint="import some data first")
    _write_json(target, "tileset.json", root)

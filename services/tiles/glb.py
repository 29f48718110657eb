"""glTF 2.0 binary (glb) content for 3D Tiles 1.1, written with numpy buffers.

One node, one mesh, one primitive per material, or (vertex_colors) one per render state with the colours in
COLOR_0. Vertex data is quantised (KHR_mesh_quantization) and interleaved, 16 bytes a vertex: position
uint16 x 3 (+2 pad), normal int8 x 3 normalised (+1 pad), [COLOR_0 uint8 x 4 normalised,] _FEATURE_ID_0
uint16 (+2 pad); glTF wants every vertex attribute on a 4-byte boundary, hence the pads.
The node's translation/scale dequantise positions into the tile's frame (glTF y-up).
Per-feature identity: EXT_mesh_features feature ids on the vertices, and an EXT_structural_metadata
property table, one row per feature id, schema embedded so each content file stands alone.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import meshoptimizer
import numpy as np
import orjson

VERTEX_DTYPE = np.dtype([("p", "<u2", 3), ("_p", "<u2"), ("n", "i1", 3), ("_n", "i1"), ("f", "<u2"), ("_f", "<u2")])
assert VERTEX_DTYPE.itemsize == 16
# With COLOR_0 (RGBA uint8 normalised, linear like baseColorFactor: see linear()): 20 bytes a vertex
COLORED_DTYPE = np.dtype([("p", "<u2", 3), ("_p", "<u2"), ("n", "i1", 3), ("_n", "i1"), ("c", "u1", 4),
                          ("f", "<u2"), ("_f", "<u2")])
assert COLORED_DTYPE.itemsize == 20
# EXT_meshopt_compression defines vertex codec version 0 (newer meshoptimizer may default to 1)
meshoptimizer.encode_vertex_version(0)
MAX_FEATURES = 65535  # _FEATURE_ID_0 is uint16 (UNSIGNED_INT is not allowed for vertex attributes)

# Metadata property types: (schema type, componentType, numpy dtype, noData)
NUMERIC = {
    "UINT32": ("SCALAR", "UINT32", "<u4", 0),  # database ids start at 1
    "UINT16": ("SCALAR", "UINT16", "<u2", 65535),
    "INT16": ("SCALAR", "INT16", "<i2", -32768),
    "FLOAT32": ("SCALAR", "FLOAT32", "<f4", -9999.0),
    "FLOAT64": ("SCALAR", "FLOAT64", "<f8", -9999.0),
}


@dataclass
class Primitive:
    """Triangles of one material: float64 positions in the tile's east-north-up frame."""
    positions: np.ndarray   # (N, 3) float64, east-north-up metres around the tile centre
    faces: np.ndarray       # (M, 3) int, indices into positions
    feature: np.ndarray     # (N,) int, row of the property table of each vertex
    color: tuple[float, float, float, float]
    name: str = ""
    double_sided: bool = False


def flat_shade(positions: np.ndarray, faces: np.ndarray, feature: np.ndarray):
    """Per-face normals; vertices are split only where faces of different orientation meet.

    Returns (positions, normals int8, features, faces) with shared vertices for coplanar neighbours.
    """
    tri = positions[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    length = np.linalg.norm(n, axis=1)
    keep = length > 1e-12  # degenerate triangles draw nothing and have no normal
    faces, n, length = faces[keep], n[keep], length[keep]
    qn = np.rint(n / length[:, None] * 127).astype(np.int64)
    corners = faces.ravel().astype(np.int64)
    cn = np.repeat(qn, 3, axis=0)
    key = (corners << 24) | ((cn[:, 0] + 128) << 16) | ((cn[:, 1] + 128) << 8) | (cn[:, 2] + 128)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    src = corners[first]
    return positions[src], cn[first].astype(np.int8), feature[src], inverse.reshape(-1, 3)


def _pad(b: bytes, align: int = 8, fill: bytes = b"\0") -> bytes:
    return b + fill * (-len(b) % align)


class _Buffer:
    def __init__(self):
        self.chunks: list[bytes] = []
        self.size = 0
        self.views: list[dict] = []
        self.fallback = 0  # byte length of the data that EXT_meshopt_compression views decode to

    def add_meshopt(self, raw: np.ndarray, count: int, stride: int, mode: str, target: int) -> int:
        """A view whose data is stored meshopt-encoded; the decoder restores `raw` into the fallback buffer."""
        if mode == "ATTRIBUTES":
            enc = meshoptimizer.encode_vertex_buffer(raw, count, stride)
        else:
            enc = meshoptimizer.encode_index_buffer(raw.astype(np.uint32).ravel(), count, int(raw.max()) + 1)
        data = _pad(enc)
        ext = {"buffer": 0, "byteOffset": self.size, "byteLength": len(enc), "byteStride": stride, "count": count,
               "mode": mode}
        view = {"buffer": 1, "byteOffset": self.fallback, "byteLength": count * stride, "target": target,
                "extensions": {"EXT_meshopt_compression": ext}}
        if mode == "ATTRIBUTES":
            view["byteStride"] = stride
        self.fallback += count * stride + (-(count * stride) % 8)
        self.chunks.append(data)
        self.size += len(data)
        self.views.append(view)
        return len(self.views) - 1

    def add(self, data: bytes, target: int | None = None, stride: int | None = None) -> int:
        # The view is the data's exact length (clients count property values by it); the padding to
        # 8 bytes, which metadata buffer views require for their offsets, lies between views.
        view = {"buffer": 0, "byteOffset": self.size, "byteLength": len(data)}
        data = _pad(data)
        if target:
            view["target"] = target
        if stride:
            view["byteStride"] = stride
        self.chunks.append(data)
        self.size += len(data)
        self.views.append(view)
        return len(self.views) - 1


def _property_columns(buf: _Buffer, table: dict[str, tuple[str, list | np.ndarray]], count: int):
    """Schema properties and property-table columns for {name: (type, values)}.

    Every numeric property of the class gets a column, noData-filled where a feature has no value: the
    reference validator (CesiumGS 3d-tiles-validator 0.6.1) stops on a table that leaves one out, though
    the specification allows it. A string property without any value in this tile is left out of the
    class as well as the table, since glTF forbids the empty buffer view its column would need.
    """
    schema, columns = {}, {}
    for name, (kind, values) in table.items():
        if kind == "STRING":
            enc = [(v if v is not None else "").encode() for v in values]
            blob = b"".join(enc)
            if not blob:
                continue
            schema[name] = {"type": "STRING", "noData": ""}
            offsets = np.zeros(count + 1, "<u4")
            offsets[1:] = np.cumsum([len(e) for e in enc], dtype=np.uint64)
            columns[name] = {"values": buf.add(blob), "stringOffsets": buf.add(offsets.tobytes()),
                             "stringOffsetType": "UINT32"}
        else:
            typ, comp, dtype, nodata = NUMERIC[kind]
            schema[name] = {"type": typ, "componentType": comp, "noData": nodata}
            arr = np.array([nodata if v is None else v for v in values], dtype=np.float64)
            arr = np.where(np.isfinite(arr), arr, nodata)
            columns[name] = {"values": buf.add(arr.astype(dtype).tobytes())}
    return schema, columns


def _shade(primitives: list[Primitive]) -> list[tuple]:
    """Flat-shaded, y-up (x=east, y=up, z=-north) vertices of every primitive with triangles."""
    shaded = []
    for p in primitives:
        if len(p.faces) == 0:
            continue
        pos, nrm, fid, faces = flat_shade(np.asarray(p.positions, np.float64), np.asarray(p.faces, np.int64),
                                          np.asarray(p.feature, np.int64))
        if len(faces) == 0:
            continue
        yup = np.column_stack([pos[:, 0], pos[:, 2], -pos[:, 1]])
        nyup = np.column_stack([nrm[:, 0], nrm[:, 2], -nrm[:, 1].astype(np.int16)]).clip(-127, 127).astype(np.int8)
        shaded.append((p, yup, nyup, fid, faces))
    if not shaded:
        raise ValueError("no triangles to write")
    return shaded


def linear(rgb) -> np.ndarray:
    """sRGB components (0..1, as the style tables give colours) as the linear ones glTF's baseColorFactor and
    COLOR_0 hold (the sRGB transfer function, IEC 61966-2-1); the renderer encodes them back to sRGB on screen."""
    c = np.asarray(rgb, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _linear_rgba(color) -> np.ndarray:
    """An RGBA colour of a primitive with its RGB linear; alpha is linear already."""
    return np.append(linear(color[:3]), color[3])


def _material(p: Primitive, translucent: bool | None = None, unlit: bool = False) -> dict:
    """The primitive's material; a batch of vertex-coloured primitives (translucent given) draws in white.
    unlit: KHR_materials_unlit, its colours shown as they are, without light."""
    rgba = _linear_rgba(p.color).tolist() if translucent is None else [1.0, 1.0, 1.0, 1.0]
    blend = rgba[3] < 1.0 if translucent is None else translucent
    mat = {"name": p.name, "pbrMetallicRoughness": {"baseColorFactor": rgba, "metallicFactor": 0.0,
                                                     "roughnessFactor": 0.9}}
    if unlit:
        mat["extensions"] = {"KHR_materials_unlit": {}}
    if blend:
        mat["alphaMode"] = "BLEND"
    if p.double_sided or blend:
        mat["doubleSided"] = True
    return mat


def _batch(shaded: list[tuple]) -> list[tuple]:
    """The shaded primitives merged per render state (translucent, double-sided), each vertex carrying its
    primitive's colour: (first primitive, y-up, normals, features, faces, RGBA uint8, translucent)."""
    groups: dict[tuple, list] = {}
    for s in shaded:
        groups.setdefault((s[0].color[3] < 1.0, s[0].double_sided), []).append(s)
    out = []
    for (translucent, _), members in groups.items():
        starts = np.cumsum([0] + [len(m[1]) for m in members])[:-1]
        rgba = np.vstack([np.tile(np.rint(_linear_rgba(m[0].color) * 255).astype(np.uint8), (len(m[1]), 1))
                          for m in members])
        out.append((members[0][0], *(np.concatenate([m[i] for m in members]) for i in (1, 2, 3)),
                    np.vstack([m[4] + s for m, s in zip(members, starts)]), rgba, translucent))
    return out


def _vertex_views(buf: _Buffer, v: np.ndarray, faces: np.ndarray, idx_dtype: str, meshopt: bool):
    """Buffer views of the interleaved vertices and the indices, meshopt-encoded when asked."""
    if not meshopt:
        return (buf.add(v.tobytes(), target=34962, stride=v.dtype.itemsize), buf.add(faces.astype(idx_dtype).tobytes(),
                                                                         target=34963), faces)
    # cache- then fetch-ordered buffers encode far smaller
    idx = faces.astype(np.uint32).ravel()
    opt = np.empty_like(idx)
    meshoptimizer.optimize_vertex_cache(opt, idx, len(idx), len(v))
    ordered = np.empty_like(v)
    meshoptimizer.optimize_vertex_fetch(ordered, opt, v, len(opt), len(v), v.dtype.itemsize)
    faces = opt.reshape(-1, 3)
    vview = buf.add_meshopt(ordered, len(ordered), v.dtype.itemsize, "ATTRIBUTES", 34962)
    iview = buf.add_meshopt(faces.astype(idx_dtype), faces.size, np.dtype(idx_dtype).itemsize, "TRIANGLES", 34963)
    return vview, iview, faces


def _primitive(buf: _Buffer, accessors: list, shaded: tuple, lo: np.ndarray, scale: np.ndarray,
               feature_count: int, material: int, meshopt: bool) -> dict:
    """One glTF primitive: quantised positions, normals, feature ids (and colours of a batch) in one
    interleaved view."""
    yup, nyup, fid, faces = shaded[1:5]
    rgba = shaded[5] if len(shaded) > 5 else None
    v = np.zeros(len(yup), VERTEX_DTYPE if rgba is None else COLORED_DTYPE)
    q = np.rint((yup - lo) / scale).clip(0, 65535).astype(np.uint16)
    v["p"], v["n"], v["f"] = q, nyup, fid
    if rgba is not None:
        v["c"] = rgba
    idx_type, idx_dtype = (5123, "<u2") if len(yup) <= 65535 else (5125, "<u4")
    vview, iview, faces = _vertex_views(buf, v, faces, idx_dtype, meshopt)
    a0 = len(accessors)
    accessors += [
        {"bufferView": vview, "byteOffset": 0, "componentType": 5123, "count": len(yup), "type": "VEC3",
         "min": q.min(axis=0).tolist(), "max": q.max(axis=0).tolist()},
        {"bufferView": vview, "byteOffset": 8, "componentType": 5120, "normalized": True, "count": len(yup),
         "type": "VEC3"},
        {"bufferView": vview, "byteOffset": v.dtype.fields["f"][1], "componentType": 5123, "count": len(yup),
         "type": "SCALAR"},
        {"bufferView": iview, "componentType": idx_type, "count": faces.size, "type": "SCALAR"},
    ]
    attributes = {"POSITION": a0, "NORMAL": a0 + 1, "_FEATURE_ID_0": a0 + 2}
    if rgba is not None:
        accessors.append({"bufferView": vview, "byteOffset": 12, "componentType": 5121, "normalized": True,
                          "count": len(yup), "type": "VEC4"})
        attributes["COLOR_0"] = a0 + 4
    return {"attributes": attributes, "indices": a0 + 3,
            "material": material, "mode": 4,
            "extensions": {"EXT_mesh_features": {"featureIds": [
                {"featureCount": feature_count, "attribute": 0, "propertyTable": 0}]}}}


def _pack(gltf: dict, buf: _Buffer) -> bytes:
    js = _pad(orjson.dumps(gltf), 4, b" ")
    binary = b"".join(buf.chunks)
    total = 12 + 8 + len(js) + 8 + len(binary)
    return b"".join([struct.pack("<4sII", b"glTF", 2, total), struct.pack("<I4s", len(js), b"JSON"), js,
                     struct.pack("<I4s", len(binary), b"BIN\0"), binary])


def write_glb(primitives: list[Primitive], class_name: str, properties: dict[str, tuple[str, Any]],
              feature_count: int, descriptions: dict[str, str] | None = None, meshopt: bool = False,
              vertex_colors: bool = False, unlit: bool = False) -> bytes:
    """A glb of the given primitives with one property table of `feature_count` rows.

    meshopt: vertex and index buffers EXT_meshopt_compression-encoded (a required extension).
    vertex_colors: primitives of the same render state (translucent or not, double-sided or not) merged into
    one, their colours in COLOR_0: one draw call instead of one per colour.
    unlit: every material KHR_materials_unlit (a map on the ground: its colours as the style table gives them).

    Positions are east-north-up; they are written y-up as glTF requires (x=east, y=up, z=-north),
    which 3D Tiles turns back to z-up.
    """
    if feature_count > MAX_FEATURES:
        raise ValueError(f"{feature_count} features in one tile; at most {MAX_FEATURES}")
    shaded = _shade(primitives)
    lo = np.min([s[1].min(axis=0) for s in shaded], axis=0)
    hi = np.max([s[1].max(axis=0) for s in shaded], axis=0)
    scale = np.where(hi - lo > 0, (hi - lo) / 65535.0, 1.0)
    buf = _Buffer()
    accessors: list[dict] = []
    if vertex_colors:
        shaded = _batch(shaded)
        materials = [_material(s[0], translucent=s[6], unlit=unlit) for s in shaded]
    else:
        materials = [_material(s[0], unlit=unlit) for s in shaded]
    gl_prims = [_primitive(buf, accessors, s, lo, scale, feature_count, i, meshopt) for i, s in enumerate(shaded)]
    schema_props, columns = _property_columns(buf, properties, feature_count)
    for k, d in (descriptions or {}).items():
        if k in schema_props:
            schema_props[k]["description"] = d
    required = ["KHR_mesh_quantization"] + (["EXT_meshopt_compression"] if meshopt else [])
    return _pack({
        "asset": {"version": "2.0", "generator": "cim tiles"},
        "extensionsUsed": ["EXT_mesh_features", "EXT_structural_metadata", *required,
                           *(["KHR_materials_unlit"] if unlit else [])],
        "extensionsRequired": required,
        "scene": 0, "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "translation": lo.tolist(), "scale": scale.tolist()}],
        "meshes": [{"primitives": gl_prims}],
        "materials": materials,
        "accessors": accessors,
        "bufferViews": buf.views,
        "buffers": [{"byteLength": buf.size}] + ([{"byteLength": buf.fallback, "extensions": {
            "EXT_meshopt_compression": {"fallback": True}}}] if meshopt else []),
        "extensions": {"EXT_structural_metadata": {
            "schema": {"id": "cim", "classes": {class_name: {"properties": schema_props}}},
            "propertyTables": [{"class": class_name, "count": feature_count, "properties": columns}],
        }},
    }, buf)


def read_glb(data: bytes) -> tuple[dict, bytes]:
    """(gltf json, binary chunk) of a glb."""
    magic, version, _ = struct.unpack_from("<4sII", data, 0)
    if magic != b"glTF" or version != 2:
        raise ValueError("not a glTF 2.0 binary")
    jlen, _ = struct.unpack_from("<I4s", data, 12)
    gltf = orjson.loads(data[20:20 + jlen])
    off = 20 + jlen
    blen, _ = struct.unpack_from("<I4s", data, off)
    return gltf, data[off + 8:off + 8 + blen]


def decode_vertices(gltf: dict, binary: bytes) -> list[np.ndarray]:
    """Per primitive: its interleaved vertices (VERTEX_DTYPE, or COLORED_DTYPE with COLOR_0), meshopt-decoded."""
    out = []
    for prim in gltf["meshes"][0]["primitives"]:
        acc = gltf["accessors"][prim["attributes"]["POSITION"]]
        view = gltf["bufferViews"][acc["bufferView"]]
        mo = view.get("extensions", {}).get("EXT_meshopt_compression")
        dtype = VERTEX_DTYPE if view["byteStride"] == VERTEX_DTYPE.itemsize else COLORED_DTYPE
        if mo:
            enc = binary[mo["byteOffset"]:mo["byteOffset"] + mo["byteLength"]]
            # the binding decodes into float32 words: reinterpret the bytes
            raw = meshoptimizer.decode_vertex_buffer(mo["count"], mo["byteStride"], enc)
            out.append(np.frombuffer(raw.tobytes(), dtype))
        else:
            out.append(np.frombuffer(binary, dtype, acc["count"], view["byteOffset"]))
    return out


def decode_positions(gltf: dict, binary: bytes) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per primitive: (east-north-up float64 positions, feature ids), dequantised: for checks and tests."""
    node = gltf["nodes"][0]
    t, s = np.array(node["translation"]), np.array(node["scale"])
    out = []
    for raw in decode_vertices(gltf, binary):
        yup = raw["p"].astype(np.float64) * s + t
        out.append((np.column_stack([yup[:, 0], -yup[:, 2], yup[:, 1]]), raw["f"].astype(np.int64)))
    return out

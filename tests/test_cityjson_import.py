"""CityJSON: the cjio test files (Rotterdam 2.0, Den Haag 1.1 with building parts) and a CityJSONSeq made of them."""
import json
import subprocess

import numpy as np
import orjson
import pytest
import sqlalchemy as sa
import trimesh
from conftest import DATA

from cim_core.errors import GeoreferenceError, InputError
from cim_core.mesh import newell_normal
from importers import cityjson

ROTTERDAM = DATA / "rotterdam_subset.city.json"
DEN_HAAG = DATA / "DH_01_subs.city.json"


def rows(engine, sql, **params):
    with engine.connect() as c:
        return c.execute(sa.text(sql), params).mappings().all()


def load_mesh(row):
    v = np.frombuffer(row["mesh_vertices"], "<f8").reshape(-1, 3)
    f = np.frombuffer(row["mesh_faces"], "<u4").reshape(-1, 3).astype(np.int64)
    return trimesh.Trimesh(v, f, process=False), np.frombuffer(row["mesh_face_materials"], "<u2")


def surface_areas(doc, oid):
    """Area per semantic type of an object's surfaces, straight from the file (Newell), holes subtracted."""
    v = np.asarray(doc["vertices"], float) * doc["transform"]["scale"] + doc["transform"]["translate"]
    g = doc["CityObjects"][oid]["geometry"][0]
    shells = [g["boundaries"]] if g["type"] == "MultiSurface" else g["boundaries"]
    values = [g["semantics"]["values"]] if g["type"] == "MultiSurface" else g["semantics"]["values"]
    out = {}
    for shell, vals in zip(shells, values):
        for rings, k in zip(shell, vals):
            kind = g["semantics"]["surfaces"][k]["type"]
            a = np.linalg.norm(newell_normal(v[rings[0]])) / 2 - sum(np.linalg.norm(newell_normal(v[r])) / 2
                                                                     for r in rings[1:])
            out[kind] = out.get(kind, 0.0) + a
    return out


def test_rotterdam_needs_a_crs_and_refuses_without(make_db):
    db = make_db(28992)
    with pytest.raises(InputError, match=r"rotterdam_subset\.city\.json.*no coordinate reference system.*--crs"):
        cityjson.import_file(ROTTERDAM, engine=db)
    assert rows(db, "select count(*) n from datasets")[0]["n"] == 0


def test_rotterdam_buildings_with_semantic_surfaces(make_db):
    db = make_db(28992)
    res = cityjson.import_file(ROTTERDAM, crs="EPSG:7415", engine=db)
    assert res.counts == {"building": 16} and res.dataset == "rotterdam_subset"
    assert res.report["version"] == "2.0" and res.report["lod"] == {"2": 16}
    doc = json.loads(ROTTERDAM.read_text())
    objs = rows(db, "select key, uid, lod, attributes, zmin, zmax, st_area(footprint) area, st_srid(footprint) srid, "
                    "mesh_vertices, mesh_faces, mesh_face_materials, materials from city_objects")
    assert len(objs) == 16 and {o["lod"] for o in objs} == {2} and {o["srid"] for o in objs} == {28992}
    for o in objs:
        src = doc["CityObjects"][o["key"]]
        assert o["attributes"] == src["attributes"]  # TerrainHeight, bron_tex, ...
        tm, fm = load_mesh(o)
        names = [m["name"] for m in o["materials"]]
        assert names[:3] == ["RoofSurface", "WallSurface", "GroundSurface"]
        # the triangles cover each semantic surface exactly, and face the way the file's rings do
        expected = surface_areas(doc, o["key"])
        for kind, area in expected.items():
            assert tm.area_faces[fm == names.index(kind)].sum() == pytest.approx(area, rel=1e-3)  # not quite planar
        normals = tm.face_normals
        assert (normals[fm == names.index("RoofSurface"), 2] > 0).all()
        assert (normals[fm == names.index("GroundSurface"), 2] < -0.99).all()
        assert np.abs(normals[fm == names.index("WallSurface"), 2]).max() < 0.2
        # the footprint is the ground surface, in metres of RD New (the storage CRS: no transformation)
        assert o["area"] == pytest.approx(expected["GroundSurface"], rel=1e-3)
        assert o["zmin"] == pytest.approx(tm.vertices[:, 2].min())


def test_den_haag_buildings_and_parts(make_db):
    db = make_db(28992)
    res = cityjson.import_file(DEN_HAAG, crs="EPSG:7415", engine=db)
    assert res.counts == {"building": 4, "building_part": 8}
    parts = rows(db, "select c.key, p.key parent, p.class parent_class, c.attributes, c.mesh_vertices, c.mesh_faces, "
                     "c.mesh_face_materials from city_objects c join city_objects p on p.id = c.parent_id")
    doc = json.loads(DEN_HAAG.read_text())
    assert len(parts) == 8 and {p["parent_class"] for p in parts} == {"building"}
    for p in parts:
        assert p["parent"] == doc["CityObjects"][p["key"]]["parents"][0]
        assert p["attributes"]["roofType"] == doc["CityObjects"][p["key"]]["attributes"]["roofType"]
        tm, _ = load_mesh(p)
        tm.merge_vertices()
        assert tm.is_watertight and tm.volume > 0  # LoD2 solids stay closed, faces outward
    # buildings drawn only by their parts get the parts' footprint and height range
    bldgs = rows(db, "select b.key, b.mesh_vertices is null no_mesh, st_area(b.footprint) area, b.zmin, b.zmax, "
                     "(select st_area(st_union(c.footprint)) from city_objects c where c.parent_id = b.id) parts_area, "
                     "(select max(c.zmax) from city_objects c where c.parent_id = b.id) parts_top "
                     "from city_objects b where b.class = 'building'")
    drawn_by_parts = [b for b in bldgs if b["no_mesh"]]
    assert len(drawn_by_parts) == 3
    for b in drawn_by_parts:
        assert b["area"] == pytest.approx(b["parts_area"]) and b["zmax"] == b["parts_top"]


def to_sequence(doc: dict, path, crs="https://www.opengis.net/def/crs/EPSG/0/7415"):
    """A CityJSONSeq of a CityJSON document: each building (with its parts) a feature with its own vertices."""
    head = {"type": "CityJSON", "version": "2.0", "transform": doc["transform"], "CityObjects": {}, "vertices": [],
            "metadata": {"referenceSystem": crs}}
    lines = [orjson.dumps(head)]
    for oid, o in doc["CityObjects"].items():
        if "parents" in o:
            continue
        members = {k: json.loads(json.dumps(doc["CityObjects"][k])) for k in [oid, *o.get("children", [])]}
        used: dict[int, int] = {}

        def remap(b):
            return [remap(x) for x in b] if isinstance(b, list) else used.setdefault(b, len(used))

        for m in members.values():
            for g in m.get("geometry", []):
                g["boundaries"] = remap(g["boundaries"])
        verts = [doc["vertices"][i] for i in sorted(used, key=used.get)]
        lines.append(orjson.dumps({"type": "CityJSONFeature", "id": oid, "CityObjects": members, "vertices": verts}))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_cityjson_seq_gives_the_same_objects(make_db, tmp_path):
    db = make_db(28992)
    doc = json.loads(DEN_HAAG.read_text())
    seq = to_sequence(doc, tmp_path / "den_haag.city.jsonl")
    res = cityjson.import_file(seq, engine=db)  # the CRS comes from the header's metadata
    assert res.counts == {"building": 4, "building_part": 8} and res.report["sequence"]
    cityjson.import_file(DEN_HAAG, crs="EPSG:7415", dataset="whole", engine=db)
    got = rows(db, "select d.name, o.key, o.mesh_vertices, o.mesh_faces, o.parent_id is not null has_parent "
                   "from city_objects o join datasets d on d.id = o.dataset_id")
    by = {}
    for r in got:
        v = np.frombuffer(r["mesh_vertices"], "<f8").reshape(-1, 3) if r["mesh_vertices"] else np.zeros((0, 3))
        f = np.frombuffer(r["mesh_faces"], "<u4").reshape(-1, 3) if r["mesh_faces"] else np.zeros((0, 3), int)
        by.setdefault(r["key"], {})[r["name"]] = (np.sort(v[f].reshape(-1, 9), axis=0), r["has_parent"])
    assert len(by) == 12
    for key, both in by.items():
        (a, pa), (b, pb) = both["den_haag"], both["whole"]
        assert pa == pb and np.allclose(a, b)


def test_outside_the_storage_crs_is_refused(db):
    with pytest.raises(GeoreferenceError, match="outside the area of use"):
        cityjson.import_file(ROTTERDAM, crs="EPSG:7415", engine=db)  # a 4547 (China) database
    assert rows(db, "select count(*) n from city_objects")[0]["n"] == 0


def test_cli_bad_file_and_rerun(make_db, tmp_path):
    db = make_db(28992)
    env = {**__import__("os").environ, "CIM_DATABASE_URL": db.url.render_as_string(hide_password=False)}
    cmd = [".venv/bin/cim", "import", "cityjson", str(ROTTERDAM), "--crs", "EPSG:7415"]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert "imported" in first.stdout and "building 16" in first.stdout
    again = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "skipped" in again.stdout
    assert rows(db, "select count(*) n from city_objects")[0]["n"] == 16
    bad = tmp_path / "truncated.city.json"
    bad.write_bytes(ROTTERDAM.read_bytes()[:5000])
    out = subprocess.run([".venv/bin/cim", "import", "cityjson", str(bad), "--crs", "EPSG:7415"], env=env,
                         capture_output=True, text=True)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 1 and len(lines) == 1 and "truncated.city.json" in lines[0] and "JSON" in lines[0]

"""The generated sample district: determinism, valid geometry, sound pipe networks, IFC on footprints."""

from __future__ import annotations

import json
from collections import Counter

import ifcopenshell
import ifcopenshell.geom
import ifcopenshell.util.element
import numpy as np
import pyogrio
import pyogrio.raw
import pytest
import shapely
import sqlalchemy as sa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components

from analyses.underground import clearances
from cim_core import store
from cim_core.errors import InputError
from sample_models.district import drainage, entries, generate, generator, is_current, load, underground, writer
from sample_models.district.manifest import VERSION as manifest_version
from sample_models.district.ifc import BuildingModel, write_ifc

LAYERS = [
    "roads",
    "rivers",
    "river_banks",
    "landuse",
    "compounds",
    "buildings",
    "green",
    "facilities",
    "pipes",
    "pipe_nodes",
    "hc_units",
    "hc_facilities",
]


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    out = tmp_path_factory.mktemp("district")
    manifest = generate(out, scale=1, seed=7)
    return out, manifest


def read(out, layer):
    """(columns by field name, shapely geometries) of a layer."""
    meta, _, geom, data = pyogrio.raw.read(out / "district.gpkg", layer=layer)
    return dict(zip(meta["fields"], data)), shapely.from_wkb(geom)


def test_manifest_lists_every_file_and_layer_with_its_import_command(district):
    out, manifest = district
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8")) == manifest
    gpkg = manifest["files"][0]
    assert gpkg["path"] == "district.gpkg"
    assert [layer["layer"] for layer in gpkg["layers"]] == LAYERS
    for layer in gpkg["layers"]:
        assert (
            layer["count"] == pyogrio.read_info(out / "district.gpkg", layer=layer["layer"])["features"] > 0
        )
        if layer["layer"] == "pipe_nodes":  # loaded by the pipes import, as one network
            assert layer["command"] is None and layer["imported_with"] == "pipes"
        else:
            assert layer["command"].startswith(f"cim import gis district.gpkg --layer {layer['layer']} --as ")
    ifc = [f for f in manifest["files"][1:] if f["kind"] == "ifc"]
    assert {f["path"] for f in ifc} == {
        "ifc/school.ifc",
        "ifc/hospital.ifc",
        "ifc/office_tower.ifc",
        "ifc/residential_old.ifc",
        "ifc/residential_renewed.ifc",
    }
    for f in ifc:
        assert (out / f["path"]).is_file()
        assert f["command"].startswith(f"cim import ifc {f['path']}")
    assert pyogrio.read_info(out / "district.gpkg", layer="buildings")["crs"] == "EPSG:4547"


def test_counts_and_contents_at_scale_1(district):
    out, manifest = district
    counts = manifest["counts"]
    assert 2200 <= counts["buildings"] <= 4000
    assert 60 <= counts["compounds"] <= 200
    assert 150 <= counts["landuse"] <= 400
    assert 300 <= counts["pipes_km_total"] <= 900
    xmin, ymin, xmax, ymax = manifest["extent"]
    assert 2800 <= xmax - xmin <= 3200 and 2800 <= ymax - ymin <= 3200
    roads, _ = read(out, "roads")
    assert {"天中山大道", "解放大道", "雪松大道", "驿城大道", "开源大道"} <= set(roads["name"])
    assert set(roads["road_class"]) == {"arterial", "secondary", "local", "greenway"}  # greenway: health check
    rivers, _ = read(out, "rivers")
    assert set(rivers["name"]) == {"练江河", "小清河"}
    green, geoms = read(out, "green")
    np.testing.assert_allclose(green["area_m2"], shapely.area(geoms), atol=0.1)
    area = green["area_m2"]
    assert (area >= 5000).any() and ((area >= 2000) & (area < 5000)).any() and (area < 2000).any()
    assert set(green["kind"]) == {"park", "green", "pocket_park"}
    facilities, _ = read(out, "facilities")
    assert set(facilities["kind"]) == {
        "school",
        "hospital",
        "clinic",
        "elderly_care",
        "fire_station",
        "parking",
        "kindergarten",
    }
    b, _ = read(out, "buildings")
    assert set(b["use"]) == {
        "residential",
        "commercial",
        "office",
        "education",
        "medical",
        "industrial",
        "public",
    }
    assert set(b["structure"]) == {"brick-concrete", "reinforced concrete", "steel", "frame"}
    assert len(set(b["id"])) == len(b["id"])
    assert ((b["ground_z"] > 70) & (b["ground_z"] < 80)).all()
    assert (b["height_m"] > b["floors"] * 2.8).all()


def test_every_polygon_is_valid(district):
    out, _ = district
    for layer in ("rivers", "landuse", "compounds", "buildings", "green"):
        _, geoms = read(out, layer)
        assert shapely.is_valid(geoms).all(), layer
        assert (shapely.get_type_id(geoms) == 3).all(), layer


def test_buildings_stand_inside_their_parcels_without_overlapping(district):
    out, _ = district
    _, b = read(out, "buildings")
    _, parcels = read(out, "landuse")
    tree = shapely.STRtree(b)
    pairs = tree.query(b, predicate="intersects")
    overlap = pairs[0] != pairs[1]
    assert not (shapely.area(shapely.intersection(b[pairs[0][overlap]], b[pairs[1][overlap]])) > 0.01).any()
    inside = shapely.STRtree(parcels).query(b, predicate="within")
    assert len(np.unique(inside[0])) == len(b)


def _networks(out):
    pipes, lines = read(out, "pipes")
    nodes, points = read(out, "pipe_nodes")
    return pipes, lines, nodes, points


def test_every_segment_ends_exactly_on_its_nodes(district):
    out, _ = district
    pipes, lines, nodes, points = _networks(out)
    index = {node_id: k for k, node_id in enumerate(nodes["id"])}
    a = np.array([index[n] for n in pipes["from_node"]])
    b = np.array([index[n] for n in pipes["to_node"]])
    xy = shapely.get_coordinates(points)
    start = shapely.get_coordinates(shapely.get_point(lines, 0))
    end = shapely.get_coordinates(shapely.get_point(lines, -1))
    assert np.array_equal(start, xy[a]) and np.array_equal(end, xy[b])
    assert (nodes["utility"][a] == pipes["utility"]).all()
    # Depths and ground at the ends are the nodes' own, and the line's z is the node's invert/centreline.
    np.testing.assert_array_equal(pipes["start_depth"], nodes["depth"][a])
    np.testing.assert_array_equal(pipes["ground_z_end"], nodes["ground_z"][b])
    z = shapely.get_coordinates(shapely.get_point(lines, 0), include_z=True)[:, 2]  # lines may bend between
    np.testing.assert_allclose(z, nodes["invert_z"][a], atol=1e-6)
    np.testing.assert_allclose(nodes["ground_z"] - nodes["depth"], nodes["invert_z"], atol=2e-3)
    assert (pipes["length_m"] >= 0.05).all() and (pipes["length_m"] <= 75).all()


def test_drainage_manholes_at_most_75m_apart_and_inverts_falling_to_river_outfalls(district):
    out, manifest = district
    pipes, lines, nodes, points = _networks(out)
    # the planted low-lying area (sample_models.district.drainage) lies shallower on purpose
    low = np.isin(pipes["id"], [k.removeprefix("pipe:") for k in manifest["drainage"]["lowland"]["pipes"]])
    _, rivers = read(out, "rivers")
    banks = shapely.union_all(shapely.boundary(rivers))
    for utility in ("rain", "sewage"):
        p = pipes["utility"] == utility
        assert p.sum() > 500
        assert (shapely.length(lines[p]) <= 75).all()
        assert (pipes["start_invert"][p] > pipes["end_invert"][p]).all()
        assert (pipes["start_depth"][p & ~low] >= 1.5).all()
        n = nodes["utility"] == utility
        ids = nodes["id"][n]
        types = nodes["node_type"][n]
        assert set(types) == {"manhole", "outlet"}
        outlets = np.flatnonzero(types == "outlet")
        assert (shapely.distance(points[n][outlets], banks) < 0.01).all()
        # Every manhole drains, downstream, to an outfall.
        index = {node_id: k for k, node_id in enumerate(ids)}
        a = np.array([index[x] for x in pipes["from_node"][p]])
        b = np.array([index[x] for x in pipes["to_node"][p]])
        upstream = coo_matrix((np.ones(len(a)), (b, a)), shape=(len(ids), len(ids))).tocsr()
        reached = np.zeros(len(ids), dtype=bool)
        for o in outlets:
            reached[breadth_first_order(upstream, o, directed=True, return_predecessors=False)] = True
        assert reached.all(), utility
        assert ((pipes["shape"][p] == "circular") == (pipes["diameter_mm"][p] > 0)).all()


def test_pressure_networks_are_connected_with_valves_hydrants_cast_iron_and_gas_pressures(district):
    out, _ = district
    pipes, _, nodes, _ = _networks(out)
    for utility in ("water", "gas", "heat", "power", "telecom"):
        ids = nodes["id"][nodes["utility"] == utility]
        index = {node_id: k for k, node_id in enumerate(ids)}
        p = pipes["utility"] == utility
        a = [index[x] for x in pipes["from_node"][p]]
        b = [index[x] for x in pipes["to_node"][p]]
        n_components, _ = connected_components(
            coo_matrix((np.ones(len(a)), (a, b)), shape=(len(ids),) * 2), directed=False
        )
        assert n_components == 1, utility
    water_nodes = Counter(nodes["node_type"][nodes["utility"] == "water"])
    assert water_nodes["valve"] > 100 and water_nodes["hydrant"] > 100
    water = pipes["utility"] == "water"
    cast_iron = water & (pipes["material"] == "cast iron")
    assert cast_iron.sum() > 100
    assert ((pipes["install_year"][cast_iron] >= 1980) & (pipes["install_year"][cast_iron] < 2000)).all()
    gas = pipes["utility"] == "gas"
    assert set(pipes["pressure_class"][gas]) == {"low", "medium-B", "medium-A"}
    assert set(pipes["cjj_code"]) == {"JS", "YS", "WS", "RQ", "RL", "DL", "TX"}
    power = pipes["utility"] == "power"
    assert (pipes["shape"][power] == "rectangular").all() and (pipes["width_mm"][power] > 0).all()


def test_a_third_of_compounds_built_before_2000_with_their_buildings(district):
    out, _ = district
    compounds, _ = read(out, "compounds")
    share = np.mean(compounds["build_year"] < 2000)
    assert 0.25 <= share <= 0.42
    b, _ = read(out, "buildings")
    year_of = dict(zip(compounds["name"], compounds["build_year"]))
    in_compound = np.array([c is not None for c in b["compound"]])
    assert (b["use"][in_compound] == "residential").all()
    first = np.array([year_of[c] for c in b["compound"][in_compound]])
    years = b["build_year"][in_compound]
    assert ((years >= first) & (years <= first + 2)).all()
    assert ((first < 2000) == (years < 2000)).all()
    assert (compounds["households"] > 0).all()


def _map(conversion, x, y):
    a, b = conversion.XAxisAbscissa, conversion.XAxisOrdinate
    norm = (a * a + b * b) ** 0.5
    a, b, s = a / norm, b / norm, conversion.Scale or 1.0
    return conversion.Eastings + s * (a * x - b * y), conversion.Northings + s * (b * x + a * y)


def test_each_ifc_building_opens_and_stands_on_its_footprint(district):
    out, manifest = district
    b, footprints = read(out, "buildings")
    settings = ifcopenshell.geom.settings()
    settings.set("use-world-coords", True)
    for entry in [e for e in manifest["files"][1:] if e["kind"] == "ifc"]:
        f = ifcopenshell.open(out / entry["path"])
        assert f.schema == "IFC4"
        k = int(np.flatnonzero(b["id"] == entry["building_id"])[0])
        if entry["scenario"] == "as-is":
            assert b["ifc_file"][k] == entry["path"]
        conversion = f.by_type("IfcMapConversion")[0]
        assert conversion.TargetCRS.Name == "EPSG:4547"
        building = f.by_type("IfcBuilding")[0]
        common = ifcopenshell.util.element.get_pset(building, "Pset_BuildingCommon")
        assert common["NumberOfStoreys"] == b["floors"][k] == len(f.by_type("IfcBuildingStorey"))
        assert common["YearOfConstruction"] == str(entry["build_year"])
        assert common["BuildingID"] == entry["building_id"]
        storeys = sorted(f.by_type("IfcBuildingStorey"), key=lambda s: s.Elevation)
        assert storeys[0].Elevation == 0 and storeys[-1].Elevation > 0
        for cls in ("IfcSpace", "IfcWall", "IfcSlab", "IfcWindow", "IfcDoor"):
            assert f.by_type(cls), cls
        # The ground-floor slab, placed through the map conversion, covers the footprint.
        slab = next(
            s
            for s in f.by_type("IfcSlab")
            if s.PredefinedType == "FLOOR" and ifcopenshell.util.element.get_container(s) == storeys[0]
        )
        verts = np.array(ifcopenshell.geom.create_shape(settings, slab).geometry.verts).reshape(-1, 3)
        corners = np.array([_map(conversion, x, y) for x, y in verts[:, :2]])
        fx0, fy0, fx1, fy1 = shapely.bounds(footprints[k])
        centre = corners.min(axis=0) / 2 + corners.max(axis=0) / 2
        assert np.hypot(*(centre - [(fx0 + fx1) / 2, (fy0 + fy1) / 2])) < 1.0
        np.testing.assert_allclose(
            corners.max(axis=0) - corners.min(axis=0), [fx1 - fx0, fy1 - fy0], atol=0.05
        )
        assert abs(conversion.OrthogonalHeight - b["ground_z"][k]) < 0.01
        # Real shapes for walls, windows and doors; glazing is transparent.
        for cls in ("IfcWall", "IfcWindow", "IfcDoor"):
            assert len(ifcopenshell.geom.create_shape(settings, f.by_type(cls)[0]).geometry.verts) >= 24
        window = f.by_type("IfcWindow")[0]
        styled = window.Representation.Representations[0].Items[0].StyledByItem[0]
        assert styled.Styles[0].Styles[0].Transparency > 0.3


def test_renewed_block_shares_the_footprint_and_its_pipes_meet_the_street_networks(district):
    out, manifest = district
    entries = {f["path"]: f for f in manifest["files"][1:]}
    old, new = entries["ifc/residential_old.ifc"], entries["ifc/residential_renewed.ifc"]
    assert old["building_id"] == new["building_id"] and new["build_year"] > old["build_year"]
    assert old["build_year"] < 2000
    nodes, points = read(out, "pipe_nodes")
    f = ifcopenshell.open(out / new["path"])
    conversion = f.by_type("IfcMapConversion")[0]
    pipes = f.by_type("IfcPipeSegment")
    utilities = set()
    settings = ifcopenshell.geom.settings()
    for pipe in pipes:
        data = ifcopenshell.util.element.get_pset(pipe, "CIM_Pipe")
        assert ifcopenshell.util.element.get_pset(pipe, "Pset_PipeSegmentTypeCommon")["NominalDiameter"] > 0
        system = pipe.HasAssignments[0].RelatingGroup
        assert system.is_a("IfcDistributionSystem") and system.PredefinedType in (
            "WATERSUPPLY",
            "SEWAGE",
            "STORMWATER",
        )
        utilities.add(data["Utility"])
        k = int(np.flatnonzero(nodes["id"] == data["StreetNodeId"])[0])
        assert nodes["utility"][k] == data["Utility"]
        x, y, z = pipe.Representation.Representations[0].Items[0].Directrix.Points[-1].Coordinates
        end = _map(conversion, x, y)
        assert np.hypot(end[0] - points[k].x, end[1] - points[k].y) < 0.01
        z_world = z + conversion.OrthogonalHeight
        assert nodes["invert_z"][k] - 0.01 <= z_world <= nodes["ground_z"][k]
        assert len(ifcopenshell.geom.create_shape(settings, pipe).geometry.verts) > 0
    assert {"water", "sewage"} <= utilities


def test_a_clearance_run_over_the_district_finds_only_the_planted_zone(db, district):
    """`cim demo`'s district (its layers and IFC buildings, with the renewed block's three service pipes that
    cross the street to their mains, and the planted drainage cases: surveyed pipes into another utility's
    manholes, without ground levels) and the planted-violations zone: every finding is a planted one."""
    out, manifest = district
    load(out, engine=db)
    drainage.load(out, engine=db)
    underground.load(out, engine=db)
    result = clearances.check(engine=db)
    with db.connect() as c:
        laterals = c.scalar(sa.text("select count(*) from pipe_segments s join city_objects o on o.id = s.object_id "
                                    "join datasets d on d.id = o.dataset_id where d.name = :d"),
                            {"d": "sample-ifc-residential-renewed"})
        rows = c.execute(sa.text("""
            select f.rule, a.key, b.key, st_x(f.geom), st_y(f.geom) from qa_findings f
            left join city_objects a on a.id = f.object_id left join city_objects b on b.id = f.related_id
            where f.run_id = :r and f.severity <> 'info'"""), {"r": result["run_id"]}).all()
    assert laterals == 3
    zone = shapely.box(*manifest["underground"]["zone"]["bbox"])
    assert [r[:3] for r in rows if not zone.contains(shapely.Point(r[3], r[4]))] == []
    assert {r[:3] for r in rows} == {(p["rule"], p["object"], p["related"]) for p in manifest["underground"]["planted"]}


def test_same_seed_same_features_whatever_the_chunking_and_another_seed_differs(
    district, tmp_path, monkeypatch
):
    out, _ = district
    monkeypatch.setattr(writer, "CHUNK_FEATURES", 700)  # many more, smaller appends than the first run
    again = tmp_path / "again"
    generate(again, scale=1, seed=7)
    for layer in LAYERS:
        (c1, g1), (c2, g2) = read(out, layer), read(again, layer)
        assert c1.keys() == c2.keys()
        for name in c1:
            np.testing.assert_array_equal(c1[name], c2[name], err_msg=f"{layer}.{name}")
        assert np.array_equal(shapely.to_wkb(g1), shapely.to_wkb(g2)), layer
    for path in (out / "ifc").glob("*.ifc"):
        assert (again / "ifc" / path.name).read_bytes() == path.read_bytes()

    monkeypatch.setattr(generator, "_write_ifc", lambda *args: [])
    other = tmp_path / "other"
    generate(other, scale=1, seed=8)
    for layer in ("buildings", "roads", "pipes"):
        (c1, g1), (c2, g2) = read(out, layer), read(other, layer)
        assert len(g1) != len(g2) or not np.array_equal(shapely.to_wkb(g1), shapely.to_wkb(g2)), layer


def test_a_north_south_building_is_rotated_onto_its_footprint(tmp_path):
    rect = (500100.0, 3650200.0, 500112.0, 3650236.0)  # 12 m east-west, 36 m north-south
    model = BuildingModel(
        "slab", "测试楼", "residential", "B000001", rect, 2, 2.9, 1995, "brick-concrete", 75.0
    )
    write_ifc(model, tmp_path / "slab.ifc", seed=7)
    f = ifcopenshell.open(tmp_path / "slab.ifc")
    conversion = f.by_type("IfcMapConversion")[0]
    assert (conversion.XAxisAbscissa, conversion.XAxisOrdinate) == (0.0, 1.0)
    settings = ifcopenshell.geom.settings()
    settings.set("use-world-coords", True)
    verts = np.vstack(
        [
            np.array(ifcopenshell.geom.create_shape(settings, w).geometry.verts).reshape(-1, 3)
            for w in f.by_type("IfcWall")
        ]
    )
    corners = np.array([_map(conversion, x, y) for x, y in verts[:, :2]])
    np.testing.assert_allclose([*corners.min(axis=0), *corners.max(axis=0)], rect, atol=1e-6)


def test_load_imports_each_entry_once_then_only_what_changed(db, tmp_path):
    assert not is_current(tmp_path)
    manifest = generate(tmp_path, scale=0.01, seed=7)
    assert is_current(tmp_path)
    listed = entries(tmp_path)
    commands = [layer["command"] for layer in manifest["files"][0]["layers"] if layer["command"]]
    commands += [layer["command"] for f in manifest["files"][1:] for layer in f.get("layers", [])]  # the plan's
    commands += [f["command"] for f in manifest["files"][1:] if f["kind"] == "ifc"]
    assert [e.command for e in listed] == commands  # the manifest shows each import as a `cim import`
    steps = []
    first = load(tmp_path, engine=db, on_step=lambda done, total: steps.append((done, total)))
    assert [r.dataset for r in first] == [e.dataset for e in listed]
    assert len({r.dataset for r in first}) == len(listed) == 18  # with hc_units, hc_facilities, the plan's two
    assert steps == [(k, len(listed)) for k in range(len(listed) + 1)]
    assert {d["name"] for d in store.list_datasets(db)} == {e.dataset for e in listed}
    assert all(sum(r.counts.values()) > 0 for r in first)
    assert load(tmp_path, engine=db) == []
    (tmp_path / "ifc" / "hospital.ifc").write_bytes((tmp_path / "ifc" / "school.ifc").read_bytes())
    assert [r.dataset for r in load(tmp_path, engine=db)] == ["sample-ifc-hospital"]


def test_a_manifest_of_an_older_generator_is_not_current_and_not_loaded(tmp_path):
    """Older manifests listed only `cim import` commands: `cim demo` generates such a district again."""
    roads = {"layer": "roads", "command": "cim import gis district.gpkg --layer roads --as roads"}
    manifest = {"files": [{"path": "district.gpkg", "layers": [roads]}]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert not is_current(tmp_path)
    with pytest.raises(InputError, match="older generator"):
        load(tmp_path)


def test_a_district_of_an_older_version_is_not_current(tmp_path):
    generate(tmp_path, scale=0.01, seed=7)
    path = tmp_path / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    assert is_current(tmp_path) and manifest["version"] == manifest_version
    path.write_text(json.dumps({**manifest, "version": manifest_version - 1}), encoding="utf-8")
    assert not is_current(tmp_path)  # cim demo generates it again

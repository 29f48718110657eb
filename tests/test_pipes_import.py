"""Pipe survey layers: heights at depth, Chinese field names, topology, survey QA, and the sample district."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pyogrio.raw
import pytest
import shapely
import sqlalchemy as sa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components

from analyses import network_qa
from cim_core.errors import GeoreferenceError, InputError
from cim_core.store import list_datasets
from importers import pipes

X0, Y0 = 501800.0, 3649500.0  # Zhumadian, EPSG:4547


def write_layer(path: Path, layer: str, geoms: list, crs: str | None = "EPSG:4547", **columns) -> None:
    """One layer of a GeoPackage (appended when the file exists), written with pyogrio."""
    arr = np.array(geoms, dtype=object)
    kind = {0: "Point", 1: "LineString"}[int(shapely.get_type_id(arr[0]))]
    if shapely.has_z(arr[0]):
        kind += " Z"
    pyogrio.raw.write(path, shapely.to_wkb(arr), [np.asarray(v) for v in columns.values()], list(columns),
                      layer=layer, driver="GPKG", geometry_type=kind, crs=crs, append=path.exists())


def line(*pts):
    return shapely.LineString([(X0 + x, Y0 + y) for x, y in pts])


def point(x, y):
    return shapely.Point(X0 + x, Y0 + y)


def rows(engine, sql, **params):
    with engine.connect() as c:
        return c.execute(sa.text(sql), params).all()


def segment(engine, key):
    return rows(engine, """
        select s.start_invert, s.end_invert, s.start_depth, s.end_depth, st_asbinary(s.centerline),
               o.zmin, o.zmax, s.diameter_mm, s.material, s.owner, s.install_year, s.utility,
               (select key from city_objects where id = s.from_node), (select key from city_objects where id = s.to_node)
        from pipe_segments s join city_objects o on o.id = s.object_id where o.key = :k""", k=key)[0]


def centerline(wkb) -> np.ndarray:
    return shapely.get_coordinates(shapely.from_wkb(bytes(wkb)), include_z=True)


def survey_qa(engine, dataset) -> dict[str, int]:
    """The survey QA run on an imported dataset: its counts by rule, which the dataset's report and counts
    keep too."""
    counts = network_qa.check(dataset, engine=engine)
    stored, = [d for d in list_datasets(engine) if d["name"] == dataset]
    assert stored["report"]["qa"] == counts
    assert stored["counts"].get("qa_findings", 0) == sum(counts.values())
    return counts


def findings(engine, dataset):
    out: dict[str, set] = {}
    for rule, key in rows(engine, """select f.rule, o.key from qa_findings f join datasets d on d.id = f.dataset_id
                                     left join city_objects o on o.id = f.object_id where d.name = :n""", n=dataset):
        out.setdefault(rule, set()).add(key)
    return out


def test_pipe_between_nodes_lies_at_their_invert_depths(db, tmp_path):
    """Manholes 3.0 m and 2.5 m deep to the invert: the sewer's inverts, axis and tube follow them."""
    gpkg = tmp_path / "sewer.gpkg"
    write_layer(gpkg, "pipe_nodes", [point(0, 0), point(40, 10)], id=["WS1", "WS2"], utility=["sewage"] * 2,
                node_type=["manhole"] * 2, ground_z=[60.0, 59.0], depth=[3.0, 2.5])
    write_layer(gpkg, "pipes", [line((0, 0), (20, 0), (40, 10))], id=["W1"], utility=["sewage"],
                diameter_mm=[400], material=["PVC-U"])
    res = pipes.import_layer(gpkg, engine=db)
    assert res.counts == {"pipe_node": 2, "pipe_segment": 1} and res.report["qa"] == {}
    assert survey_qa(db, res.dataset) == {}
    start_inv, end_inv, start_depth, end_depth, wkb, zmin, _, dia, *_, frm, to = segment(db, "pipe:W1")
    assert (start_inv, end_inv) == pytest.approx((57.0, 56.5), abs=0.01)
    assert (start_depth, end_depth) == pytest.approx((3.0, 2.5), abs=0.01)
    axis = centerline(wkb)
    # the axis is the invert raised by the radius, interpolated by distance along the vertices
    total = 20 + np.hypot(20, 10)
    assert axis[:, 2] == pytest.approx([57.2, 57.2 - 0.5 * 20 / total, 56.7], abs=0.01)
    assert zmin == pytest.approx(56.5, abs=0.01) and dia == 400
    assert (frm, to) == ("node:WS1", "node:WS2")
    # manholes: shafts from the invert up to the ground
    shafts = rows(db, "select key, zmin, zmax, depth from city_objects join pipe_nodes on object_id = id order by key")
    assert [(k, round(a, 2), round(b, 2), round(d, 2)) for k, a, b, d in shafts] == \
        [("node:WS1", 57.0, 60.0, 3.0), ("node:WS2", 56.5, 59.0, 2.5)]
    # the point layer alone: the manholes only, same shafts
    alone = pipes.import_layer(gpkg, "pipe_nodes", engine=db)
    assert alone.dataset == "sewer_pipe_nodes" and alone.counts == {"pipe_node": 2}
    assert rows(db, "select zmin, zmax from city_objects where key = 'node:WS1' order by id") == [(57.0, 60.0)] * 2


def test_chinese_survey_fields_and_generated_junctions(db, tmp_path):
    gpkg = tmp_path / "给水.gpkg"
    write_layer(gpkg, "给水管线", [line((0, 0), (30, 0)), line((30, 0.2), (30, 40))],
                编号=["JS1", "JS2"], 管线类型=["给水", "给水"], 管径=["DN300", "DN300"], 材质=["球墨铸铁", "球墨铸铁"],
                起点埋深=[1.3, 1.4], 终点埋深=[1.4, 1.2], 起点地面高程=[61.0, 61.2], 终点地面高程=[61.2, 61.5],
                权属单位=["驻马店市供水有限公司"] * 2, 建设年代=["1998年", "2015"])
    res = pipes.import_layer(gpkg, engine=db)
    # the two pipes meet (0.2 m apart, within the snap tolerance) at a generated junction; the far ends dangle
    assert res.counts == {"pipe_node": 1, "pipe_segment": 2}
    assert survey_qa(db, res.dataset) == {"dangling_end": 2}
    s_inv, _, s_depth, _, wkb, _, _, dia, material, owner, year, utility, frm, to = segment(db, "pipe:JS1")
    assert (dia, material, owner, year, utility) == (300, "球墨铸铁", "驻马店市供水有限公司", 1998, "water")
    # a pressure pipe's survey depth is to its centreline
    assert centerline(wkb)[[0, -1], 2] == pytest.approx([61.0 - 1.3, 61.2 - 1.4], abs=0.01)
    assert (s_inv, s_depth) == pytest.approx((61.0 - 1.3 - 0.15, 1.3 + 0.15), abs=0.01)
    assert frm is None and to == segment(db, "pipe:JS2")[12]
    assert segment(db, "pipe:JS2")[10] == 2015


def test_utilities_cross_without_joining_and_number_their_own_nodes(db, tmp_path):
    """A mixed survey: water and gas both number nodes from 1, and a gas pipe ends 0.2 m from a water node."""
    gpkg = tmp_path / "mixed.gpkg"
    write_layer(gpkg, "pipe_nodes", [point(0, 0), point(30, 0), point(0, 5), point(30, 5)], id=["1", "2", "1", "2"],
                utility=["water", "water", "gas", "gas"], node_type=["valve"] * 4, ground_z=[60.0] * 4)
    write_layer(gpkg, "pipes", [line((0, 0), (30, 0)), line((0, 5), (30, 5)), line((30, 5), (30, 0.2))],
                id=["1", "1", "2"], utility=["water", "gas", "gas"], from_node=["1", "1", "2"],
                to_node=["2", "2", None], diameter_mm=[200, 110, 110], start_depth=[1.2] * 3, end_depth=[1.2] * 3)
    res = pipes.import_layer(gpkg, engine=db)
    assert survey_qa(db, res.dataset) == {"dangling_end": 1}  # the gas pipe's end next to the water node
    assert segment(db, "pipe:water:1")[12:] == ("node:water:1", "node:water:2")
    assert segment(db, "pipe:gas:1")[12:] == ("node:gas:1", "node:gas:2")
    assert segment(db, "pipe:2")[12:] == ("node:gas:2", None)


def qa_network(path: Path) -> None:
    """A water survey that breaks each QA rule once."""
    nodes = {"N1": (0, 0), "N2": (40, 0), "N3": (80, 0), "N4": (80, 90), "N5": (200, 0), "N6": (200.03, 0)}
    write_layer(path, "pipe_nodes", [point(*p) for p in nodes.values()], id=list(nodes), utility=["water"] * 6,
                node_type=["valve", "junction", "fitting", "junction", "junction", "junction"],
                feature=[None, None, "三通", None, None, None], ground_z=[60.0] * 6)
    pipes_ = {
        "P1": ((0, 0), (40, 0), 1.2, 1.2),
        "P2": ((40, 0), (80, 0), 1.5, 1.2),  # starts 0.3 m deeper than P1 ends: depth mismatch at N2
        "P3": ((0, 0), (40, 0), 1.2, 1.2),  # duplicates P1
        "P4": ((80, 0), (80, 90), 1.2, 1.2),  # 90 m; N3 is a tee with two pipes only
        "P5": ((200, 0), (200.03, 0), 1.2, 1.2),  # 3 cm
        "P6": ((0, 0), (0, -30), 1.2, 1.2),  # its end touches nothing
    }
    write_layer(path, "pipes", [line(a, b) for a, b, _, _ in pipes_.values()], id=list(pipes_),
                utility=["water"] * 6, diameter_mm=[200] * 6, start_depth=[p[2] for p in pipes_.values()],
                end_depth=[p[3] for p in pipes_.values()])


def test_survey_qa_catches_each_rule(db, tmp_path):
    gpkg = tmp_path / "qa.gpkg"
    qa_network(gpkg)
    res = pipes.import_layer(gpkg, engine=db)
    expected = {"dangling_end": {"pipe:P6"}, "duplicate_segment": {"pipe:P3"}, "segment_too_long": {"pipe:P4"},
                "segment_too_short": {"pipe:P5"}, "tee_degree": {"node:N3"}, "depth_mismatch": {"node:N2"}}
    assert survey_qa(db, res.dataset) == {k: 1 for k in sorted(expected)}
    assert findings(db, "qa_pipes") == expected
    # the findings carry locations: the dangling end is where P6 ends
    (x, y), = rows(db, "select st_x(geom) - :x, st_y(geom) - :y from qa_findings where rule = 'dangling_end'",
                   x=X0, y=Y0)
    assert (x, y) == pytest.approx((0, -30))


def test_cli_field_mapping_qa_summary_and_rerun(cli_env, db, tmp_path):
    gpkg = tmp_path / "gas.gpkg"
    write_layer(gpkg, "gas_nodes", [point(0, 0), point(50, 0)], id=["G1", "G2"], node_type=["阀门", "阀门"],
                ground_z=[60.0, 60.0])
    write_layer(gpkg, "gas", [line((0, 0), (50, 0))], id=["RQ1"], GX_DN=[160], MS1=[1.0], MS2=[1.1])
    args = [".venv/bin/cim", "import", "pipes", str(gpkg), "--utility", "gas", "--field", "diameter_mm=GX_DN",
            "--field", "start_depth=MS1", "--field", "end_depth=MS2", "--dataset", "gas"]
    cwd = Path(__file__).parents[1]
    out = subprocess.run(args, env=cli_env, cwd=cwd, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "imported" in out.stdout and "gas" in out.stdout
    s = segment(db, "pipe:RQ1")
    assert (s[7], s[11], s[12], s[13]) == (160, "gas", "node:G1", "node:G2")
    assert centerline(s[4])[:, 2] == pytest.approx([59.0, 58.9])
    assert rows(db, "select node_type from pipe_nodes") == [("valve",), ("valve",)]
    again = subprocess.run(args, env=cli_env, cwd=cwd, capture_output=True, text=True, check=False)
    assert again.returncode == 0 and "skipped" in again.stdout
    qa = subprocess.run([".venv/bin/cim", "qa", "gas"], env=cli_env, cwd=cwd, capture_output=True, text=True, check=False)
    assert qa.returncode == 0 and "no QA findings" in qa.stdout
    bad = subprocess.run(args[:-2] + ["--field", "diameter_mm=NOPE", "--dataset", "gas2"], env=cli_env, cwd=cwd,
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 1
    assert bad.stderr.strip().count("\n") == 0 and "gas.gpkg" in bad.stderr and "'NOPE'" in bad.stderr
    assert rows(db, "select name from datasets") == [("gas",)]


def test_cli_qa_lists_rules(cli_env, db, tmp_path):
    gpkg = tmp_path / "qa.gpkg"
    qa_network(gpkg)
    pipes.import_layer(gpkg, engine=db, dataset="survey")
    network_qa.check("survey", engine=db)
    out = subprocess.run([".venv/bin/cim", "qa", "survey"], env=cli_env, cwd=Path(__file__).parents[1],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    for rule in ("dangling_end", "duplicate_segment", "segment_too_long", "segment_too_short", "tee_degree",
                 "depth_mismatch"):
        assert rule in out.stdout
    assert "P3 duplicates pipe:P1" in out.stdout


def test_a_pipe_without_ground_or_nodes_takes_its_ground_from_invert_and_depth(db, tmp_path):
    """A surveyed connection that ends in another dataset's manholes: invert and depth give its ground
    (gravity: depth to the invert; pressure: to the axis), so its cover is its own, not measured from 0 m."""
    gpkg = tmp_path / "survey.gpkg"
    write_layer(gpkg, "pipes", [line((0, 0), (20, 0)), line((0, 5), (20, 5))], id=["R1", "G1"],
                utility=["rain", "gas"], diameter_mm=[300, 200], start_invert=[71.4, 72.0], end_invert=[71.2, 72.0],
                start_depth=[2.6, 1.2], end_depth=[3.1, 1.2])
    res = pipes.import_layer(gpkg, engine=db)
    assert res.report["heights"]["no_ground"] == 0
    ground = dict(rows(db, """select o.key, array[s.start_invert + s.start_depth, s.end_invert + s.end_depth]
                              from pipe_segments s join city_objects o on o.id = s.object_id"""))
    assert ground["pipe:R1"] == pytest.approx([74.0, 74.3], abs=0.001)
    assert ground["pipe:G1"] == pytest.approx([73.3, 73.3], abs=0.001)  # 72.0 + 0.1 (to the axis) + 1.2


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_bad_layers_are_refused_and_nothing_is_written(db, tmp_path):
    lonlat = tmp_path / "lonlat.gpkg"  # longitude/latitude declared as EPSG:4547
    write_layer(lonlat, "pipes", [shapely.LineString([(114.02, 32.98), (114.021, 32.98)])], id=["X"])
    with pytest.raises(GeoreferenceError, match="lonlat.gpkg.*longitude/latitude"):
        pipes.import_layer(lonlat, engine=db)
    nocrs = tmp_path / "nocrs.gpkg"
    write_layer(nocrs, "pipes", [line((0, 0), (10, 0))], crs=None, id=["X"])
    with pytest.raises(InputError, match="nocrs.gpkg: layer 'pipes' has no CRS"):
        pipes.import_layer(nocrs, engine=db)
    # with the CRS given, the same file imports
    res = pipes.import_layer(nocrs, crs="EPSG:4547", engine=db)
    assert res.counts == {"pipe_segment": 1} and survey_qa(db, res.dataset) == {"dangling_end": 2}
    with pytest.raises(InputError, match="no layer 'roads'"):
        pipes.import_layer(nocrs, "roads", engine=db)
    assert rows(db, "select name from datasets") == [("nocrs_pipes",)]


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    from sample_models.district import generate

    out = tmp_path_factory.mktemp("district")
    generate(out, scale=0.05, seed=7)
    return out / "district.gpkg"


def test_sample_district_imports_clean_and_connected(db, district):
    res = pipes.import_layer(district, engine=db)
    _, _, _, fields = pyogrio.raw.read(district, layer="pipes", columns=["id", "from_node", "to_node"],
                                       read_geometry=False)
    n_nodes = pyogrio.read_info(district, layer="pipe_nodes")["features"]
    assert res.counts == {"pipe_segment": len(fields[0]), "pipe_node": n_nodes}
    assert res.report["qa"] == {} and res.report["generated_junctions"] == 0
    assert survey_qa(db, res.dataset) == {}
    assert res.report["heights"] == {"no_ground": 0, "default_cover": 0}
    got = rows(db, """select o.key, f.key, t.key, s.utility from pipe_segments s
                      join city_objects o on o.id = s.object_id
                      join city_objects f on f.id = s.from_node join city_objects t on t.id = s.to_node""")
    assert len(got) == len(fields[0])  # every segment has both ends on nodes
    topo = {k: (f, t) for k, f, t, _ in got}
    assert all(topo[f"pipe:{i}"] == (f"node:{a}", f"node:{b}") for i, a, b in zip(*fields))
    # pressure networks are one connected graph; in drainage, every node drains (from -> to) to an outlet
    outlets = {k for k, in rows(db, "select key from city_objects join pipe_nodes on object_id = id "
                                   "where node_type = 'outlet'")}
    for utility in {u for *_, u in got}:
        edges = [(f, t) for _, f, t, u in got if u == utility]
        names = {n: i for i, n in enumerate(sorted({n for e in edges for n in e}))}
        a = np.array([[names[f], names[t]] for f, t in edges])
        n = len(names)
        if utility in ("rain", "sewage"):
            upstream = coo_matrix((np.ones(len(a)), (a[:, 1], a[:, 0])), shape=(n, n)).tocsr()
            reached = np.zeros(n, bool)
            for o in outlets & set(names):
                reached[breadth_first_order(upstream, names[o], directed=True, return_predecessors=False)] = True
            assert reached.all(), utility
        else:
            graph = coo_matrix((np.ones(len(a)), (a[:, 0], a[:, 1])), shape=(n, n))
            assert connected_components(graph, directed=False)[0] == 1, utility

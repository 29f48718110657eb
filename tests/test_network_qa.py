"""The survey QA as an analysis after the import: it replaces its own findings on every run, keeps the
import's findings about the source, and the dataset's report and counts follow."""
from __future__ import annotations

import sqlalchemy as sa
from test_pipes_import import line, point, write_layer

from analyses import network_qa
from cim_core.findings import qa_summary
from cim_core.store import list_datasets
from importers import pipes


def stored(engine, dataset) -> tuple[dict, dict]:
    d, = [d for d in list_datasets(engine) if d["name"] == dataset]
    return d["report"]["qa"], d["counts"]


def test_rerun_replaces_its_findings_and_keeps_the_imports(db, tmp_path):
    gpkg = tmp_path / "twice.gpkg"
    write_layer(gpkg, "pipe_nodes", [point(0, 0), point(40, 0)], id=["N1", "N2"], utility=["water"] * 2,
                node_type=["valve"] * 2, ground_z=[60.0] * 2)
    # the id P1 twice; the second pipe's end touches nothing
    write_layer(gpkg, "pipes", [line((0, 0), (40, 0)), line((40, 0), (40, 30))], id=["P1", "P1"],
                utility=["water"] * 2, diameter_mm=[200] * 2, start_depth=[1.2] * 2, end_depth=[1.2] * 2)
    res = pipes.import_layer(gpkg, engine=db)
    assert res.report["qa"] == {"duplicate_id": 1} and res.counts["qa_findings"] == 1
    for _ in range(2):
        assert network_qa.check(res.dataset, engine=db) == {"dangling_end": 1}
        qa, counts = stored(db, res.dataset)
        assert qa == {"dangling_end": 1, "duplicate_id": 1} and counts["qa_findings"] == 2
    summary = qa_summary(res.dataset, engine=db)
    assert summary["dangling_end"]["examples"] == ["pipe:P1#1: end connects to nothing within 0.5 m"]
    assert summary["duplicate_id"]["examples"] == ["pipe id 'P1' is used more than once"]
    # the finding names its object
    with db.connect() as c:
        key = c.scalar(sa.text("select o.key from qa_findings f join city_objects o on o.id = f.object_id "
                               "where f.rule = 'dangling_end'"))
    assert key == "pipe:P1#1"


def test_tolerances_come_from_the_import_and_the_analysis(db, tmp_path):
    """The snap tolerance is the import's (stored with the dataset); the depth tolerance the analysis's."""
    gpkg = tmp_path / "steps.gpkg"
    write_layer(gpkg, "pipe_nodes", [point(0, 0), point(40, 0), point(80, 0)], id=["N1", "N2", "N3"],
                utility=["water"] * 3, node_type=["valve"] * 3, ground_z=[60.0] * 3)
    write_layer(gpkg, "pipes", [line((0, 0), (40, 0)), line((40, 0), (80, 0)), line((80, 1.5), (80, 30))],
                id=["P1", "P2", "P3"], utility=["water"] * 3, diameter_mm=[200] * 3,
                start_depth=[1.2, 1.4, 1.2], end_depth=[1.2, 1.2, 1.2])
    res = pipes.import_layer(gpkg, engine=db, snap_tolerance=2.0)
    # P3 starts 1.5 m from N3: joined with a 2 m tolerance; its far end dangles
    assert qa_summary(res.dataset, engine=db) == {}  # nothing until the analysis runs
    # P1 and P2 meet at N2 with their axes 0.2 m apart
    assert network_qa.check(res.dataset, engine=db) == {"dangling_end": 1, "depth_mismatch": 1}
    assert qa_summary(res.dataset, engine=db)["dangling_end"]["examples"] == \
        ["pipe:P3: end connects to nothing within 2 m"]
    assert network_qa.check(res.dataset, engine=db, depth_tolerance=0.25) == {"dangling_end": 1}
    assert stored(db, res.dataset)[0] == {"dangling_end": 1}

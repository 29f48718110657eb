"""The sample district's planted drainage cases: the misconnections found exactly (nothing in the clean
street networks), the inspection records imported whole and graded."""
from __future__ import annotations

import json

import sqlalchemy as sa

from analyses.drainage import inspection, misconnections, tracing
from importers import gis
from sample_models.district import drainage, generate


def test_planted_cases_found_exactly(db, tmp_path):
    manifest = generate(tmp_path, scale=0.1, seed=7)
    assert json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))["drainage"] == manifest["drainage"]
    gis.import_file(tmp_path / "district.gpkg", layer="pipes", kind="pipes", dataset="sample-pipes", engine=db)
    survey, areas, cctv = drainage.load(tmp_path, engine=db)
    assert survey.counts["pipe_segment"] == 4 and areas.counts == {"landuse": 2}  # separation, waterlogging
    assert cctv.refused == [] and cctv.imported == manifest["drainage"]["inspection"]["records"] > 0
    out = misconnections.check(engine=db)
    planted = manifest["drainage"]["planted"]
    assert out["findings"] == {"rain_into_sewage": 1, "sewage_into_rain": 0, "sewage_to_rain_outfall": 0,
                               "combined_in_separated_area": 3, "lateral_against_flow": 0, "step_up": 0}
    with db.connect() as c:
        got = c.execute(sa.text("""select f.rule, o.key, r.key from qa_findings f join city_objects o on o.id = f.object_id
                                   left join city_objects r on r.id = f.related_id where f.run_id = :r"""),
                        {"r": out["run_id"]}).all()
    assert sorted(got) == sorted((rule, p["object"], p["related"]) for rule, cases in planted.items() for p in cases)
    # the surveyed pipes join the street networks: every piece still reaches an outfall
    assert tracing.outfall_check(engine=db)["pieces_without_outfall"] == 0
    graded = inspection.grade(engine=db)
    assert graded["segments"] == manifest["drainage"]["inspection"]["pipes"] and graded["inspected_km"] > 0

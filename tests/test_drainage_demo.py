"""`cim demo` runs the 3-year design storm over the sample district once (again after the district changed), so
the waterlogging layer and the health check's 严重易涝积水点数量 have data from the first start."""
from __future__ import annotations

import sqlalchemy as sa

from importers import gis
from sample_models.district import dataset_of, drainage, generate
from services.cli import serve


def test_demo_runs_the_design_storm_once(db, tmp_path):
    generate(tmp_path, scale=0.05, seed=7)
    gis.import_file(tmp_path / "district.gpkg", layer="pipes", kind="pipes", dataset=dataset_of("pipes"), engine=db)
    gis.import_file(tmp_path / "district.gpkg", layer="landuse", kind="landuse", dataset="sample-landuse", engine=db)
    drainage.load(tmp_path, engine=db)

    def runs():
        with db.connect() as c:
            return c.execute(sa.text("""select r.id, r.inputs, r.requested_by, count(f.id) from analysis_runs r
                left join qa_findings f on f.run_id = r.id and f.rule = 'flooding'
                where r.analysis = 'drainage-storm' group by r.id order by r.id""")).all()

    assert serve._design_storm(db, again=False)
    (rid, inputs, who, flooding), = runs()
    assert inputs == {"dataset": "sample-pipes", "return_period": 3, "duration_min": 120} and who == "cim demo"
    assert flooding > 0  # the low-lying area floods: the layer has points
    assert not serve._design_storm(db, again=False) and len(runs()) == 1  # a second start reuses it
    assert serve._design_storm(db, again=True) and len(runs()) == 2  # the district changed: run again

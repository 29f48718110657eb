"""Drainage operations (issue 15): per node and conduit results of storm runs (SI units: peak depth,
surcharge and flooding volume and duration of nodes, peak flow and capacity ratio of conduits), and CCTV
inspection records (one row per defect, CJJ 181-2012 codes) of an inspection dataset.

Revision ID: 0006
Revises: 0003
"""
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("""
        create table drainage_storm_results (
            run_id bigint not null references analysis_runs on delete cascade,
            object_id bigint not null references city_objects on delete cascade,
            kind text not null,
            peak_depth_m double precision,
            surcharge_h double precision,
            flooding_m3 double precision,
            flooding_h double precision,
            peak_flow_m3s double precision,
            capacity_ratio double precision,
            primary key (run_id, object_id)
        )""")
    op.execute("""
        create table pipe_inspections (
            id bigserial primary key,
            dataset_id integer not null references datasets on delete cascade,
            segment_id bigint not null references city_objects on delete cascade,
            inspected_on date not null,
            code text not null,
            kind text not null,
            grade smallint not null,
            position_m double precision not null,
            remarks text,
            repaired_on date,
            line integer
        )""")
    op.execute("create index pipe_inspections_segment on pipe_inspections (segment_id)")
    op.execute("create index pipe_inspections_dataset on pipe_inspections (dataset_id)")


def downgrade():
    op.execute("drop table pipe_inspections")
    op.execute("drop table drainage_storm_results")

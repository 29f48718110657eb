"""Drainage storm runs (issue 15): per node and conduit results of a run (SI units): peak depth, surcharge
and flooding volume and duration of nodes, peak flow and capacity ratio of conduits.

Revision ID: 0006
Revises: 0003
"""
from alembic import op

revision = "0006"
down_revision = "0003"
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


def downgrade():
    op.execute("drop table drainage_storm_results")

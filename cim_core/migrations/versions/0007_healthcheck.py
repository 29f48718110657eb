"""City health check (issue 16): indicator values per unit and year, each row tied to its analysis run.

Revision ID: 0007
Revises: 0003
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    srid = int(op.get_context().config.attributes["srid"])
    op.execute(f"""
        create table healthcheck_results (
            id bigserial primary key,
            run_id bigint not null references analysis_runs on delete cascade,
            year integer not null,
            indicator text not null,
            level text not null,
            unit_key text not null,
            unit_name text,
            unit_object_id bigint,
            value double precision,
            straight_value double precision,
            target double precision,
            passes boolean,
            details jsonb not null default '{{}}',
            geom geometry(Geometry, {srid})
        )""")
    op.execute("create index healthcheck_results_year on healthcheck_results (year, indicator)")
    op.execute("create index healthcheck_results_run on healthcheck_results (run_id)")


def downgrade():
    op.execute("drop table healthcheck_results")

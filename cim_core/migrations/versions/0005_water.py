"""Water supply operations (issue 14): the hydraulic model kept with an EPANET dataset.

Options and times, patterns, curves, controls and water-quality sources of the model (WNTR's dictionary
form, SI units), so that the stored network exports as a runnable EPANET model; the elements' own data
stay in their city objects' attributes. And the results of hydraulic simulation runs: a time series per
object and quantity.

Revision ID: 0005
Revises: 0003
"""
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("""
        create table hydraulic_models (
            dataset_id integer primary key references datasets on delete cascade,
            units text not null,
            options jsonb not null default '{}',
            patterns jsonb not null default '[]',
            curves jsonb not null default '[]',
            controls jsonb not null default '[]',
            sources jsonb not null default '[]'
        )""")
    op.execute("""
        create table hydraulic_results (
            run_id bigint references analysis_runs on delete cascade,
            object_id bigint references city_objects on delete cascade,
            quantity text,
            series float8[] not null,
            primary key (run_id, object_id, quantity)
        )""")


def downgrade():
    op.execute("drop table hydraulic_results")
    op.execute("drop table hydraulic_models")

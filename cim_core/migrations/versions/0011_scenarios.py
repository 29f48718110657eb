"""Renewal scenarios (issue 18): named plans over the as-is model; a dataset may belong to one, and a plan
removes objects (or whole datasets) of the as-is model.

Revision ID: 0011
Revises: 0010
"""
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("""
        create table scenarios (
            id serial primary key,
            name text not null unique,
            title text,
            description text not null default '',
            created_at timestamptz not null default now()
        )""")
    op.execute("alter table datasets add column scenario_id integer references scenarios on delete cascade")
    op.execute("""
        create table scenario_removals (
            id serial primary key,
            scenario_id integer not null references scenarios on delete cascade,
            dataset text not null,
            key text
        )""")
    op.execute("create index scenario_removals_scenario on scenario_removals (scenario_id)")


def downgrade():
    op.execute("drop table if exists scenario_removals")
    op.execute("alter table datasets drop column if exists scenario_id")
    op.execute("drop table if exists scenarios")

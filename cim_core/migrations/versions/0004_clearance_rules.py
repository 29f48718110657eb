"""Clearance and cover rules a city loads (issue 13): one rule a row with its confidence and source.

Revision ID: 0004
Revises: 0003
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("""
        create table clearance_rules (
            id serial primary key,
            ruleset text not null,
            "check" text not null,
            ref text not null,
            utility_a text not null,
            class_a text not null default '',
            utility_b text not null,
            class_b text not null default '',
            min_m float8 not null,
            confidence text not null,
            source text not null,
            loaded_at timestamptz not null default now(),
            constraint clearance_rules_min_m check (min_m >= 0)
        )""")


def downgrade():
    op.execute("drop table clearance_rules")

"""Water renewals: recording a renewal is an action granted to the `water` role (admin has every layer).

Revision ID: 0010
Revises: 0009
"""
from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("insert into access_layers values ('water_renewals', 'action', true) on conflict do nothing")
    op.execute("insert into role_grants values ('water', 'water_renewals') on conflict do nothing")


def downgrade():
    op.execute("delete from role_grants where layer = 'water_renewals'")
    op.execute("delete from access_layers where name = 'water_renewals'")

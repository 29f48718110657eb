"""No planner statistics for footprint_3857: vector tiles only draw it, they search the footprint's index, and
ANALYZE spent a quarter of its time on it (0.06 of 0.26 s CPU after a 105,163-building import). The
PostgreSQL manual (ANALYZE, Notes) advises a statistics target of zero for columns never used in WHERE,
GROUP BY or ORDER BY.

Revision ID: 0013
Revises: 0012
"""
from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("alter table city_objects alter column footprint_3857 set statistics 0")


def downgrade():
    op.execute("alter table city_objects alter column footprint_3857 set statistics -1")

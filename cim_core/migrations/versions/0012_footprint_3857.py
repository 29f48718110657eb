"""Vector tiles (issue 18): each footprint also in EPSG:3857, the CRS of WebMercatorQuad tiles, kept by
PostgreSQL (a stored generated column), so that a tile does not transform every geometry it draws.

Revision ID: 0012
Revises: 0011
"""
from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("alter table city_objects add column footprint_3857 geometry "
               "generated always as (st_transform(footprint, 3857)) stored")


def downgrade():
    op.execute("alter table city_objects drop column if exists footprint_3857")

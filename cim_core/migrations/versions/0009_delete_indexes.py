"""Deleting a dataset in seconds: every foreign key to city_objects gets an index on its referencing
column (without one, each deleted object's cascade scanned the whole table: a 100,000-object dataset with
30,000 findings elsewhere took over 10 minutes), and a child's parent link is cleared when its parent is
deleted, immediately, instead of a deferred check of every deleted row at COMMIT.

Revision ID: 0009
Revises: 0008
"""
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

INDEXES = [("qa_findings_object", "qa_findings", "object_id"),
           ("qa_findings_related", "qa_findings", "related_id"),
           ("hydraulic_results_object", "hydraulic_results", "object_id"),
           ("drainage_storm_results_object", "drainage_storm_results", "object_id")]


def upgrade():
    for name, table, column in INDEXES:
        op.execute(f"create index {name} on {table} ({column})")
    op.execute("alter table city_objects drop constraint city_objects_parent_id_fkey")
    op.execute("""alter table city_objects add constraint city_objects_parent_id_fkey foreign key (parent_id)
                  references city_objects on delete set null deferrable initially deferred""")


def downgrade():
    op.execute("alter table city_objects drop constraint city_objects_parent_id_fkey")
    op.execute("""alter table city_objects add constraint city_objects_parent_id_fkey foreign key (parent_id)
                  references city_objects deferrable initially deferred""")
    for name, _, _ in INDEXES:
        op.execute(f"drop index {name}")

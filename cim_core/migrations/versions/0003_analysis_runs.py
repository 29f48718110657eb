"""Analysis runs with their provenance; findings of runs as well as of imports.

A run records what it was asked (inputs), the rules or definitions it applied and their source,
the datasets it read (name, content hash, import time) and when. A finding belongs to a dataset
(import QA) or to a run, names its object and, for a pair, the other object, and keeps the measured
and required values with the rule's source and confidence in `details`.

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("""
        create table analysis_runs (
            id bigserial primary key,
            analysis text not null,
            inputs jsonb not null default '{}',
            rules jsonb not null default '{}',
            datasets jsonb not null default '[]',
            summary jsonb not null default '{}',
            requested_by text,
            started_at timestamptz not null default now(),
            finished_at timestamptz
        )""")
    op.execute("create index analysis_runs_analysis on analysis_runs (analysis, id)")
    op.execute("alter table qa_findings alter column dataset_id drop not null")
    op.execute("alter table qa_findings add column run_id bigint references analysis_runs on delete cascade")
    op.execute("alter table qa_findings add column related_id bigint references city_objects on delete cascade")
    op.execute("alter table qa_findings add column details jsonb not null default '{}'")
    op.execute("alter table qa_findings add constraint qa_findings_owner check "
               "(dataset_id is not null or run_id is not null)")
    op.execute("create index qa_findings_run on qa_findings (run_id, rule)")


def downgrade():
    op.execute("drop index qa_findings_run")
    op.execute("alter table qa_findings drop constraint qa_findings_owner")
    for col in ("details", "related_id", "run_id"):
        op.execute(f"alter table qa_findings drop column {col}")
    op.execute("delete from qa_findings where dataset_id is null")
    op.execute("alter table qa_findings alter column dataset_id set not null")
    op.execute("drop table analysis_runs")

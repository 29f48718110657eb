"""Access control: roles, layer grants, API keys (hashed), and the audit log of restricted reads.

A layer is a feature collection (`pipes_water`, `buildings`, ...) or a tile layer (`pipes`, ...).
Layers listed in access_layers with restricted = true need a grant; every other layer is public.
A grant on layer '*' covers every layer.

Revision ID: 0002
Revises: 0001
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ROLES = [
    ("public", "anonymous callers: public layers only"),
    ("utilities", "all pipe networks, their nodes and the pipe tiles"),
    ("water", "the water supply network only"),
    ("admin", "every layer"),
]


def upgrade():
    op.execute("create table roles (name text primary key, description text not null default '')")
    for name, description in ROLES:
        op.execute(f"insert into roles values ('{name}', '{description}')")
    op.execute("create table access_layers (name text primary key, kind text not null, "
               "restricted boolean not null default true)")
    # Each pipe utility's collection is as restricted as its CJJ 61 category says; nodes and
    # the pipe tile layer (all utilities in one tileset) are restricted.
    op.execute("insert into access_layers select 'pipes_' || utility, 'collection', restricted from pipe_categories")
    op.execute("insert into access_layers values ('pipe_nodes', 'collection', true), ('pipes', 'tiles', true)")
    op.execute("create table role_grants (role text not null references roles on delete cascade, "
               "layer text not null, primary key (role, layer))")
    op.execute("insert into role_grants values ('admin', '*'), ('utilities', 'pipes'), "
               "('utilities', 'pipe_nodes'), ('water', 'pipes_water'), ('water', 'pipe_nodes')")
    op.execute("insert into role_grants select 'utilities', 'pipes_' || utility from pipe_categories")
    op.execute("""
        create table api_keys (
            id serial primary key,
            name text,
            role text not null references roles,
            key_hash text not null unique,
            prefix text not null,
            created_at timestamptz not null default now(),
            revoked_at timestamptz,
            last_used_at timestamptz
        )""")
    op.execute("""
        create table audit_log (
            id bigserial primary key,
            at timestamptz not null default now(),
            key_id integer references api_keys on delete set null,
            role text not null,
            layer text not null,
            object_id bigint,
            path text not null,
            client text,
            status smallint not null
        )""")
    op.execute("create index audit_log_at on audit_log (at)")


def downgrade():
    for t in ("audit_log", "api_keys", "role_grants", "access_layers", "roles"):
        op.execute(f"drop table if exists {t} cascade")

"""Core schema: datasets, city objects with meshes, pipe network, QA findings, change log.

Revision ID: 0001
Revises:
"""
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# CJJ 61-2017 utility categories and colours; `restricted` layers need an API role.
PIPE_CATEGORIES = [
    # utility, CJJ 61 code, name_zh, name_en, r, g, b, restricted
    ("water", "JS", "给水", "water supply", 0, 255, 255, True),
    ("rain", "YS", "雨水", "storm water", 76, 57, 38, True),
    ("sewage", "WS", "污水", "sewage", 76, 57, 38, True),
    ("combined", "PS", "排水", "combined drainage", 76, 57, 38, True),
    ("gas", "RQ", "燃气", "gas", 255, 0, 255, True),
    ("heat", "RL", "热力", "heat", 255, 128, 0, True),
    ("power", "DL", "电力", "power", 255, 0, 0, True),
    ("telecom", "TX", "通信", "telecom", 0, 255, 0, True),
    ("unknown", "BM", "不明", "unknown", 102, 0, 204, True),
]


def upgrade():
    srid = int(op.get_context().config.attributes["srid"])
    op.execute("create extension if not exists postgis")
    op.execute("create table cim_meta (key text primary key, value text not null)")
    op.execute(f"insert into cim_meta values ('srid', '{srid}'), ('created_at', now()::text)")
    op.execute("""
        create table datasets (
            id serial primary key,
            name text not null unique,
            kind text not null,
            source_path text,
            sha256 text,
            source_crs text,
            counts jsonb not null default '{}',
            report jsonb not null default '{}',
            imported_at timestamptz not null default now(),
            status text not null default 'complete'
        )""")
    op.execute("create index datasets_sha256 on datasets (sha256)")
    op.execute(f"""
        create table city_objects (
            id bigserial primary key,
            dataset_id integer not null references datasets on delete cascade,
            key text not null,
            uid text,
            class text not null,
            ifc_class text,
            parent_id bigint references city_objects deferrable initially deferred,
            name text,
            attributes jsonb not null default '{{}}',
            lod smallint,
            footprint geometry(Geometry, {srid}),
            zmin double precision,
            zmax double precision,
            mesh_vertices bytea,
            mesh_faces bytea,
            mesh_face_materials bytea,
            materials jsonb,
            valid_from date,
            valid_to date,
            unique (dataset_id, key)
        )""")
    op.execute("create index city_objects_footprint on city_objects using gist (footprint)")
    op.execute("create index city_objects_class on city_objects (class, id)")
    op.execute("create index city_objects_parent on city_objects (parent_id)")
    op.execute("create index city_objects_uid on city_objects (uid)")
    # Meshes are float and index arrays that barely compress: store them out of line uncompressed
    # rather than spend server CPU on pglz at every bulk load.
    for col in ("mesh_vertices", "mesh_faces", "mesh_face_materials"):
        op.execute(f"alter table city_objects alter column {col} set storage external")
    op.execute("create table pipe_categories (utility text primary key, cjj_code text not null, "
               "name_zh text not null, name_en text not null, color smallint[3] not null, "
               "restricted boolean not null default true)")
    for u, code, zh, en, r, g, b, restricted in PIPE_CATEGORIES:
        op.execute(f"insert into pipe_categories values ('{u}', '{code}', '{zh}', '{en}', "
                   f"'{{{r},{g},{b}}}', {str(restricted).lower()})")
    op.execute(f"""
        create table pipe_nodes (
            object_id bigint primary key references city_objects on delete cascade,
            utility text not null references pipe_categories,
            node_type text not null,
            depth double precision,
            ground_z double precision,
            invert_z double precision,
            geom geometry(PointZ, {srid}) not null
        )""")
    op.execute("create index pipe_nodes_geom on pipe_nodes using gist (geom)")
    op.execute(f"""
        create table pipe_segments (
            object_id bigint primary key references city_objects on delete cascade,
            utility text not null references pipe_categories,
            cjj_code text,
            shape text not null default 'circular',
            diameter_mm double precision,
            width_mm double precision,
            height_mm double precision,
            material text,
            install_year integer,
            owner text,
            pressure_class text,
            start_invert double precision,
            end_invert double precision,
            start_depth double precision,
            end_depth double precision,
            from_node bigint references pipe_nodes deferrable initially deferred,
            to_node bigint references pipe_nodes deferrable initially deferred,
            length_m double precision,
            centerline geometry(LineStringZ, {srid}) not null
        )""")
    op.execute("create index pipe_segments_centerline on pipe_segments using gist (centerline)")
    op.execute("create index pipe_segments_from on pipe_segments (from_node)")
    op.execute("create index pipe_segments_to on pipe_segments (to_node)")
    op.execute("create index pipe_segments_utility on pipe_segments (utility)")
    op.execute(f"""
        create table qa_findings (
            id bigserial primary key,
            dataset_id integer not null references datasets on delete cascade,
            object_id bigint references city_objects on delete cascade,
            rule text not null,
            severity text not null,
            message text not null,
            geom geometry(Point, {srid})
        )""")
    op.execute("create index qa_findings_dataset on qa_findings (dataset_id, rule)")
    # Every write records where it changed the model, so tile caches rebuild only that region.
    op.execute(f"""
        create table change_log (
            id bigserial primary key,
            dataset_name text not null,
            changed_at timestamptz not null default now(),
            classes text[] not null,
            region geometry(Polygon, {srid})
        )""")


def downgrade():
    for t in ("change_log", "qa_findings", "pipe_segments", "pipe_nodes", "pipe_categories",
              "city_objects", "datasets", "cim_meta"):
        op.execute(f"drop table if exists {t} cascade")

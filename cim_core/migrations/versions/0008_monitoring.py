"""Lifeline monitoring (issue 17): sensors on city objects, readings partitioned by day, one-minute
and one-hour rollups, dead letters, the alarm state of each sensor, alarms and their events; the roles
`sensor-writer` (may post readings) and `operator` (acknowledges alarms, reads the pipe networks).

Revision ID: 0008
Revises: 0003
"""
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ROLES = [("sensor-writer", "may post sensor readings"),
         ("operator", "reads monitoring and acknowledges alarms")]


def upgrade():
    srid = int(op.get_context().config.attributes["srid"])
    op.execute(f"""
        create table sensors (
            object_id bigint primary key references city_objects on delete cascade,
            code text not null unique,
            asset_id bigint references city_objects on delete set null,
            kind text not null,
            unit text not null,
            period_s double precision not null,
            geom geometry(PointZ, {srid})
        )""")
    op.execute("create index sensors_asset on sensors (asset_id)")
    op.execute("create index sensors_geom on sensors using gist (geom)")
    op.execute("""
        create table readings (
            sensor_id bigint not null,
            time timestamptz not null,
            value double precision not null,
            quality smallint,
            primary key (sensor_id, time)
        ) partition by range (time)""")
    for name in ("readings_1m", "readings_1h"):
        op.execute(f"""
            create table {name} (
                sensor_id bigint not null,
                bucket timestamptz not null,
                n integer not null,
                vmin double precision not null,
                vmax double precision not null,
                vsum double precision not null,
                primary key (sensor_id, bucket)
            )""")
    op.execute("""
        create table dead_letters (
            id bigserial primary key,
            received_at timestamptz not null default now(),
            source text not null,
            topic text,
            reason text not null,
            detail text,
            payload bytea
        )""")
    op.execute("create index dead_letters_received on dead_letters (received_at)")
    _alarms()
    _roles()


def _alarms():
    op.execute("""
        create table sensor_state (
            sensor_id bigint primary key references sensors on delete cascade,
            last_time timestamptz,
            last_value double precision,
            state text not null default 'normal',
            streaks jsonb not null default '{}'
        )""")
    op.execute("""
        create table alarms (
            id bigserial primary key,
            sensor_id bigint not null references sensors on delete cascade,
            rule text not null,
            level text not null,
            status text not null,
            value double precision,
            message text not null,
            raised_at timestamptz not null,
            escalated_at timestamptz,
            acknowledged_at timestamptz,
            acknowledged_by text,
            note text,
            closed_at timestamptz,
            context jsonb not null default '{}'
        )""")
    op.execute("create index alarms_sensor on alarms (sensor_id, rule)")
    op.execute("""
        create table alarm_events (
            id bigserial primary key,
            alarm_id bigint not null references alarms on delete cascade,
            at timestamptz not null default now(),
            event text not null,
            details jsonb not null default '{}'
        )""")
    op.execute("create index alarm_events_alarm on alarm_events (alarm_id)")


def _roles():
    for name, description in ROLES:
        op.execute(f"insert into roles values ('{name}', '{description}') on conflict do nothing")
    # Actions are layers too, so that a role's grants say what it may do.
    op.execute("insert into access_layers values ('readings_write', 'action', true), "
               "('alarms_ack', 'action', true) on conflict do nothing")
    op.execute("insert into role_grants values ('sensor-writer', 'readings_write'), ('operator', 'alarms_ack') "
               "on conflict do nothing")
    # an operator sees the networks the sensors sit on
    op.execute("insert into role_grants values ('operator', 'pipes'), ('operator', 'pipe_nodes') on conflict do nothing")
    op.execute("insert into role_grants select 'operator', 'pipes_' || utility from pipe_categories "
               "on conflict do nothing")


def downgrade():
    op.execute("delete from role_grants where role in ('sensor-writer', 'operator')")
    op.execute("delete from access_layers where name in ('readings_write', 'alarms_ack')")
    op.execute("delete from roles where name in ('sensor-writer', 'operator')")
    for t in ("alarm_events", "alarms", "sensor_state", "dead_letters", "readings_1h", "readings_1m", "readings",
              "sensors"):
        op.execute(f"drop table if exists {t} cascade")

"""The schema of the city information model, declared once (SQLAlchemy Core).

The bulk writer takes its COPY column lists and types from these tables, the API its collections'
typed properties, and `alembic revision --autogenerate` its target. A new column is one edit here
plus one migration. The storage SRID is chosen per database when it is created (see migrate.py), so
geometry columns declare their geometry type here and get their SRID from the migration.
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB


class Geometry(sa.types.UserDefinedType):
    """A PostGIS geometry column of one type; SQL reads it as `geometry`, COPY sends it as EWKB."""
    cache_ok = True

    def __init__(self, geometry_type: str = "Geometry"):
        self.geometry_type = geometry_type

    def get_col_spec(self, **kw) -> str:
        return "geometry" if self.geometry_type == "Geometry" else f"geometry({self.geometry_type})"


metadata = sa.MetaData()


cim_meta = sa.Table(
    "cim_meta", metadata,
    sa.Column("key", sa.Text, primary_key=True), sa.Column("value", sa.Text, nullable=False),
)

datasets = sa.Table(
    "datasets", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("source_path", sa.Text),
    sa.Column("sha256", sa.Text),
    sa.Column("source_crs", sa.Text),
    sa.Column("counts", JSONB, nullable=False, server_default="{}"),
    sa.Column("report", JSONB, nullable=False, server_default="{}"),
    sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("status", sa.Text, nullable=False, server_default="complete"),
)

city_objects = sa.Table(
    "city_objects", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("uid", sa.Text),
    sa.Column("class", sa.Text, nullable=False),
    sa.Column("ifc_class", sa.Text),
    sa.Column("parent_id", sa.BigInteger, sa.ForeignKey("city_objects.id", ondelete="SET NULL", deferrable=True,
                                                         initially="DEFERRED")),
    sa.Column("name", sa.Text),
    sa.Column("attributes", JSONB, nullable=False, server_default="{}"),
    sa.Column("lod", sa.SmallInteger),
    sa.Column("footprint", Geometry()),
    sa.Column("zmin", sa.Float),
    sa.Column("zmax", sa.Float),
    sa.Column("mesh_vertices", sa.LargeBinary),
    sa.Column("mesh_faces", sa.LargeBinary),
    sa.Column("mesh_face_materials", sa.LargeBinary),
    sa.Column("materials", JSONB),
    sa.Column("valid_from", sa.Date),
    sa.Column("valid_to", sa.Date),
    sa.UniqueConstraint("dataset_id", "key"),
)

pipe_categories = sa.Table(
    "pipe_categories", metadata,
    sa.Column("utility", sa.Text, primary_key=True),
    sa.Column("cjj_code", sa.Text, nullable=False),
    sa.Column("name_zh", sa.Text, nullable=False),
    sa.Column("name_en", sa.Text, nullable=False),
    sa.Column("color", ARRAY(sa.SmallInteger), nullable=False),
    sa.Column("restricted", sa.Boolean, nullable=False, server_default=sa.true()),
)

pipe_nodes = sa.Table(
    "pipe_nodes", metadata,
    sa.Column("object_id", sa.BigInteger, sa.ForeignKey("city_objects.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("utility", sa.Text, sa.ForeignKey("pipe_categories.utility"), nullable=False),
    sa.Column("node_type", sa.Text, nullable=False),
    sa.Column("depth", sa.Float),
    sa.Column("ground_z", sa.Float),
    sa.Column("invert_z", sa.Float),
    sa.Column("geom", Geometry("PointZ"), nullable=False),
)

pipe_segments = sa.Table(
    "pipe_segments", metadata,
    sa.Column("object_id", sa.BigInteger, sa.ForeignKey("city_objects.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("utility", sa.Text, sa.ForeignKey("pipe_categories.utility"), nullable=False),
    sa.Column("cjj_code", sa.Text),
    sa.Column("shape", sa.Text, nullable=False, server_default="circular"),
    sa.Column("diameter_mm", sa.Float),
    sa.Column("width_mm", sa.Float),
    sa.Column("height_mm", sa.Float),
    sa.Column("material", sa.Text),
    sa.Column("install_year", sa.Integer),
    sa.Column("owner", sa.Text),
    sa.Column("pressure_class", sa.Text),
    sa.Column("start_invert", sa.Float),
    sa.Column("end_invert", sa.Float),
    sa.Column("start_depth", sa.Float),
    sa.Column("end_depth", sa.Float),
    sa.Column("from_node", sa.BigInteger, sa.ForeignKey("pipe_nodes.object_id", deferrable=True, initially="DEFERRED")),
    sa.Column("to_node", sa.BigInteger, sa.ForeignKey("pipe_nodes.object_id", deferrable=True, initially="DEFERRED")),
    sa.Column("length_m", sa.Float),
    sa.Column("centerline", Geometry("LineStringZ"), nullable=False),
)

# An analysis run and its provenance: inputs, rules and their source, the datasets it read, when.
analysis_runs = sa.Table(
    "analysis_runs", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("analysis", sa.Text, nullable=False),
    sa.Column("inputs", JSONB, nullable=False, server_default="{}"),
    sa.Column("rules", JSONB, nullable=False, server_default="{}"),
    sa.Column("datasets", JSONB, nullable=False, server_default="[]"),
    sa.Column("summary", JSONB, nullable=False, server_default="{}"),
    sa.Column("requested_by", sa.Text),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
)

# A finding of an import (dataset_id) or of an analysis run (run_id): its object, the other object of a
# pair, and in details the measured and required values, the rule's source and confidence.
qa_findings = sa.Table(
    "qa_findings", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE")),
    sa.Column("object_id", sa.BigInteger, sa.ForeignKey("city_objects.id", ondelete="CASCADE")),
    sa.Column("rule", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("geom", Geometry("Point")),
    sa.Column("run_id", sa.BigInteger, sa.ForeignKey("analysis_runs.id", ondelete="CASCADE")),
    sa.Column("related_id", sa.BigInteger, sa.ForeignKey("city_objects.id", ondelete="CASCADE")),
    sa.Column("details", JSONB, nullable=False, server_default="{}"),
    sa.CheckConstraint("dataset_id is not null or run_id is not null", name="qa_findings_owner"),
)

# Every write records where it changed the model, so tile caches rebuild only that region.
change_log = sa.Table(
    "change_log", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("dataset_name", sa.Text, nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("classes", ARRAY(sa.Text), nullable=False),
    sa.Column("region", Geometry("Polygon")),
)

# Access control: roles, layer grants, API keys (hashed), and the audit log of restricted reads.
roles = sa.Table(
    "roles", metadata,
    sa.Column("name", sa.Text, primary_key=True), sa.Column("description", sa.Text, nullable=False, server_default=""),
)
access_layers = sa.Table(
    "access_layers", metadata,
    sa.Column("name", sa.Text, primary_key=True), sa.Column("kind", sa.Text, nullable=False),
    sa.Column("restricted", sa.Boolean, nullable=False, server_default=sa.true()),
)
role_grants = sa.Table(
    "role_grants", metadata,
    sa.Column("role", sa.Text, sa.ForeignKey("roles.name", ondelete="CASCADE"), primary_key=True),
    sa.Column("layer", sa.Text, primary_key=True),
)
api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.Text),
    sa.Column("role", sa.Text, sa.ForeignKey("roles.name"), nullable=False),
    sa.Column("key_hash", sa.Text, nullable=False, unique=True),
    sa.Column("prefix", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
    sa.Column("last_used_at", sa.DateTime(timezone=True)),
)
audit_log = sa.Table(
    "audit_log", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("key_id", sa.Integer, sa.ForeignKey("api_keys.id", ondelete="SET NULL")),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("layer", sa.Text, nullable=False),
    sa.Column("object_id", sa.BigInteger),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("client", sa.Text),
    sa.Column("status", sa.SmallInteger, nullable=False),
)

# Issue 15 (drainage operations): per node and conduit results of a storm run (SI units).
drainage_storm_results = sa.Table(
    "drainage_storm_results", metadata,
    sa.Column("run_id", sa.BigInteger, sa.ForeignKey("analysis_runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("object_id", sa.BigInteger, sa.ForeignKey("city_objects.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("peak_depth_m", sa.Float),
    sa.Column("surcharge_h", sa.Float),
    sa.Column("flooding_m3", sa.Float),
    sa.Column("flooding_h", sa.Float),
    sa.Column("peak_flow_m3s", sa.Float),
    sa.Column("capacity_ratio", sa.Float),
)

# Issue 15: CCTV inspection records (CJJ 181-2012 defect codes), one row per defect observed on a segment.
pipe_inspections = sa.Table(
    "pipe_inspections", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
    sa.Column("segment_id", sa.BigInteger, sa.ForeignKey("city_objects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("inspected_on", sa.Date, nullable=False),
    sa.Column("code", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("grade", sa.SmallInteger, nullable=False),
    sa.Column("position_m", sa.Float, nullable=False),
    sa.Column("remarks", sa.Text),
    sa.Column("repaired_on", sa.Date),
    sa.Column("line", sa.Integer),
)

# Issue 14 (water supply operations): what a hydraulic simulation needs beyond the elements, kept with the
# dataset that brought it (EPANET options and times, patterns, curves, controls, sources; WNTR's dict, SI).
hydraulic_models = sa.Table(
    "hydraulic_models", metadata,
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("units", sa.Text, nullable=False),
    sa.Column("options", JSONB, nullable=False, server_default="{}"),
    sa.Column("patterns", JSONB, nullable=False, server_default="[]"),
    sa.Column("curves", JSONB, nullable=False, server_default="[]"),
    sa.Column("controls", JSONB, nullable=False, server_default="[]"),
    sa.Column("sources", JSONB, nullable=False, server_default="[]"),
)
# Results of a hydraulic simulation run: one time series per object and quantity (pressure, head, demand at
# nodes; flow, velocity in links; SI units), at the run's reporting times (analysis_runs.summary["times_s"]).
hydraulic_results = sa.Table(
    "hydraulic_results", metadata,
    sa.Column("run_id", sa.BigInteger, sa.ForeignKey("analysis_runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("object_id", sa.BigInteger, sa.ForeignKey("city_objects.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("quantity", sa.Text, primary_key=True),
    sa.Column("series", ARRAY(sa.Float), nullable=False),
)

# Indexes, with the names the migrations gave them.
for _name, _cols, _using in (
        ("datasets_sha256", [datasets.c.sha256], None),
        ("city_objects_footprint", [city_objects.c.footprint], "gist"),
        ("city_objects_class", [city_objects.c["class"], city_objects.c.id], None),
        ("city_objects_parent", [city_objects.c.parent_id], None),
        ("city_objects_uid", [city_objects.c.uid], None),
        ("pipe_nodes_geom", [pipe_nodes.c.geom], "gist"),
        ("pipe_segments_centerline", [pipe_segments.c.centerline], "gist"),
        ("pipe_segments_from", [pipe_segments.c.from_node], None),
        ("pipe_segments_to", [pipe_segments.c.to_node], None),
        ("pipe_segments_utility", [pipe_segments.c.utility], None),
        ("qa_findings_dataset", [qa_findings.c.dataset_id, qa_findings.c.rule], None),
        ("qa_findings_run", [qa_findings.c.run_id, qa_findings.c.rule], None),
        ("analysis_runs_analysis", [analysis_runs.c.analysis, analysis_runs.c.id], None),
        ("audit_log_at", [audit_log.c.at], None),
        ("pipe_inspections_segment", [pipe_inspections.c.segment_id], None),
        ("pipe_inspections_dataset", [pipe_inspections.c.dataset_id], None),
        # 0009: one index behind every foreign key to city_objects, so that deleting a dataset is linear
        ("qa_findings_object", [qa_findings.c.object_id], None),
        ("qa_findings_related", [qa_findings.c.related_id], None),
        ("hydraulic_results_object", [hydraulic_results.c.object_id], None),
        ("drainage_storm_results_object", [drainage_storm_results.c.object_id], None)):
    sa.Index(_name, *_cols, postgresql_using=_using)

# Issue 16, city health check: each indicator's value per unit and year, with the run (provenance) behind it.
healthcheck_results = sa.Table(
    "healthcheck_results", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("run_id", sa.BigInteger, sa.ForeignKey("analysis_runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("year", sa.Integer, nullable=False),
    sa.Column("indicator", sa.Text, nullable=False),
    sa.Column("level", sa.Text, nullable=False),
    sa.Column("unit_key", sa.Text, nullable=False),
    sa.Column("unit_name", sa.Text),
    sa.Column("unit_object_id", sa.BigInteger),
    sa.Column("value", sa.Float),
    sa.Column("straight_value", sa.Float),
    sa.Column("target", sa.Float),
    sa.Column("passes", sa.Boolean),
    sa.Column("details", JSONB, nullable=False, server_default="{}"),
    sa.Column("geom", Geometry()),
)
sa.Index("healthcheck_results_year", healthcheck_results.c.year, healthcheck_results.c.indicator)
sa.Index("healthcheck_results_run", healthcheck_results.c.run_id)


# Binary COPY type names of the column types above; geometries travel as EWKB in a bytea slot.
_COPY_TYPES = ((sa.BigInteger, "int8"), (sa.SmallInteger, "int2"), (sa.Integer, "int4"), (sa.Float, "float8"),
               (sa.Text, "text"), (JSONB, "jsonb"), (sa.Date, "date"), (sa.LargeBinary, "bytea"),
               (Geometry, "bytea"), (sa.Boolean, "bool"), (sa.DateTime, "timestamptz"))


def copy_type(col: sa.Column) -> str:
    """The name psycopg's binary COPY needs for a column of this schema."""
    for t, name in _COPY_TYPES:
        if isinstance(col.type, t):
            return name
    raise TypeError(f"no COPY type for column {col.table.name}.{col.name} ({col.type!r})")


def copy_columns(table: sa.Table, skip: tuple[str, ...] = ()) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(column names, COPY types) of a table in declaration order, without the skipped and the generated
    columns."""
    cols = [c for c in table.columns if c.name not in skip and c.computed is None]
    return tuple(c.name for c in cols), tuple(copy_type(c) for c in cols)

# Issue 13 (underground analyses): the clearance and cover rules a city loaded (`cim rules load FILE`),
# one rule a row with its confidence and source; when empty, the analyses use their packaged table.
clearance_rules = sa.Table(
    "clearance_rules", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("ruleset", sa.Text, nullable=False),
    sa.Column("check", sa.Text, nullable=False),
    sa.Column("ref", sa.Text, nullable=False),
    sa.Column("utility_a", sa.Text, nullable=False),
    sa.Column("class_a", sa.Text, nullable=False, server_default=""),
    sa.Column("utility_b", sa.Text, nullable=False),
    sa.Column("class_b", sa.Text, nullable=False, server_default=""),
    sa.Column("min_m", sa.Float, nullable=False),
    sa.Column("confidence", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("min_m >= 0", name="clearance_rules_min_m"),
)

# ---------------------------------------------------------------- issue 17: lifeline monitoring
# A sensor is a city object of class `sensor`; `code` is its id in MQTT topics and reading batches.
sensors = sa.Table(
    "sensors", metadata,
    sa.Column("object_id", sa.BigInteger, sa.ForeignKey("city_objects.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("code", sa.Text, nullable=False, unique=True),
    sa.Column("asset_id", sa.BigInteger, sa.ForeignKey("city_objects.id", ondelete="SET NULL")),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("unit", sa.Text, nullable=False),
    sa.Column("period_s", sa.Float, nullable=False),
    sa.Column("geom", Geometry("PointZ")),
)
# Readings, partitioned by day (partitions readings_pYYYYMMDD, made by the ingest, dropped by retention);
# the primary key makes a redelivered reading a no-op. No foreign key: the ingest checks the sensor.
readings = sa.Table(
    "readings", metadata,
    sa.Column("sensor_id", sa.BigInteger, primary_key=True),
    sa.Column("time", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("quality", sa.SmallInteger),
    postgresql_partition_by="RANGE (time)",
)


def _rollup(name: str) -> sa.Table:
    return sa.Table(
        name, metadata,
        sa.Column("sensor_id", sa.BigInteger, primary_key=True),
        sa.Column("bucket", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("vmin", sa.Float, nullable=False),
        sa.Column("vmax", sa.Float, nullable=False),
        sa.Column("vsum", sa.Float, nullable=False),
    )


readings_1m = _rollup("readings_1m")
readings_1h = _rollup("readings_1h")

# What the ingest could not store, with the reason; the ingest goes on.
dead_letters = sa.Table(
    "dead_letters", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("topic", sa.Text),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("payload", sa.LargeBinary),
)

# The alarm state of each sensor between batches (the ingest processes are stateless).
sensor_state = sa.Table(
    "sensor_state", metadata,
    sa.Column("sensor_id", sa.BigInteger, sa.ForeignKey("sensors.object_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("last_time", sa.DateTime(timezone=True)),
    sa.Column("last_value", sa.Float),
    sa.Column("state", sa.Text, nullable=False, server_default="normal"),
    sa.Column("streaks", JSONB, nullable=False, server_default="{}"),
)

# An alarm: raised, escalated, acknowledged (by whom, when, note), closed; `context` from the model.
alarms = sa.Table(
    "alarms", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("sensor_id", sa.BigInteger, sa.ForeignKey("sensors.object_id", ondelete="CASCADE"), nullable=False),
    sa.Column("rule", sa.Text, nullable=False),
    sa.Column("level", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("value", sa.Float),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("escalated_at", sa.DateTime(timezone=True)),
    sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
    sa.Column("acknowledged_by", sa.Text),
    sa.Column("note", sa.Text),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    sa.Column("context", JSONB, nullable=False, server_default="{}"),
)
alarm_events = sa.Table(
    "alarm_events", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("alarm_id", sa.BigInteger, sa.ForeignKey("alarms.id", ondelete="CASCADE"), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("details", JSONB, nullable=False, server_default="{}"),
)
for _name, _cols, _using in (
        ("sensors_asset", [sensors.c.asset_id], None),
        ("sensors_geom", [sensors.c.geom], "gist"),
        ("dead_letters_received", [dead_letters.c.received_at], None),
        ("alarms_sensor", [alarms.c.sensor_id, alarms.c.rule], None),
        ("alarm_events_alarm", [alarm_events.c.alarm_id], None)):
    sa.Index(_name, *_cols, postgresql_using=_using)

# ---------------------------------------------------------------- issue 18: renewal scenarios
# A scenario is a named plan over the as-is model (现状): its model is the as-is objects minus its removals
# plus the objects of its own datasets (datasets.scenario_id; null = as-is). A removal names a dataset of the
# as-is model by name (so it survives a re-import), and one object of it by key, or the whole dataset (key null).
scenarios = sa.Table(
    "scenarios", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("title", sa.Text),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)
datasets.append_column(sa.Column("scenario_id", sa.Integer, sa.ForeignKey("scenarios.id", ondelete="CASCADE")))
scenario_removals = sa.Table(
    "scenario_removals", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("scenario_id", sa.Integer, sa.ForeignKey("scenarios.id", ondelete="CASCADE"), nullable=False),
    sa.Column("dataset", sa.Text, nullable=False),
    sa.Column("key", sa.Text),
)
sa.Index("scenario_removals_scenario", scenario_removals.c.scenario_id)
# The footprint in EPSG:3857 (WebMercatorQuad's CRS), kept by PostgreSQL: vector tiles draw it untransformed.
# Never searched, so ANALYZE skips it (statistics target 0, migration 0013).
city_objects.append_column(sa.Column("footprint_3857", Geometry(),
                                     sa.Computed("st_transform(footprint, 3857)", persisted=True)))

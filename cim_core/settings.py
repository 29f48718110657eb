"""All settings, from environment variables with the CIM_ prefix."""
from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CIM_")

    # A PostgreSQL+PostGIS server to use; without it, an embedded cluster under home/pgdata.
    database_url: str | None = None
    # Streaming replicas of that database for the API's reads (comma-separated URLs); writes stay on it.
    database_read_urls: str | None = None
    home: Path = Path(".cim")
    # Storage CRS of a new database; an existing database keeps the one it was created with.
    srid: int | None = None
    default_srid: int = 4547
    # Buildings without height: floors x storey_height, else default_building_height.
    storey_height: float = 3.0
    default_building_height: float = 9.0
    # Pipes without depth or invert: cover from ground to the pipe crown.
    default_pipe_cover: float = 1.2
    # Pipes without a size are drawn and placed as DN100: the smallest main of a municipal network
    # (GB 50013 water mains, and the common gas and duct sizes). A larger guess would invent clashes in
    # clearance checks and push pipes laid at the default cover deeper than any record says.
    default_pipe_diameter_mm: float = 100.0
    # Tiles: metres added to stored heights so that the district stands on the ellipsoid.
    vertical_offset: float | None = None
    api_page_default: int = 100
    # Threads per API process running request handlers (and so database connections in use at once).
    api_threads: int = 8
    api_page_max: int = 10000
    # Vector tiles kept in memory per API process (MB, raw and gzip), until the model changes.
    vector_tile_cache_mb: int = 64
    # S3-compatible object storage for `cim tiles build --out s3://...` (MinIO, Ceph...); credentials, region
    # and AWS's own endpoint variables come from the standard AWS environment and files.
    s3_endpoint_url: str | None = None
    # Lifeline monitoring: an MQTT broker to use (mqtt://user:pass@host:port); without it, a Mosquitto
    # of our own under home/mosquitto (`cim broker start`).
    mqtt_url: str | None = None
    # CA certificates (PEM) that vouch for the broker of an mqtts:// URL; without it, the system's.
    mqtt_ca_file: Path | None = None
    # Readings whose time lies further than this from the ingest's clock go to the dead letters.
    reading_max_future_s: float = 300.0
    reading_max_past_s: float = 7 * 86400.0
    reading_max_payload: int = 256 * 1024
    # Daily reading partitions older than this many days are dropped (rollups stay).
    reading_retention_days: int = 90
    # Ingest batches: at most this many readings, or this many seconds after the first one was received.
    ingest_batch: int = 20000  # bench monitoring: 45,216 vs 28,996 readings/s at 5,000 (gateway, 2 processes)
    ingest_flush_s: float = 0.1  # alarm latency p99 213 ms vs 440 ms at 0.2 s (single, docs/monitoring.md)
    # Alarm events are POSTed here (JSON), with this many attempts.
    alarm_webhook_url: str | None = None
    alarm_webhook_tries: int = 5


@lru_cache
def get_settings() -> Settings:
    return Settings()

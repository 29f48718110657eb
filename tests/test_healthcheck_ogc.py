"""The health-check results as OGC API - Features collections, read by GDAL's OAPIF driver (ogrinfo) from a
real uvicorn: one collection per indicator and one with all, filterable by year and level, units as geometry."""
from __future__ import annotations

import json
import subprocess

import httpx
import pytest
from test_api_clients import server  # noqa: F401  (a real uvicorn process on the test database)
from test_healthcheck import fixture_objects

from analyses.healthcheck import yearly
from cim_core.model import DatasetInfo
from cim_core.store import write_dataset


def ogr(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["ogrinfo", "-ro", *args], capture_output=True, text=True, timeout=120, check=False)


def test_gdal_reads_the_results_per_indicator(db, server):  # noqa: F811
    write_dataset(DatasetInfo("hc-fixture", "test", "fixture", "x"), fixture_objects(), engine=db)
    yearly.run(2024, engine=db)
    yearly.run(2025, engine=db)
    yearly.run(2025, engine=db, only=["park_coverage"])  # the year's last run: it alone is served for 2025
    url = f"OAPIF:{server}/api/healthcheck/ogc"
    listing = ogr("-q", url)
    assert listing.returncode == 0, listing.stderr
    layers = {line.split(":", 1)[1].split("(")[0].strip() for line in listing.stdout.splitlines() if ":" in line}
    assert {"healthcheck_results", "healthcheck-park_coverage", "healthcheck-road_density"} <= layers
    # every unit of both years' last runs: district + W + E for park coverage (街区 level)
    park = subprocess.run(["ogr2ogr", "-f", "GeoJSON", "/vsistdout/", url, "healthcheck-park_coverage"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert park.returncode == 0, park.stderr
    feats = json.loads(park.stdout)["features"]
    assert len(feats) == 6
    west = [f for f in feats if f["properties"]["unit_key"] == "W" and f["properties"]["year"] == 2024]
    assert west[0]["properties"]["value"] == pytest.approx(40.0) and west[0]["geometry"]["type"] == "Polygon"
    # the OGC items filters: year, level, indicator, bbox
    base = f"{server}/api/healthcheck/ogc/collections"
    r = httpx.get(f"{base}/healthcheck_results/items", params={"indicator": "park_coverage", "year": 2025,
                                                               "level": "street"}).json()
    assert sorted(f["properties"]["unit_key"] for f in r["features"]) == ["E", "W"]
    assert {f["properties"]["run_id"] for f in r["features"]} == {yearly.latest_run(2025, db)}
    assert httpx.get(f"{base}/healthcheck-road_density/items", params={"year": 2025}).json()["features"] == []
    road = httpx.get(f"{base}/healthcheck-road_density/items", params={"year": 2024}).json()["features"]
    assert len(road) == 1 and road[0]["properties"]["value"] == pytest.approx(1.3 / 0.45)
    one = httpx.get(f"{base}/healthcheck-road_density/items/{road[0]['id']}")
    assert one.status_code == 200 and one.json()["id"] == road[0]["id"]
    paged = httpx.get(f"{base}/healthcheck_results/items", params={"limit": 2}).json()
    assert paged["numberReturned"] == 2 and any(link["rel"] == "next" for link in paged["links"])
    assert httpx.get(f"{base}/healthcheck-nothing").status_code == 404
    bad = httpx.get(f"{base}/healthcheck_results/items", params={"bbox": "1,2,3"})
    assert bad.status_code == 400 and "bbox" in bad.json()["detail"]

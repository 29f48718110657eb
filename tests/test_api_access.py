"""Access control leaks found on review (issue 12): every restricted layer guarded on every path, keys
never echoed, database details never sent, keys declared in OpenAPI, key use written once a minute."""
# ruff: noqa: F811  (city and client are fixtures imported from test_api)
from __future__ import annotations

import socket

import sqlalchemy as sa
from fastapi.testclient import TestClient
from test_api import city, client, ids_of, problem  # noqa: F401 (city and client are fixtures)

from cim_core.settings import get_settings
from services import auth
from services.app import create_app


def restrict(engine, layer: str) -> None:
    with engine.begin() as c:
        c.execute(sa.text("insert into access_layers values (:l, 'collection', true) "
                          "on conflict (name) do update set restricted = true"), {"l": layer})
    auth.restricted_layers.cache.clear()


def test_a_restricted_object_layer_is_guarded_on_objects_buildings_and_search(client, city):
    restrict(city, "bim_elements")
    ids = ids_of(city, ["H", "S0"])
    with city.connect() as c:
        wall = c.scalar(sa.text("select id from city_objects where class = 'element' order by id limit 1"))
        wall_name = c.scalar(sa.text("select name from city_objects where id = :i"), {"i": wall})
    assert "bim_elements" in problem(client.get(f"/api/objects/{wall}"), 401)
    tree = client.get(f"/api/buildings/{ids['H']}?expand=elements").json()
    assert tree["counts"]["storeys"] == 2 and tree["counts"]["elements"] == 0
    assert all("elements" not in s for s in tree["storeys"])
    found = client.get("/api/search", params={"q": wall_name}).json()["results"]
    assert wall not in [r["id"] for r in found]
    # a key of a role granted every layer sees them all again
    _, key = auth.create_key("admin", engine=city)
    h = {"X-API-Key": key}
    assert client.get(f"/api/objects/{wall}", headers=h).status_code == 200
    assert client.get(f"/api/buildings/{ids['H']}?expand=elements", headers=h).json()["counts"]["elements"] > 0
    assert wall in [r["id"] for r in client.get("/api/search", params={"q": wall_name}, headers=h).json()["results"]]
    # a restricted building layer guards the building endpoint itself
    restrict(city, "buildings")
    problem(client.get(f"/api/buildings/{ids['H']}"), 401)


def test_a_key_given_as_query_parameter_is_not_echoed(client, city):
    _, key = auth.create_key("utilities", engine=city)
    doc = client.get(f"/api/collections/buildings/items?limit=5&key={key}").json()
    hrefs = [link["href"] for link in doc["links"]]
    assert any(link["rel"] == "next" for link in doc["links"])
    assert not any(key in h or "key=" in h for h in hrefs), hrefs
    ids = ids_of(city, ["H"])
    assert key not in client.get(f"/api/buildings/{ids['H']}?key={key}").text


def test_database_errors_name_no_host_port_or_path(monkeypatch, tmp_path):
    with socket.socket() as s:  # a port with no server behind it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("CIM_DATABASE_URL", f"postgresql+psycopg://cim@127.0.0.1:{port}/cim")
    get_settings.cache_clear()
    try:
        with TestClient(create_app()) as c:
            for path in ("/api/collections", "/api/collections/buildings/items", "/api/search?q=x"):
                r = c.get(path)
                detail = problem(r, 503)
                assert str(port) not in r.text and "127.0.0.1" not in r.text and ".log" not in r.text, detail
                assert r.headers["retry-after"]
    finally:
        get_settings.cache_clear()


def test_openapi_declares_the_api_key(client):
    doc = client.get("/api/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["ApiKeyHeader"] == {**schemes["ApiKeyHeader"], "type": "apiKey", "in": "header",
                                       "name": "X-API-Key"}
    assert schemes["ApiKeyQuery"]["in"] == "query" and schemes["ApiKeyQuery"]["name"] == "key"
    assert {} in doc["security"]  # anonymous calls are allowed: public layers need no key


def test_key_use_is_written_at_most_once_a_minute(client, city):
    key_id, key = auth.create_key("utilities", engine=city)
    h = {"X-API-Key": key}
    assert client.get("/api/collections/pipes_water/items", headers=h).status_code == 200
    with city.begin() as c:
        assert c.scalar(sa.text("select last_used_at from api_keys where id = :i"), {"i": key_id}) is not None
        c.execute(sa.text("update api_keys set last_used_at = '2000-01-01' where id = :i"), {"i": key_id})
    for _ in range(5):
        assert client.get("/api/collections/pipes_water/items", headers=h).status_code == 200
    with city.connect() as c:
        assert str(c.scalar(sa.text("select last_used_at from api_keys where id = :i"), {"i": key_id}))[:4] == "2000"


def test_restricted_tiles_are_private_and_not_advertised_to_anonymous_callers(client, city):
    anon = client.get("/tiles/tileset.json")
    assert anon.status_code == 200 and "X-API-Key" in anon.headers["vary"]
    root = anon.json()
    names = [la["name"] for la in root["extras"]["layers"]]
    assert "pipes" not in names and "buildings" in names
    assert not any(c["content"]["uri"].startswith("pipes/") for c in root["root"]["children"])
    _, key = auth.create_key("utilities", engine=city)
    h = {"X-API-Key": key}
    keyed = client.get("/tiles/tileset.json", headers=h)
    assert "pipes" in [la["name"] for la in keyed.json()["extras"]["layers"]]
    assert keyed.headers["cache-control"].startswith("private")
    pipes_ts = client.get("/tiles/pipes/tileset.json", headers=h)
    assert pipes_ts.headers["cache-control"].startswith("private") and "X-API-Key" in pipes_ts.headers["vary"]
    uri = pipes_ts.json()["root"]["content"]["uri"] if "content" in pipes_ts.json()["root"] else \
        pipes_ts.json()["root"]["children"][0]["content"]["uri"]
    tile = client.get(f"/tiles/pipes/{uri}", headers=h)
    assert tile.status_code == 200 and tile.headers["cache-control"].startswith("private")
    assert client.get(f"/tiles/pipes/{uri}").status_code == 401
    b = client.get("/tiles/buildings/tileset.json").json()["root"]
    b_uri = b["content"]["uri"] if "content" in b else b["children"][0]["content"]["uri"]
    assert client.get(f"/tiles/buildings/{b_uri}").headers["cache-control"].startswith("public")

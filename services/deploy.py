"""`cim deploy nginx`: the production layout's nginx configuration (Debian's nginx 1.22), see docs/deploy.md.

nginx serves the viewer, CesiumJS and the tile cache ($CIM_HOME/tiles) as static files; public tile layers
straight from disk, restricted ones after an `auth_request` to the API's key check (GET /api/auth/tiles/
{layer}, its answers cached per layer and key for a few seconds); everything dynamic (/api, the per-caller
root tileset, any other path) is proxied to the `cim serve` workers. Which tile layers are restricted is
read from the database when the configuration is written: write it again after changing access_layers.
"""
from __future__ import annotations

import datetime as dt
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from cim_core.db import get_engine
from cim_core.errors import InputError
from services.app import CESIUM_BUILD, ECHARTS_BUILD, VIEWER, VIEWER_FILES, VIEWER_MODULES
from services.auth import restricted_layers
from services.tiles.service import CONTENT_CACHE, JSON_CACHE, cache_dir
from services.tiles.source import LAYERS

SITE = "cim.conf"          # http-context include: the upstream, the key-check cache and the server
MAIN = "nginx.conf"        # a whole nginx configuration around SITE, for running nginx on its own
README = "README.txt"
AUTH_CACHE_SECONDS = 10    # a revoked key, or a role's withdrawn grant, still reads tiles this long
TILE = r"[0-9]+/[0-9]+/[0-9]+\.glb"
PROBLEMS = {401: ("Unauthorized", ("this tile layer is restricted: send an API key (X-API-Key header or ?key=) "
                                   "of a role that may read it")),
            403: ("Forbidden", "the role of this API key may not read this tile layer")}


@dataclass
class NginxLayout:
    """What `write_nginx` wrote and found."""
    folder: Path
    site: Path
    main: Path
    readme: Path
    listen: str
    public: list[str]
    restricted: list[str]
    warnings: list[str] = field(default_factory=list)

    def command(self, signal: str | None = None) -> list[str]:
        """The command line that starts the standalone nginx (or sends it `signal`: stop, quit, reload)."""
        return ["nginx", "-c", str(self.main), "-p", str(self.folder), *(["-s", signal] if signal else [])]


def write_nginx(out: str | Path, *, port: int = 8080, host: str | None = None,
                api_upstreams: Sequence[str] = ("127.0.0.1:8000",), tiles: str | Path | None = None,
                viewer: str | Path | None = None, engine: sa.Engine | None = None) -> NginxLayout:
    """Write DIR/cim.conf (the site: for /etc/nginx/conf.d or a standalone run), DIR/nginx.conf (a whole
    configuration with its pid, logs and temporary files in DIR) and DIR/README.txt.

    `host`: the address to listen on (all when None); `api_upstreams`: the `cim serve` workers' addresses
    (host:port, one per `cim serve` process; each may run several workers); `tiles`: the tile cache the
    workers keep up to date (default: $CIM_HOME/tiles); `viewer`: the viewer folder (default: this
    checkout's). Served folders must be readable by nginx's workers (`nobody` or `www-data`): the
    returned layout's `warnings` name those that are not.
    """
    if not api_upstreams:
        raise InputError("no API upstream", hint="give the address of at least one `cim serve`, e.g. 127.0.0.1:8000")
    if not 0 < port < 65536:
        raise InputError(f"port {port} is out of range", hint="choose a port from 1 to 65535")
    folder = Path(out).absolute()
    tiles_dir = Path(tiles).absolute() if tiles else cache_dir()
    viewer_dir = Path(viewer).absolute() if viewer else VIEWER
    cesium = viewer_dir / CESIUM_BUILD.relative_to(VIEWER)
    closed = restricted_layers(engine or get_engine())
    restricted = [la for la in LAYERS if la in closed]
    public = [la for la in LAYERS if la not in closed]
    listen = str(port) if not host else f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    for sub in ("logs", "temp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    layout = NginxLayout(folder, folder / SITE, folder / MAIN, folder / README, listen, public, restricted)
    layout.site.write_text(site_config(folder, listen, api_upstreams, tiles_dir, viewer_dir, public,
                                       restricted))
    layout.main.write_text(main_config(folder))
    layout.readme.write_text(readme(layout, tiles_dir))
    layout.warnings = [w for p in (viewer_dir, cesium, tiles_dir, folder) for w in unreadable_by_others(p)]
    return layout


def unreadable_by_others(path: Path) -> list[str]:
    """Why a user other than the owner (nginx's workers) cannot read `path`, if it cannot: a folder on the
    way without o+x, the folder or a file in it without o+r. An absent folder is not reported."""
    if not path.exists():
        return []
    found = [f"{p}: others may not enter it (chmod o+x)" for p in reversed(path.parents)
             if not p.stat().st_mode & stat.S_IXOTH]
    if not path.stat().st_mode & stat.S_IROTH or not path.stat().st_mode & stat.S_IXOTH:
        found.append(f"{path}: others may not read it (chmod o+rx)")
    if any(not p.stat().st_mode & stat.S_IROTH for p in path.iterdir() if p.is_file()):
        found.append(f"{path}: files in it are not world-readable (chmod -R o+rX {path})")
    return found


# ---------------------------------------------------------------- the configuration text
def _proxy(extra: str = "") -> str:
    """Proxy settings of a location (nginx inherits proxy_set_header only when a location sets none)."""
    return f"""proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;{extra}"""


def _static(alias: str, media_type: str, cache_control: str, auth: str = "") -> str:
    """Body of a static tile location: the file, its type, the API's Cache-Control and Vary."""
    check = f"""set $cim_key $arg_key;
        auth_request {auth};
        error_page 401 @cim_401;
        error_page 403 @cim_403;
        """ if auth else ""
    return f"""{{
        {check}alias {alias};
        types {{ }}
        default_type {media_type};
        add_header Cache-Control "{cache_control}";
        add_header Vary X-API-Key;
    }}"""


def _tile_locations(tiles: Path, public: list[str], restricted: list[str]) -> str:
    blocks = []
    if public:
        names = "|".join(public)
        blocks += [
            "# public tile layers: static files of the tile cache, headers as the API sends them",
            f"location ~ ^/tiles/({names})/tileset\\.json$ "
            + _static(f"{tiles}/$1/tileset.json", "application/json", f"public, {JSON_CACHE}"),
            f"location ~ ^/tiles/({names})/({TILE})$ "
            + _static(f"{tiles}/$1/$2", "model/gltf-binary", f"public, {CONTENT_CACHE}")]
    for layer in restricted:
        check = f"/_cim_auth/{layer}"
        blocks += [
            f"# restricted tile layer {layer}: static files after the API's key check; private to the caller",
            f"location ~ ^/tiles/{layer}/tileset\\.json$ "
            + _static(f"{tiles}/{layer}/tileset.json", "application/json", f"private, {JSON_CACHE}", check),
            f"location ~ ^/tiles/{layer}/({TILE})$ "
            + _static(f"{tiles}/{layer}/$1", "model/gltf-binary", f"private, {CONTENT_CACHE}", check),
            f"""location = {check} {{
        internal;
        proxy_pass http://cim_api/api/auth/tiles/{layer};
        proxy_pass_request_body off;
        {_proxy('''
        proxy_set_header Content-Length "";
        proxy_set_header X-Original-URI $request_uri;''')}
        # the answer per key (header or ?key=) for {AUTH_CACHE_SECONDS} s: most tile requests never reach Python
        proxy_cache cim_auth;
        proxy_cache_key "{layer}|$http_x_api_key|$cim_key";
        proxy_cache_valid 204 401 403 {AUTH_CACHE_SECONDS}s;
        proxy_cache_lock on;
        proxy_ignore_headers Cache-Control Expires Set-Cookie Vary X-Accel-Expires;
    }}"""]
    if restricted:
        blocks += [f"""location @cim_{status} {{
        types {{ }}
        default_type application/problem+json;
        return {status} '{{"type":"about:blank","title":"{title}","status":{status},"detail":"{detail}"}}';
    }}""" for status, (title, detail) in PROBLEMS.items()]
    return "\n    ".join(blocks)


def _viewer_locations(viewer: Path) -> str:
    exact = "\n    ".join(f"location = /{name} {{ }}" for name in VIEWER_FILES if "." in name)
    modules = "|".join(VIEWER_MODULES)
    return f"""# the viewer and the dashboard: their pages, style sheets and modules only, and the CesiumJS and
    # ECharts builds
    location = / {{
        index index.html;
    }}
    location = /dashboard {{
        return 301 /dashboard/;
    }}
    location = /dashboard/ {{
        index index.html;
    }}
    {exact}
    location ~ ^/({modules})/([A-Za-z0-9_-]+/)*[A-Za-z0-9_.-]+\\.js$ {{ }}
    location /cesium/ {{
        alias {viewer / CESIUM_BUILD.relative_to(VIEWER)}/;
    }}
    location /echarts/ {{
        alias {viewer / ECHARTS_BUILD.relative_to(VIEWER)}/;
    }}"""


def site_config(folder: Path, listen: str, upstreams: Sequence[str], tiles: Path, viewer: Path,
                public: list[str], restricted: list[str]) -> str:
    """The http-context configuration: the API upstream, the key-check cache and the server."""
    servers = "\n    ".join(f"server {u};" for u in upstreams)
    return f"""# Written by `cim deploy nginx` on {dt.date.today().isoformat()} (docs/deploy.md).
# Public tile layers: {', '.join(public) or 'none'}; restricted: {', '.join(restricted) or 'none'} (from the
# database's access_layers when this was written: after changing them, write this file again and reload nginx).
# nginx's workers (nobody, or www-data for Debian's service) must be able to read {viewer} and {tiles}.

upstream cim_api {{
    {servers}
    keepalive 64;
}}

# the key check's answers (the cache keys hold API keys: this folder stays private to nginx's workers)
proxy_cache_path {folder}/auth-cache levels=1:2 keys_zone=cim_auth:4m max_size=64m inactive=10m use_temp_path=off;

server {{
    listen {listen};
    server_name _;
    root {viewer};
    sendfile on;
    tcp_nopush on;
    etag on;
    # the tile cache is rewritten under nginx (each file replaced whole): look at it again every 2 s
    open_file_cache max=20000 inactive=60s;
    open_file_cache_valid 2s;
    gzip on;
    gzip_types application/json application/javascript text/css;
    gzip_vary on;
    gzip_min_length 512;
    client_max_body_size 64m;

    {_viewer_locations(viewer)}

    # the root tileset lists only the layers the caller may read: from the API (which also keeps the
    # tile cache up to date, at most once a second per worker)
    location = /tiles/tileset.json {{
        proxy_pass http://cim_api;
        {_proxy()}
    }}
    {_tile_locations(tiles, public, restricted)}

    # the API and anything else dynamic
    location / {{
        proxy_pass http://cim_api;
        {_proxy()}
    }}
}}
"""


def main_config(folder: Path) -> str:
    """A whole nginx configuration around the site: pid, logs and temporary files under `folder`."""
    temp = "\n    ".join(f"{kind}_temp_path {folder}/temp/{kind};"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""# Standalone nginx for the CIM platform (written by `cim deploy nginx`).
# start: nginx -c {folder}/{MAIN} -p {folder}    stop: the same with -s quit
worker_processes auto;
pid {folder}/nginx.pid;
error_log {folder}/logs/error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {folder}/logs/access.log combined buffer=64k flush=5s;
    keepalive_requests 10000;
    {temp}
    include {folder}/{SITE};
}}
"""


def readme(layout: NginxLayout, tiles: Path) -> str:
    upstream = "127.0.0.1:8000"
    return f"""CIM platform behind nginx, as written by `cim deploy nginx` (see docs/deploy.md).

Start the API workers first (one `cim serve` per upstream address in {SITE}, e.g. {upstream}):
    cim serve --host 127.0.0.1 --port 8000 --workers 4
then nginx, either on its own:
    {' '.join(layout.command())}        (stop: {' '.join(layout.command('quit'))})
or as Debian's nginx service:
    ln -s {layout.site} /etc/nginx/conf.d/{SITE} && nginx -t && nginx -s reload
nginx listens on {layout.listen}. It serves the tile cache {tiles}, which the workers keep up to date:
nginx's workers run as nobody (www-data for the service), so that folder, the viewer and this one must be
world-readable (chmod -R o+rX FOLDER, and o+x on every folder above).
Public tile layers: {', '.join(layout.public) or 'none'}. Restricted (key checked by the API): \
{', '.join(layout.restricted) or 'none'}. After changing restricted layers, run `cim deploy nginx` again and reload nginx.
"""

"""`cim deploy`: configuration for running the platform in production."""

from __future__ import annotations

import typer

from .output import console, err_console

app = typer.Typer(help="Production layouts. Example: cim deploy nginx --out /etc/cim/nginx",
                  no_args_is_help=True)


@app.command("nginx")
def nginx(
    out: str = typer.Option(..., "--out", "-o", help="Folder to write the nginx configuration into."),
    port: int = typer.Option(8080, help="Port nginx listens on."),
    host: str = typer.Option(None, help="Address nginx listens on (default: all)."),
    api_upstream: list[str] = typer.Option(
        None, "--api-upstream", help="Address of a `cim serve`: host:port, repeatable (default 127.0.0.1:8000)",
    ),
    tiles: str = typer.Option(None, help="The tile cache the API workers keep (default: $CIM_HOME/tiles)."),
):
    """Write an nginx (Debian's 1.22) configuration that serves the viewer, CesiumJS and the tile cache as
    static files, checks restricted tile layers with auth_request against the API, and proxies /api to the
    workers.

    Example: cim serve --workers 2 & cim deploy nginx --out ./nginx && nginx -c $PWD/nginx/nginx.conf
    """
    from services.deploy import write_nginx

    layout = write_nginx(out, port=port, host=host, api_upstreams=tuple(api_upstream or ("127.0.0.1:8000",)),
                         tiles=tiles)
    console.print(f"site: {layout.site}\nstandalone configuration: {layout.main}\nnotes: {layout.readme}")
    console.print(f"public tile layers: {', '.join(layout.public) or 'none'}; "
                  f"restricted (checked with auth_request): {', '.join(layout.restricted) or 'none'}")
    console.print(f"start: {' '.join(layout.command())}")
    for w in layout.warnings:
        err_console.print(f"warning: {w}")

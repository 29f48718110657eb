"""`cim tiles`: static 3D Tiles 1.1 of the database."""

from __future__ import annotations

import typer
from rich.table import Table

from .output import console, progress_bar

app = typer.Typer(help="3D Tiles 1.1. Example: cim tiles build --out ./tiles", no_args_is_help=True)


@app.command("build")
def tiles_build(
    out: str = typer.Option(
        ..., "--out", "-o", help="Folder or s3://bucket/prefix URL of the static tileset (tileset.json + one per layer)."
    ),
    layer: list[str] = typer.Option(
        None, "--layer", "-l", help="Layer(s) to build: buildings, bim, pipes, ground (default: all)."
    ),
    incremental: bool = typer.Option(
        False,
        "--incremental",
        help="Rebuild only the tiles that imports since the last build into OUT touched.",
    ),
    include_restricted: bool = typer.Option(
        False,
        "--include-restricted",
        help="Also write restricted layers to object storage: only for a private bucket, since a bucket cannot "
        "check API keys.",
    ),
):
    """Write a static 3D Tiles 1.1 tileset of the database, for any static host or CDN.

    Example: cim tiles build --out ./tiles && cim tiles build --layer pipes --out s3://city-tiles/district
    """
    from services.tiles import LAYERS, build

    layers = tuple(layer) if layer else LAYERS
    with progress_bar(None, "tiles") as advance:
        report = build(out, layers, incremental=incremental, progress=advance, include_restricted=include_restricted)
    t = Table("layer", "features", "tiles", "rebuilt", "bytes", "bytes/feature", "seconds")
    for r in report.layers:
        per = f"{r.content_bytes / r.features:.0f}" if r.features and not r.skipped else ""
        t.add_row(
            r.layer,
            str(r.features),
            str(r.tiles),
            "withheld" if r.withheld else "unchanged" if r.skipped else str(r.rebuilt),
            f"{r.bytes:,}",
            per,
            f"{r.seconds:.1f}",
        )
    console.print(t)
    console.print(f"{report.out}/tileset.json (vertical offset {report.vertical_offset:+.2f} m)")

"""`cim sample`: generate the sample district."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from .output import console, progress_bar

app = typer.Typer(
    help="The generated sample district. Example: cim sample generate --out ./district", no_args_is_help=True
)


@app.command("generate")
def sample_generate(
    out: Path = typer.Option(..., "--out", help="Folder to write into."),
    scale: float = typer.Option(
        1.0, "--scale", help="Area factor: 1 is about 3 km x 3 km and 3,000 buildings, 30 about 100,000."
    ),
    seed: int = typer.Option(7, "--seed", help="The same seed gives the same district."),
):
    """Generate the sample district (Zhumadian central district, EPSG:4547): a GeoPackage, IFC buildings and
    a manifest.

    Example: cim sample generate --out ./district --scale 1 --seed 7
    """
    from sample_models.district import generate

    with progress_bar(None, "generating") as advance:
        seen: dict[str, int] = {}

        def progress(stage: str, n: int):
            advance(max(0, n - seen.get(stage, 0)))
            seen[stage] = n

        manifest = generate(out, scale=scale, seed=seed, progress=progress)
    t = Table("file", "layer", "features", "import with")
    for f in manifest["files"]:
        for layer in f.get("layers", [f]):
            count = layer.get("count", sum(layer.get("counts", {}).values()))
            t.add_row(
                f["path"],
                layer.get("layer", ""),
                str(count),
                layer["command"] or f"(with the {layer.get('imported_with')} layer)",
            )
    console.print(t)
    console.print(f"manifest: {Path(out) / 'manifest.json'}")

"""`cim datasets`: list and remove imported datasets."""

from __future__ import annotations

import typer
from rich.table import Table

from cim_core import store

from .output import console, counts_text

app = typer.Typer(help="Imported datasets.\n\nExample: cim datasets; cim datasets rm roads")


@app.callback(invoke_without_command=True)
def datasets_list(ctx: typer.Context):
    """List datasets with their object counts."""
    if ctx.invoked_subcommand:
        return
    rows = store.list_datasets()
    if not rows:
        console.print("no datasets yet; import one with `cim import ...` or run `cim demo`")
        return
    t = Table("name", "kind", "objects", "counts", "source CRS", "imported", "source")
    for r in rows:
        counts = r["counts"]
        t.add_row(
            r["name"],
            r["kind"],
            str(sum(v for k, v in counts.items() if k != "qa_findings")),
            counts_text(counts),
            r["source_crs"] or "",
            r["imported_at"].strftime("%Y-%m-%d %H:%M"),
            r["source_path"] or "",
        )
    console.print(t)


@app.command("rm")
def datasets_rm(name: str):
    """Remove a dataset and all its objects.

    Example: cim datasets rm roads
    """
    store.remove_dataset(name)
    console.print(f"removed {name}")

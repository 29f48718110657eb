"""`cim qa`: the stored QA findings of a dataset."""

from __future__ import annotations

import typer
from rich.table import Table

from .output import console


def qa(
    dataset: str = typer.Argument(..., help="Dataset name, as `cim datasets` lists it."),
    examples: int = typer.Option(3, "--examples", help="Example messages shown per rule."),
):
    """Summarise the stored QA findings of a dataset (for pipe surveys: dangling ends, duplicate segments,
    segments too long or short, tees whose degree is not 3, depth mismatches at nodes).

    Example: cim qa district_pipes
    """
    from cim_core.findings import qa_summary

    summary = qa_summary(dataset, examples=examples)
    if not summary:
        console.print(f"{dataset}: no QA findings")
        return
    t = Table("rule", "severity", "count", "examples")
    for rule, s in summary.items():
        t.add_row(rule, s["severity"], str(s["count"]), "\n".join(s["examples"]))
    console.print(t)

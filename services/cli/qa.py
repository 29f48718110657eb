"""`cim qa`: the stored QA findings of a dataset, or the findings of an analysis run."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from .output import console


def qa(
    dataset: str = typer.Argument(None, help="Dataset name, as `cim datasets` lists it (or give --run)."),
    examples: int = typer.Option(3, "--examples", help="Example messages shown per rule."),
    run: int = typer.Option(None, "--run", help="List the findings of this analysis run instead."),
    rule: str = typer.Option(None, "--rule", help="With --run: only this rule (e.g. clash_3d, cover)."),
    severity: str = typer.Option(None, "--severity", help="With --run: error, warning or info."),
    utility: str = typer.Option(None, "--utility", help="With --run: only findings naming a pipe of this utility."),
    bbox: str = typer.Option(None, "--bbox", help="With --run: xmin,ymin,xmax,ymax (storage CRS)."),
    limit: int = typer.Option(100, "--limit", min=1, help="With --run: at most this many findings."),
    as_json: bool = typer.Option(False, "--json", help="With --run: print the findings as JSON."),
):
    """Summarise the stored QA findings of a dataset (for pipe surveys: dangling ends, duplicate segments,
    segments too long or short, tees whose degree is not 3, depth mismatches at nodes), or list the
    findings of an analysis run (`--run`), filtered by rule, severity, utility and box.

    Examples: cim qa district_pipes;  cim qa --run 12 --rule clash_3d --utility heat
    """
    from cim_core.errors import InputError

    if run is not None:
        return _run(run, rule, severity, utility, bbox, limit, as_json)
    if dataset is None:
        raise InputError("give a dataset name or --run RUN_ID", hint="`cim datasets` lists the datasets")
    from cim_core.findings import qa_summary

    summary = qa_summary(dataset, examples=examples)
    if not summary:
        console.print(f"{dataset}: no QA findings")
        return
    t = Table("rule", "severity", "count", "examples")
    for rule_name, s in summary.items():
        t.add_row(rule_name, s["severity"], str(s["count"]), "\n".join(s["examples"]))
    console.print(t)


def _run(run: int, rule, severity, utility, bbox, limit, as_json) -> None:
    from cim_core.errors import InputError
    from cim_core.findings import run_findings

    from .water import parse_bbox

    if severity is not None and severity not in ("error", "warning", "info"):
        raise InputError(f"--severity {severity!r}: expected error, warning or info")
    matched, found = run_findings(run, rule=rule, severity=severity, utility=utility, bbox=parse_bbox(bbox), limit=limit)
    if as_json:
        print(json.dumps({"run_id": run, "matched": matched, "findings": found}, ensure_ascii=False, indent=1,
                         default=str))
        return
    t = Table("rule", "severity", "measured / required (m)", "object", "related", "x, y", title=(
        f"run {run}: {matched} finding(s)" + (f", first {len(found)} shown" if len(found) < matched else "")))
    for f in found:
        d = f["details"] or {}
        mr = f"{d['measured_m']} / {d['required_m']}" if "measured_m" in d else ""
        xy = f"{f['x']:.1f}, {f['y']:.1f}" if f["x"] is not None else ""
        t.add_row(f["rule"], f["severity"], mr, f["object_key"] or "", f["related_key"] or "", xy)
    console.print(t)

"""`cim scenarios`: renewal plans over the as-is model (现状): list, define, compare, remove."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from cim_core import scenarios

from .output import console

app = typer.Typer(help="Renewal scenarios (plans) over the as-is model.\n\n"
                       "Example: cim import ifc renewed.ifc --scenario renewal; cim scenarios compare renewal",
                  no_args_is_help=True)


@app.command("list")
def scenarios_list(as_json: bool = typer.Option(False, "--json", help="Print JSON.")):
    """The as-is model and every plan: its datasets and what it removes.

    Example: cim scenarios list
    """
    rows = scenarios.list_scenarios()
    if as_json:
        console.print_json(json.dumps(rows, ensure_ascii=False))
        return
    t = Table("name", "title", "datasets", "removes")
    for r in rows:
        t.add_row(r["name"], r["title"] or "", ", ".join(r["datasets"]) if r["name"] != "as-is"
                  else f"{len(r['datasets'])} datasets",
                  ", ".join(f"{x['dataset']}:{x['key']}" if x["key"] else x["dataset"] for x in r["removes"]))
    console.print(t)


@app.command("create")
def scenarios_create(
    name: str = typer.Argument(..., help="Scenario name, e.g. renewal-2026."),
    title: str = typer.Option(None, "--title", help="Title shown in the viewer, e.g. 旧改方案."),
    description: str = typer.Option(None, "--description"),
    removes: list[str] = typer.Option(None, "--removes", help="DATASET (all of it) or DATASET:KEY (one "
                                      "object) of the as-is model that the plan demolishes or replaces; repeat."),
):
    """Create or update a plan; --removes replaces its list of removals. Its objects come with
    `cim import ... --scenario NAME`.

    Example: cim scenarios create renewal --title 旧改方案 --removes sample-ifc-residential-old
    """
    scenarios.define(name, title=title, description=description,
                     removes=[scenarios.parse_removal(r) for r in removes] if removes else None)
    console.print(f"scenario {name} defined")


@app.command("rm")
def scenarios_rm(name: str):
    """Remove a plan with its datasets.

    Example: cim scenarios rm renewal
    """
    scenarios.remove(name)
    console.print(f"removed scenario {name} and its datasets")


@app.command("compare")
def scenarios_compare(
    name: str = typer.Argument(..., help="The plan to compare with the as-is model."),
    healthcheck: bool = typer.Option(True, "--healthcheck/--no-healthcheck",
                                     help="Also recompute the district's health-check indicators for both."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole report as JSON."),
):
    """Buildings demolished, new and changed, floor area, households, green area and the district's
    health-check indicators, plan against as-is; recorded as an analysis run.

    Example: cim scenarios compare renewal
    """
    from analyses.scenarios import compare, record

    cmp = compare(name, healthcheck=healthcheck)
    record(cmp)
    doc = cmp.as_json()
    if as_json:
        console.print_json(json.dumps(doc, ensure_ascii=False, default=str))
        return
    b, t = doc["buildings"], doc["totals"]
    console.print(f"{name} ({cmp.title}) against as-is, run {cmp.run_id}: buildings demolished {b['demolished']}, "
                  f"new {b['new']}, changed {b['changed']}")
    tab = Table("", "as-is", "plan", "change")
    for k in ("buildings", "households", "green_area_m2"):
        tab.add_row(k, f"{t['as_is'][k]:,.1f}", f"{t['plan'][k]:,.1f}", f"{t['change'][k]:+,.1f}")
    fa = t["floor_area_m2"]
    tab.add_row("floor area of the sites (m2)", f"{fa['removed']:,.1f}", f"{fa['added']:,.1f}", f"{fa['change']:+,.1f}")
    console.print(tab)
    if doc["healthcheck"]:
        hc = Table("indicator", "unit", "as-is", "plan", "target")
        for r in doc["healthcheck"]:
            hc.add_row(f"{r['indicator']} {r['name_zh']}", r["unit"] or "", _num(r["as_is"]), _num(r["plan"]),
                       _num(r["target"]))
        console.print(hc)


def _num(v) -> str:
    return "" if v is None else f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"

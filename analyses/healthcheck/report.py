"""A printable report of a year's health check (HTML; the CLI prints it to PDF with headless Chromium):
the values of the district against their targets with the change from the year before, each indicator's
definition and source, the values by unit, and the problem list."""
from __future__ import annotations

from html import escape

import sqlalchemy as sa

from cim_core.errors import NotFoundError

from . import definitions, yearly

STYLE = """
body { font-family: "Noto Sans CJK SC", sans-serif; margin: 18mm; color: #1d2733; font-size: 10.5pt; }
h1 { font-size: 18pt; } h2 { font-size: 13pt; margin-top: 8mm; border-bottom: 1px solid #123a5c; }
table { border-collapse: collapse; width: 100%; } td, th { border: 1px solid #ccd; padding: 2px 5px; text-align: left; }
.fail { color: #b52b27; font-weight: bold; } .nodata { color: #777; } .small { font-size: 8.5pt; color: #555; }
@page { size: A4; margin: 12mm; }
"""


def _v(v) -> str:
    return "无数据" if v is None else f"{v:.2f}".rstrip("0").rstrip(".")


def _table(head: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    cls = classes or [""] * len(rows)
    body = "".join(f'<tr class="{c}">' + "".join(f"<td>{escape(str(x))}</td>" for x in r) + "</tr>"
                   for r, c in zip(rows, cls))
    return "<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>" + body + "</table>"


def _previous(year: int, engine: sa.Engine) -> dict:
    with engine.connect() as c:
        prev = c.scalar(sa.text("select max(year) from healthcheck_results where year < :y"), {"y": year})
    if prev is None:
        return {}
    return {(r["indicator"], r["level"], r["unit_key"]): r["value"] for r in yearly.results(prev, engine)}


def html(year: int, engine: sa.Engine) -> str:
    """The report of a year's last run as one self-contained HTML page."""
    iset = definitions.load()
    rows = yearly.results(year, engine)
    if not rows:
        raise NotFoundError(f"no health-check run for {year}")
    before = _previous(year, engine)
    meta = {i.id: i for i in iset.indicators}
    district = [r for r in rows if r["level"] == "district" and r["indicator"] in meta]
    summary = [[meta[r["indicator"]].name_zh, f"{_v(r['value'])} {meta[r['indicator']].unit}",
                "" if r["target"] is None else f"{meta[r['indicator']].direction} {_v(r['target'])}",
                _change(r, before), _v(r["straight_value"]) if r["straight_value"] is not None else ""]
               for r in district]
    status = ["nodata" if r["value"] is None else "fail" if r["passes"] is False else "" for r in district]
    units = [[meta[r["indicator"]].name_zh, r["unit_name"] or r["unit_key"], _v(r["value"])]
             for r in rows if r["level"] != "district" and r["indicator"] in meta]
    defs = [[i.name_zh, i.name_en, i.level, i.kind, _params(i), i.source] for i in iset.indicators]
    probs = [[p["message"]] for p in yearly.problems(year, engine) if p["severity"] != "info"]
    return (f'<!doctype html><html lang="zh"><head><meta charset="utf-8"><title>{year}年城市体检报告</title>'
            f"<style>{STYLE}</style></head><body><h1>{year}年城市体检报告</h1>"
            f'<p class="small">{escape(iset.name)} · run {rows[0]["run_id"]}</p>'
            "<h2>一、城区指标</h2>" + _table(["指标", "数值", "目标", "较上年", "直线距离"], summary, status)
            + "<h2>二、问题清单</h2>" + _table(["问题"], probs)
            + "<h2>三、各单元数值</h2>" + _table(["指标", "单元", "数值"], units)
            + "<h2>四、指标定义与来源</h2>" + _table(["指标", "Indicator", "层级", "计算", "参数", "来源"], defs)
            + "</body></html>")


def _change(r: dict, before: dict) -> str:
    old = before.get((r["indicator"], r["level"], r["unit_key"]))
    return "" if old is None or r["value"] is None else f"{r['value'] - old:+.2f}"


def _params(ind: definitions.Indicator) -> str:
    if ind.kind == "coverage":
        return "、".join(f"{s.facility} {s.radius:g} m" for s in ind.services)
    return ", ".join(f"{k}={v}" for k, v in ind.params.items())

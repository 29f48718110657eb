"""Clearance and cover rules as data: read and validate a rules file, store a city's table, match pairs.

A rules file has one rule a row (`table, utility_a, class_a, utility_b, class_b, min_m, confidence,
source`). `table` names the check: a horizontal clearance (GB 50289-2016 Table 4.1.9), a vertical clearance
at a crossing (Table 4.1.14) or the pipe-top cover (GB 50014-2021 5.3.7). Utilities may be joined with `|`;
`utility_b` may also be `building` (horizontal), `any` (vertical) or an area (cover: `carriageway`,
`footway or green`). A class narrows a side: `d<=200mm` / `d>200mm` (diameter), a gas pressure class
(`low pressure (低压)`, `medium pressure B (中压B)`, ...), or a description (`direct-buried or in duct`),
which narrows nothing. A pair no rule matches has no rule: the checks report it as such, never guess.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from cim_core.db import get_engine
from cim_core.errors import InputError

DATA = Path(__file__).parent / "data"
DEFAULT_FILE = DATA / "gb50289_clearances.csv"
COLUMNS = ("table", "utility_a", "class_a", "utility_b", "class_b", "min_m", "confidence", "source")
CHECKS = ("horizontal", "vertical", "cover")
AREAS = ("carriageway", "footway or green")
MAX_MIN_M = 100.0
_DIAMETER = re.compile(r"^d\s*(<=|>=|<|>|=)\s*(\d+(?:\.\d+)?)\s*mm$")
# Gas pressure classes (GB 50028): the rule's English or Chinese name -> the normalised class.
_PRESSURE = {"低压": "low", "中压b": "medium-b", "中压a": "medium-a", "次高压b": "sub-high-b",
             "次高压a": "sub-high-a", "高压b": "high-b", "高压a": "high-a"}


@dataclass(frozen=True)
class Rule:
    check: str
    ref: str
    utility_a: str
    class_a: str
    utility_b: str
    class_b: str
    min_m: float
    confidence: str
    source: str

    @property
    def name(self) -> str:
        """A short name for findings: the table reference and both sides."""
        a = f"{self.utility_a} {self.class_a}".strip()
        b = f"{self.utility_b} {self.class_b}".strip()
        return f"{self.ref}: {a} / {b}"


@dataclass(frozen=True)
class RuleSet:
    name: str
    rules: tuple[Rule, ...]

    def of(self, check: str) -> list[Rule]:
        return [r for r in self.rules if r.check == check]

    def provenance(self) -> dict:
        return {"ruleset": self.name, "rules": [asdict(r) for r in self.rules]}


def pressure_class(text: str | None) -> str:
    """A gas pressure class, normalised ('medium pressure B (中压B)', 'medium-B', '中压B' -> 'medium-b')."""
    t = re.sub(r"\(.*?\)", "", str(text or "")).strip().lower()
    if t in _PRESSURE:
        return _PRESSURE[t]
    t = re.sub(r"\bpressure\b", " ", t)
    return "-".join(re.split(r"[\s_\-]+", t.strip())) if t.strip() else ""


def _condition(text: str) -> tuple[str, str, float] | None:
    """('diameter', op, mm) or ('pressure', class, 0) or None (a description that narrows nothing)."""
    t = text.strip().lower().replace(" ", "")
    m = _DIAMETER.match(t)
    if m:
        return "diameter", m.group(1), float(m.group(2))
    if "pressure" in text.lower() or "压" in text:
        return "pressure", pressure_class(text), 0.0
    return None


def _check_of(table: str) -> str | None:
    return next((c for c in CHECKS if c in table.lower()), None)


def parse_rules(text: str, utilities: set[str], name: str) -> RuleSet:
    """Rules from CSV text; an InputError names the line and what is wrong."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(f"{name}: missing column(s) {', '.join(missing)}", hint=f"columns: {', '.join(COLUMNS)}")
    rules = [_rule(row, n, utilities, name) for n, row in enumerate(reader, start=2)]
    if not rules:
        raise InputError(f"{name}: no rules")
    return RuleSet(name, tuple(rules))


def _rule(row: dict, line: int, utilities: set[str], name: str) -> Rule:
    where = f"{name} line {line}"
    v = {k: (row.get(k) or "").strip() for k in COLUMNS}
    check = _check_of(v["table"])
    if check is None:
        raise InputError(f"{where}: table {v['table']!r} names no check", hint=f"one of {', '.join(CHECKS)}")
    others = {"horizontal": {"building"}, "vertical": {"any"}, "cover": set(AREAS)}[check]
    for side, allowed in (("utility_a", utilities), ("utility_b", (utilities | others) if check != "cover"
                                                      else others)):
        unknown = [u for u in v[side].split("|") if u not in allowed]
        if unknown:
            raise InputError(f"{where}: unknown {side} {unknown[0]!r}", hint=f"known: {', '.join(sorted(allowed))}")
    try:
        min_m = float(v["min_m"])
    except ValueError:
        raise InputError(f"{where}: min_m {v['min_m']!r} is not a number") from None
    if not 0 <= min_m <= MAX_MIN_M:
        raise InputError(f"{where}: min_m {min_m:g} must lie between 0 and {MAX_MIN_M:g} m")
    for k in ("confidence", "source"):
        if not v[k]:
            raise InputError(f"{where}: {k} is empty", hint="every rule names its source and confidence")
    return Rule(check, v["table"], v["utility_a"], v["class_a"], v["utility_b"], v["class_b"], min_m,
                v["confidence"], v["source"])


def known_utilities(engine: sa.Engine) -> set[str]:
    with engine.connect() as c:
        return set(c.scalars(sa.text("select utility from pipe_categories")).all())


def load_rules(path: str | Path, engine: sa.Engine | None = None) -> RuleSet:
    """Validate a rules file and make it the database's rules (replacing any loaded before), in one
    transaction; nothing is stored when the file is wrong."""
    engine = engine or get_engine()
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    rules = parse_rules(path.read_text(encoding="utf-8-sig"), known_utilities(engine), path.name)
    with engine.begin() as c:
        c.execute(sa.text("delete from clearance_rules"))
        c.execute(sa.text("""
            insert into clearance_rules (ruleset, "check", ref, utility_a, class_a, utility_b, class_b, min_m,
                                         confidence, source)
            values (:ruleset, :check, :ref, :utility_a, :class_a, :utility_b, :class_b, :min_m, :confidence,
                    :source)"""), [{"ruleset": rules.name, **asdict(r)} for r in rules.rules])
    return rules


def current_rules(engine: sa.Engine | None = None) -> RuleSet:
    """The rules a city loaded, else the packaged table (GB 50289-2016 / GB 50014-2021, as far as known)."""
    engine = engine or get_engine()
    with engine.connect() as c:
        rows = c.execute(sa.text('select ruleset, "check", ref, utility_a, class_a, utility_b, class_b, min_m, '
                                 "confidence, source from clearance_rules order by id")).mappings().all()
    if rows:
        return RuleSet(rows[0]["ruleset"], tuple(Rule(**{k: r[k] for k in r if k != "ruleset"}) for r in rows))
    return parse_rules(DEFAULT_FILE.read_text(encoding="utf-8"), known_utilities(engine), DEFAULT_FILE.name)


def _side(utilities: str, cls: str, utility: np.ndarray, diameter: np.ndarray, pressure: np.ndarray) -> np.ndarray:
    names = utilities.split("|")
    ok = np.ones(len(utility), bool) if "any" in names else np.isin(utility, names)
    cond = _condition(cls)
    if cond is None:
        return ok
    kind, op, value = cond
    if kind == "pressure":
        return ok & (pressure == op)
    with np.errstate(invalid="ignore"):
        cmp = {"<=": diameter <= value, ">=": diameter >= value, "<": diameter < value, ">": diameter > value,
               "=": diameter == value}[op]
    return ok & cmp


def match(rules: list[Rule], a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(required metres, rule index into `rules`) for pairs of sides a and b, each a dict of arrays
    `utility`, `diameter` (mm, NaN unknown) and `pressure` (normalised class); a rule applies either way
    round. Where several rules match, the largest distance holds; NaN and -1 where none does."""
    n = len(a["utility"])
    required = np.full(n, np.nan)
    index = np.full(n, -1)
    for i, r in enumerate(rules):
        hit = ((_side(r.utility_a, r.class_a, **a) & _side(r.utility_b, r.class_b, **b))
               | (_side(r.utility_a, r.class_a, **b) & _side(r.utility_b, r.class_b, **a)))
        better = hit & ~(required >= r.min_m)
        required[better] = r.min_m
        index[better] = i
    return required, index

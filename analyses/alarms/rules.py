"""Alarm rules as data (data/rules.toml, or the file of CIM_ALARM_RULES), and their evaluation over
readings: levels with thresholds, hysteresis and consecutive readings; rate of change; offline.

The evaluation is pure: a sensor's level state and its new readings in, the new state and the level
transitions out. Storing them and the alarms' lifecycle is lifecycle.py's.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cim_core.errors import InputError

RULES_FILE = Path(__file__).parent / "data" / "rules.toml"


@dataclass(frozen=True)
class Level:
    name: str
    threshold: float
    confirmed: bool


@dataclass(frozen=True)
class LevelRule:
    """Levels in rising severity; index 0 of a state is `normal`, i the i-th level."""
    direction: str  # above | below
    hysteresis: float
    consecutive: int
    levels: tuple[Level, ...]
    source: str
    confirmed: bool

    def beyond(self, value: float, threshold: float, slack: float = 0.0) -> bool:
        """Whether `value` is past `threshold` (moved back by `slack` toward normal)."""
        return value >= threshold - slack if self.direction == "above" else value <= threshold + slack

    def target(self, value: float, current: int) -> int:
        """The level a reading points to: up at once past a threshold, down only past its hysteresis."""
        up = max((i + 1 for i, lv in enumerate(self.levels) if self.beyond(value, lv.threshold)), default=0)
        if up >= current:
            return up
        return max((i + 1 for i, lv in enumerate(self.levels[:current])
                    if self.beyond(value, lv.threshold, self.hysteresis)), default=0)

    def name_of(self, index: int) -> str:
        return "normal" if index == 0 else self.levels[index - 1].name


@dataclass(frozen=True)
class RateRule:
    rule: str
    direction: str  # fall | rise
    delta: float
    window_s: float
    level: str
    source: str
    confirmed: bool

    def change(self, window_max: float, window_min: float, value: float) -> float:
        """How far the latest value has fallen (or risen) within the window."""
        return window_max - value if self.direction == "fall" else value - window_min


@dataclass(frozen=True)
class KindRules:
    kind: str
    levels: LevelRule | None
    rate: RateRule | None


@dataclass(frozen=True)
class Rules:
    kinds: dict[str, KindRules]
    offline_periods: float
    offline_source: str
    path: str

    def provenance(self) -> dict:
        return {"file": self.path, "offline": {"periods": self.offline_periods, "source": self.offline_source},
                "kinds": {k: {"levels": r.levels and {"source": r.levels.source, "confirmed": r.levels.confirmed},
                              "rate": r.rate and {"source": r.rate.source, "confirmed": r.rate.confirmed}}
                          for k, r in self.kinds.items()}}


def _levels(d: dict) -> LevelRule:
    lv = tuple(Level(x["name"], float(x["threshold"]), bool(x.get("confirmed", d.get("confirmed", False))))
               for x in d["levels"])
    if d["direction"] not in ("above", "below"):
        raise InputError(f"alarm rules: direction must be above or below, not {d['direction']!r}")
    return LevelRule(d["direction"], float(d.get("hysteresis", 0)), int(d.get("consecutive", 1)), lv,
                     d["source"], bool(d.get("confirmed", False)))


def _rate(d: dict) -> RateRule:
    return RateRule(d["rule"], d["direction"], float(d["delta"]), float(d["window_s"]), d.get("level", "alarm"),
                    d["source"], bool(d.get("confirmed", False)))


@lru_cache(maxsize=4)
def load_rules(path: str | None = None) -> Rules:
    """The rules of a TOML file (default: CIM_ALARM_RULES, else the shipped data/rules.toml)."""
    path = path or os.environ.get("CIM_ALARM_RULES") or str(RULES_FILE)
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        kinds = {k: KindRules(k, _levels(v["levels"]) if "levels" in v else None,
                              _rate(v["rate"]) if "rate" in v else None)
                 for k, v in doc.items() if k != "offline"}
        off = doc.get("offline", {})
        return Rules(kinds, float(off.get("periods", 3)), off.get("source", ""), path)
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(f"alarm rules {path}: {exc}") from None


@dataclass
class LevelState:
    """A sensor's level (index), and the streak of readings pointing away from it."""
    level: int = 0
    streak: int = 0  # readings in a row pointing up (> 0) or down (< 0)
    toward: int = 0  # the level the streak would settle on


def step(rule: LevelRule, st: LevelState, value: float) -> tuple[int, int] | None:
    """Apply one reading; returns (old level, new level) when the level changes."""
    t = rule.target(value, st.level)
    if t == st.level:
        st.streak, st.toward = 0, st.level
        return None
    up = t > st.level
    if (st.streak > 0) == up and st.streak != 0:
        st.streak += 1 if up else -1
        st.toward = min(st.toward, t) if up else max(st.toward, t)
    else:
        st.streak, st.toward = (1 if up else -1), t
    if abs(st.streak) < rule.consecutive:
        return None
    old, st.level, st.streak = st.level, st.toward, 0
    return old, st.level

"""Alarm rules over sensor readings (issue 17): rules as data (data/rules.toml), their evaluation
(rules.py), the alarms' lifecycle and live events (lifecycle.py), and the model's context (context.py)."""
from .lifecycle import CHANNEL, acknowledge, alarm, check_offline, close, evaluate
from .rules import load_rules

__all__ = ["CHANNEL", "acknowledge", "alarm", "check_offline", "close", "evaluate", "load_rules"]

"""Rules and alarms: triggers, conditions and actions over the UNS (docs/rules.md)."""

from __future__ import annotations

from uns.rules.actions import ActionError, ActionRunner
from uns.rules.alarms import Alarm, AlarmBook, AlarmError
from uns.rules.check import RulesRefused, check_rules, plant_targets
from uns.rules.engine import RuleEngine, RuleStats

__all__ = [
    "ActionError",
    "ActionRunner",
    "Alarm",
    "AlarmBook",
    "AlarmError",
    "RuleEngine",
    "RuleStats",
    "RulesRefused",
    "check_rules",
    "plant_targets",
]

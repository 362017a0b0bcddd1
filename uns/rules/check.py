"""Checks of a ``rules:`` list against the plant, before anything runs: every problem named at once.

Each problem is a ``ConfigError`` whose path names the rule and the field
(``rules.fault-alarm.trigger.topic``) and, for a topic under no equipment path of the plant file,
the closest known path. A rule set with any problem is refused whole (at start: the hub does not
start; on reload: the running set stays).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Sequence

from model.equipment import RESERVED_IDS, Plant
from model.rules import AlarmAction, MesEventAction, MesTrigger, Rule, TopicTrigger, WriteAction
from model.topic import MAX_EQUIPMENT_LEVELS
from uns.errors import ConfigError, UnsError
from uns.mqtt.filters import filter_error, topic_matches
from uns.rules.actions import Target

__all__ = ["RulesRefused", "check_rules", "plant_targets"]


class RulesRefused(ConfigError):
    """A rule set with problems; ``problems`` holds each one (the message lists them all)."""

    def __init__(self, problems: Sequence[ConfigError]) -> None:
        self.problems = list(problems)
        self.source, self.path, self.value = "settings", "rules", None
        self.reason = "; ".join(str(p) for p in problems)  # each names its own source and rule
        UnsError.__init__(self, self.reason)


def _problem(rule: str, field: str, reason: str, value: object = None) -> ConfigError:
    return ConfigError(source="settings", path=f"rules.{rule}.{field}", reason=reason, value=value)


def _path_known(path_filter: str, paths: Collection[str]) -> bool:
    """Whether an equipment path filter (or a literal path) can name a path of the plant."""
    if "+" in path_filter or "#" in path_filter:
        return any(topic_matches(path, path_filter) for path in paths)
    return path_filter in paths


def _unknown(rule: str, field: str, path: str, paths: Collection[str]) -> ConfigError:
    hint = difflib.get_close_matches(path, list(paths), n=1)
    suffix = f"; did you mean {hint[0]!r}?" if hint else ""
    return _problem(rule, field, f"no equipment of the plant file at {path!r}{suffix}", path)


def _topic_path(topic_filter: str) -> str | None:
    """The equipment part of a UNS topic filter: the levels before its class word; None when it has none."""
    levels = topic_filter.split("/")
    for index, level in enumerate(levels[1 : MAX_EQUIPMENT_LEVELS + 1], start=1):
        if level in RESERVED_IDS:  # the class words: no equipment id is one
            return "/".join(levels[:index])
    return None


def check_rules(rules: Sequence[Rule], plant: Plant | None) -> None:
    """Refuse duplicate names, bad filters, bad conditions and topics under no known equipment.

    Raises:
        RulesRefused: listing every problem.
    """
    from uns.rules.conditions import compile_condition  # the expression language is loaded only with rules

    problems: list[ConfigError] = []
    paths = plant.equipment_paths() if plant is not None else None
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            problems.append(_problem(rule.name, "name", "two rules have this name"))
        seen.add(rule.name)
        trigger = rule.trigger
        field, topic = "trigger.topic", getattr(trigger, "topic", None)
        if isinstance(trigger, TopicTrigger):
            field, topic = "trigger.filter", trigger.filter
        if isinstance(trigger, MesTrigger):
            field, topic = "trigger.path", None
            if (error := filter_error(trigger.path)) is not None:
                problems.append(_problem(rule.name, field, error))
            elif paths is not None and trigger.path != "#" and not _path_known(trigger.path, paths):
                problems.append(_unknown(rule.name, field, trigger.path, paths))
        if isinstance(topic, str):
            error = filter_error(topic)
            path = _topic_path(topic)
            if error is not None:
                problems.append(_problem(rule.name, field, error))
            elif paths is not None and path is not None and not _path_known(path, paths):
                problems.append(_unknown(rule.name, field, path, paths))
        if rule.condition is not None:
            try:
                compile_condition(rule)
            except ConfigError as exc:
                problems.append(exc)
        for index, action in enumerate(rule.actions):
            path = action.path if isinstance(action, AlarmAction | MesEventAction | WriteAction) else None
            if path is not None and "$" not in path and paths is not None and path not in paths:
                problems.append(_unknown(rule.name, f"actions[{index}].path", path, paths))
    if problems:
        raise RulesRefused(problems)


def plant_targets(plant: Plant) -> Callable[[str], Target | None]:
    """An equipment path's bound Sparkplug (group, node, device) from the plant's bindings."""
    by_path = {binding.path: (binding.group, binding.node, binding.device) for binding in plant.bindings}
    return by_path.get

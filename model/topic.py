"""The UNS topic value type: ``<equipment path>/<class word>/<name...>``, parsed once, round-tripping."""

from __future__ import annotations

import dataclasses
import re
from enum import StrEnum
from typing import Self

__all__ = ["MAX_EQUIPMENT_LEVELS", "SLUG_PATTERN", "ClassWord", "TopicError", "UnsTopic", "at_every_depth", "is_slug"]

MAX_EQUIPMENT_LEVELS = 5
"""enterprise/site/area/line/cell."""


def at_every_depth(*tail: str) -> tuple[str, ...]:
    """MQTT filters of ``tail`` after an equipment path of each depth: ``+/mes/#`` ... ``+/+/+/+/+/mes/#``.

    MQTT allows nothing after ``#``, so a subscription to a class word below any equipment is one filter per depth.
    """
    return tuple("/".join(["+"] * depth + list(tail)) for depth in range(1, MAX_EQUIPMENT_LEVELS + 1))


SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
"""An equipment id: lower case letters, digits, ``_`` and ``-``, starting alphanumeric, at most 64 chars."""

_SLUG_RE = re.compile(SLUG_PATTERN)
# slug() maps a name with no usable character to "_", so topics accept it as a level (plant ids never are)
_PLACEHOLDER_LEVEL = "_"
_FORBIDDEN_IN_NAME = ("+", "#", "\x00")


class ClassWord(StrEnum):
    """What follows the equipment path; these words are reserved and never equipment ids."""

    data = "data"
    """Process and machine values."""
    mes = "mes"
    """MES events."""
    kpi = "kpi"
    """Values the hub computes."""
    cmd = "cmd"
    """Write requests routed to a machine."""
    alarm = "alarm"
    """The rules' alarms, one retained document per alarm (docs/rules.md)."""


_CLASS_WORDS = frozenset(ClassWord)
_CLASS_WORD_LIST = tuple(word.value for word in ClassWord)


class TopicError(ValueError):
    """A string is not a valid UNS topic; ``reason`` says which part and why."""

    def __init__(self, topic: str, reason: str) -> None:
        self.topic = topic
        self.reason = reason
        super().__init__(f"UNS topic {topic!r}: {reason}")


def is_slug(text: str) -> bool:
    """Whether ``text`` is a valid equipment id (see ``SLUG_PATTERN``)."""
    return _SLUG_RE.match(text) is not None


@dataclasses.dataclass(frozen=True, slots=True)
class UnsTopic:
    """One UNS topic, e.g. ``acme/dallas/packaging/line3/palletizer/data/Production/GoodCount``.

    Attributes:
        path: 1 to 5 equipment levels (slugs, never a class word).
        class_word: ``data``, ``mes``, ``kpi`` or ``cmd``.
        name: one or more name segments, Sparkplug's ``/`` hierarchy kept. Segments are non-empty
            and hold no ``+``, ``#`` or NUL; upper case, spaces and dots are fine.

    Raises:
        TopicError: on construction, naming the bad level or segment.
    """

    path: tuple[str, ...]
    class_word: ClassWord
    name: tuple[str, ...]

    def __post_init__(self) -> None:
        problem = _problem(self.path, self.class_word, self.name)
        if problem is not None:
            raise TopicError(_join(self.path, self.class_word, self.name), problem)

    @classmethod
    def from_str(cls, topic: str) -> Self:
        """Parse a topic; the class word is the first one after at least one equipment level.

        Raises:
            TopicError: no class word, too many levels, no name, or a bad level or segment.
        """
        parts = topic.split("/")
        for index in range(1, min(len(parts), MAX_EQUIPMENT_LEVELS + 1)):
            if parts[index] in _CLASS_WORDS:
                if index == len(parts) - 1:
                    raise TopicError(topic, f"nothing after the class word {parts[index]!r}")
                return cls(
                    path=tuple(parts[:index]), class_word=ClassWord(parts[index]), name=tuple(parts[index + 1 :])
                )
        if parts[0] in _CLASS_WORDS:
            raise TopicError(topic, f"starts with the class word {parts[0]!r}; an equipment path comes first")
        later = next((i for i, part in enumerate(parts) if part in _CLASS_WORDS), None)
        if later is not None:
            raise TopicError(topic, f"{later} equipment levels; 1 to {MAX_EQUIPMENT_LEVELS} are allowed")
        words = ", ".join(_CLASS_WORD_LIST)
        raise TopicError(topic, f"no class word ({words}) within the first {MAX_EQUIPMENT_LEVELS + 1} levels")

    @classmethod
    def for_metric(cls, path: str, metric_name: str, class_word: ClassWord = ClassWord.data) -> Self:
        """The topic of a metric at an equipment path; the metric name's ``/`` levels are kept.

        Args:
            path: an equipment path such as ``acme/dallas/bottling/line1/filler``.
            metric_name: a Sparkplug metric name such as ``Production/GoodCount``.
            class_word: the class word, ``data`` unless said otherwise.

        Raises:
            TopicError: an empty name segment, ``+``, ``#`` or NUL in the name, or a bad path.
        """
        return cls(path=tuple(path.split("/")), class_word=class_word, name=tuple(metric_name.split("/")))

    @property
    def equipment_path(self) -> str:
        """The equipment levels joined with ``/``."""
        return "/".join(self.path)

    @property
    def metric_name(self) -> str:
        """The name segments joined with ``/`` (the Sparkplug metric name for ``data``)."""
        return "/".join(self.name)

    def __str__(self) -> str:
        return _join(self.path, self.class_word, self.name)


def _join(path: tuple[str, ...], class_word: str, name: tuple[str, ...]) -> str:
    return "/".join((*path, str(class_word), *name))


def _problem(path: tuple[str, ...], class_word: object, name: tuple[str, ...]) -> str | None:
    """The first thing wrong with a topic's parts, or None; one pass over levels and segments."""
    if not 1 <= len(path) <= MAX_EQUIPMENT_LEVELS:
        return f"{len(path)} equipment levels; 1 to {MAX_EQUIPMENT_LEVELS} are allowed"
    if class_word not in _CLASS_WORDS:
        return f"class word {class_word!r} is not one of {', '.join(_CLASS_WORD_LIST)}"
    if not name:
        return "no name after the class word"
    for index, level in enumerate(path):
        if level in _CLASS_WORDS:
            return f"equipment level {index + 1} {level!r} is a reserved class word"
        if _SLUG_RE.match(level) is None and level != _PLACEHOLDER_LEVEL:
            return (
                f"equipment level {index + 1} {level!r} is not a slug "
                "(a-z, 0-9, '_', '-', starting with a letter or digit, at most 64 chars)"
            )
    for index, segment in enumerate(name):
        if not segment:
            return f"name segment {index + 1} is empty"
        for char in _FORBIDDEN_IN_NAME:
            if char in segment:
                return f"name segment {index + 1} {segment!r} contains {char!r}"
    return None

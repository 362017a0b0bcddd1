"""MQTT topic names and filters: validity and matching (MQTT 3.1.1 section 4.7), pure functions."""

from __future__ import annotations

__all__ = ["filter_covers", "filter_error", "topic_error", "topic_matches"]


def filter_error(topic_filter: str) -> str | None:
    """Why ``topic_filter`` is not a valid MQTT topic filter, or None when it is."""
    if not topic_filter:
        return "topic filter is empty"
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            return f"topic filter {topic_filter!r}: '#' must be the whole last level"
        if "+" in level and level != "+":
            return f"topic filter {topic_filter!r}: '+' must be a whole level"
    return None


def topic_error(topic: str) -> str | None:
    """Why ``topic`` is not a valid topic name to publish on, or None when it is."""
    if not topic:
        return "topic is empty"
    if "+" in topic or "#" in topic:
        return f"topic {topic!r} holds a wildcard"
    return None


def topic_matches(topic: str, topic_filter: str) -> bool:
    """Whether a message on ``topic`` matches ``topic_filter`` (MQTT 3.1.1 section 4.7)."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False  # [MQTT-4.7.2-1]: wildcards at the first level never match $-topics
    if "+" not in topic_filter and "#" not in topic_filter:
        return topic == topic_filter
    levels = topic.split("/")
    parts = topic_filter.split("/")
    for index, part in enumerate(parts):
        if part == "#":
            return True  # also matches the parent level: "a/#" matches "a"
        if index >= len(levels) or (part != "+" and part != levels[index]):
            return False
    return len(parts) == len(levels)


def filter_covers(outer: str, inner: str) -> bool:
    """Whether every topic matched by filter ``inner`` is also matched by filter ``outer``."""
    if inner.startswith("$") and outer[:1] in ("+", "#"):
        return False  # outer's first-level wildcard never matches $-topics
    outer_parts = outer.split("/")
    inner_parts = inner.split("/")
    for index, part in enumerate(outer_parts):
        if part == "#":
            return True
        if index >= len(inner_parts):
            return False
        mine = inner_parts[index]
        if mine == "#":
            return False  # inner reaches any depth, outer stops here
        if part == "+":
            continue
        if mine != part:
            return False
    return len(outer_parts) == len(inner_parts)

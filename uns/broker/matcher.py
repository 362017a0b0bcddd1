"""MQTT topic filter matching: the pure rules behind subscriptions, ACLs and the delivery caches."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

__all__ = ["SubscriptionIndex", "filter_covers", "filter_error", "topic_error", "topic_matches"]

_T = TypeVar("_T")
_CACHE_LIMIT = 100_000  # distinct topics remembered before the cache starts over


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


class SubscriptionIndex(Generic[_T]):
    """Subscribers by filter, with the match result cached per topic.

    Any change bumps ``generation``, which empties the cache on the next lookup: subscriptions
    change rarely, topics repeat all the time.
    """

    def __init__(self) -> None:
        self._by_filter: dict[str, dict[_T, int]] = {}
        self._cache: dict[str, tuple[tuple[_T, int], ...]] = {}
        self._cache_generation = 0
        self.generation = 0

    def add(self, topic_filter: str, subscriber: _T, qos: int) -> None:
        """Subscribe (or re-subscribe with a new QoS)."""
        self._by_filter.setdefault(topic_filter, {})[subscriber] = qos
        self.generation += 1

    def remove(self, topic_filter: str, subscriber: _T) -> bool:
        """Unsubscribe; False when it was not subscribed."""
        subscribers = self._by_filter.get(topic_filter)
        if subscribers is None or subscriber not in subscribers:
            return False
        del subscribers[subscriber]
        if not subscribers:
            del self._by_filter[topic_filter]
        self.generation += 1
        return True

    def remove_all(self, subscriber: _T) -> None:
        """Drop every subscription of ``subscriber``."""
        for topic_filter in [f for f, subs in self._by_filter.items() if subscriber in subs]:
            self.remove(topic_filter, subscriber)

    def filters(self) -> Iterable[str]:
        """Every filter someone subscribes to."""
        return self._by_filter.keys()

    def match(self, topic: str) -> tuple[tuple[_T, int], ...]:
        """``(subscriber, qos)`` for each subscriber with a filter matching ``topic``, highest QoS per subscriber."""
        if self._cache_generation != self.generation or len(self._cache) > _CACHE_LIMIT:
            self._cache.clear()
            self._cache_generation = self.generation
        found = self._cache.get(topic)
        if found is None:
            best: dict[_T, int] = {}
            for topic_filter, subscribers in self._by_filter.items():
                if topic_matches(topic, topic_filter):
                    for subscriber, qos in subscribers.items():
                        if qos >= best.get(subscriber, -1):
                            best[subscriber] = qos
            found = self._cache[topic] = tuple(best.items())
        return found

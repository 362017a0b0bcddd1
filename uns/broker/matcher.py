"""MQTT topic filter matching: the pure rules behind subscriptions, ACLs and the delivery caches."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

from uns.mqtt.filters import filter_covers, filter_error, topic_error, topic_matches

__all__ = ["SubscriptionIndex", "filter_covers", "filter_error", "topic_error", "topic_matches"]

_T = TypeVar("_T")
_CACHE_LIMIT = 100_000  # distinct topics remembered before the cache starts over


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

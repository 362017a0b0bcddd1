"""Shared subscriptions (``$share/<group>/<filter>``): parsing, group membership and round-robin choice.

Mosquitto, EMQX and HiveMQ honour ``$share`` for MQTT 3.1.1 clients too. A group is named by its
share name *and* its filter (as in MQTT 5, 4.8.2): ``$share/a/x/#`` and ``$share/a/y/#`` are two
groups. Each message matching a group goes to ONE member, chosen round-robin among the members the
caller accepts (the broker passes "connected"), starting after the member served last. Pure: no I/O,
no amqtt; the broker owns the sessions (:mod:`uns.broker.routing`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from uns.broker.matcher import filter_error, topic_matches

__all__ = ["SHARE_PREFIX", "ShareGroup", "SharedSubscriptions", "parse_shared"]

SHARE_PREFIX = "$share/"
_CACHE_LIMIT = 100_000  # distinct topics remembered before the cache starts over

_M = TypeVar("_M")


def parse_shared(text: str) -> tuple[str, str] | str | None:
    """``(group, filter)`` for a ``$share/<group>/<filter>`` string, an error text when it is malformed.

    None when ``text`` is not a shared subscription at all (a plain filter).
    """
    if not text.startswith(SHARE_PREFIX):
        return None
    group, sep, topic_filter = text[len(SHARE_PREFIX) :].partition("/")
    if not sep or not group:
        return f"{text!r}: a shared subscription is $share/<group>/<filter>"
    if any(char in group for char in "+#"):
        return f"{text!r}: the share name {group!r} may not hold + or #"
    problem = filter_error(topic_filter)
    if problem is not None:
        return f"{text!r}: {problem}"
    return group, topic_filter


class ShareGroup(Generic[_M]):
    """The members of one ``(group, filter)`` with their granted QoS, in join order, and the round-robin cursor."""

    __slots__ = ("_next", "group", "members", "text", "topic_filter")

    def __init__(self, group: str, topic_filter: str) -> None:
        self.group = group
        self.topic_filter = topic_filter
        self.text = f"{SHARE_PREFIX}{group}/{topic_filter}"
        """The subscription string clients use (and unsubscribe with)."""
        self.members: dict[_M, int] = {}
        self._next = 0

    def pick(self, accept: Callable[[_M], bool], *, exclude: _M | None = None) -> tuple[_M, int] | None:
        """The next member (after the one served last) that ``accept`` takes, with its QoS; None if none does."""
        members = list(self.members.items())
        count = len(members)
        for step in range(count):
            index = (self._next + step) % count
            member, qos = members[index]
            if member is not exclude and accept(member):
                self._next = index + 1
                return member, qos
        return None


class SharedSubscriptions(Generic[_M]):
    """Every shared subscription of one broker, with the matching groups cached per topic."""

    def __init__(self) -> None:
        self._groups: dict[tuple[str, str], ShareGroup[_M]] = {}
        self._cache: dict[str, tuple[ShareGroup[_M], ...]] = {}
        self._cache_generation = 0
        self.generation = 0

    def __bool__(self) -> bool:
        return bool(self._groups)

    def __iter__(self) -> Iterator[ShareGroup[_M]]:
        return iter(list(self._groups.values()))

    def add(self, group: str, topic_filter: str, member: _M, qos: int) -> None:
        """Join (or re-join with a new QoS) the group ``(group, topic_filter)``."""
        key = (group, topic_filter)
        found = self._groups.get(key)
        if found is None:
            found = self._groups[key] = ShareGroup(group, topic_filter)
        found.members[member] = qos
        self.generation += 1

    def remove(self, group: str, topic_filter: str, member: _M) -> bool:
        """Leave a group; False when ``member`` was not in it."""
        key = (group, topic_filter)
        found = self._groups.get(key)
        if found is None or member not in found.members:
            return False
        del found.members[member]
        if not found.members:
            del self._groups[key]
        self.generation += 1
        return True

    def remove_all(self, member: _M) -> list[str]:
        """Leave every group; the subscription strings left."""
        left = [g.text for g in list(self._groups.values()) if member in g.members]
        for key in [k for k, g in self._groups.items() if member in g.members]:
            self.remove(key[0], key[1], member)
        return left

    def groups_of(self, member: _M) -> list[ShareGroup[_M]]:
        """The groups ``member`` belongs to."""
        return [g for g in self._groups.values() if member in g.members]

    def get(self, group: str, topic_filter: str) -> ShareGroup[_M] | None:
        """The group ``(group, topic_filter)`` if anyone is in it."""
        return self._groups.get((group, topic_filter))

    def matching(self, topic: str) -> tuple[ShareGroup[_M], ...]:
        """Groups whose filter matches ``topic`` (cached until membership changes)."""
        if not self._groups:
            return ()
        if self._cache_generation != self.generation or len(self._cache) > _CACHE_LIMIT:
            self._cache.clear()
            self._cache_generation = self.generation
        found = self._cache.get(topic)
        if found is None:
            found = self._cache[topic] = tuple(g for g in self._groups.values() if topic_matches(topic, g.topic_filter))
        return found

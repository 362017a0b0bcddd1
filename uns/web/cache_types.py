"""The topic cache's value types: one topic, one tree node, one page of the tree, and the tree filter."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol

__all__ = [
    "CLASS_BITS",
    "CLASS_WORDS",
    "PROBLEMS",
    "CacheStats",
    "Figures",
    "JsonScalar",
    "Node",
    "Page",
    "TopicInfo",
    "TreeFilter",
    "Update",
    "class_bit",
]

CLASS_WORDS: tuple[str, ...] = ("data", "kpi", "mes", "cmd", "alarm")
"""The namespace's class words, in the order the tree filter offers them."""
CLASS_BITS = {word: 1 << index for index, word in enumerate(CLASS_WORDS)}
"""Class word -> its bit in a tree node's class mask."""
_OTHER_CLASS = 1 << len(CLASS_WORDS)
"""The class bit of Sparkplug, ``$SYS`` and any topic outside the ISA-95 shape (no class word after its first level)."""
PROBLEMS = frozenset({"bad", "stale"})
"""The qualities a tree node counts in ``problems`` (and the "problems only" filter finds)."""

JsonScalar = int | float | bool | str | None


def class_bit(names: Sequence[str]) -> int:
    """The class bit of the topic whose levels are ``names``: its first class word after the first level names it."""
    for name in names[1:]:
        bit = CLASS_BITS.get(name)
        if bit is not None:
            return bit
    return _OTHER_CLASS


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TopicInfo:
    """One topic as the cache knows it now.

    ``value``, ``quality`` and ``timestamp_ms`` come from a UNS value envelope (``{"value": ...}``);
    they are None for other payloads, and ``value`` is None for lists and objects too.
    ``retained`` says the broker holds a retained value for it, as far as the cache has seen.
    """

    topic: str
    size: int
    stored: int
    retained: bool
    count: int
    rate: float
    first_ms: int
    last_ms: int
    value: JsonScalar = None
    quality: str | None = None
    timestamp_ms: int | None = None


Update = TopicInfo
"""A coalesced change: a topic's state after the latest of its messages in the batch."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """One level of the topic tree: ``topics`` and ``messages`` count its whole subtree, itself included."""

    name: str
    path: str
    topics: int
    messages: int
    rate: float
    children: int
    topic: TopicInfo | None = None
    problems: int = 0
    """Topics in the subtree whose last quality is ``bad`` or ``stale``."""
    last_ms: int = 0
    """When the subtree's latest message arrived (Unix ms)."""

    @property
    def is_topic(self) -> bool:
        """Whether a message was seen on this exact path."""
        return self.topic is not None


class Figures(Protocol):
    """What a tree filter reads of a subtree: the cache's own tree level, or a reader's figures for a node."""

    @property
    def classes(self) -> int:
        """A bit per class found in the subtree (:func:`class_bit`)."""

    @property
    def problems(self) -> int:
        """The subtree's topics whose quality is ``bad`` or ``stale``."""

    @property
    def last_ms(self) -> int:
        """When the subtree's latest message arrived (Unix ms)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TreeFilter:
    """Which tree nodes to show: a node passes when, for every set field, something in its subtree matches it.

    Each node keeps one aggregate per field, so with two fields set a branch may pass on two
    different topics; a topic itself passes only on its own values.

    Attributes:
        class_word: only topics of this class (``data``, ``kpi``, ``mes``, ``cmd`` or ``alarm``).
        problems: only topics whose quality is ``bad`` or ``stale``.
        changed_ms: only subtrees with a message in the last this many ms.
    """

    class_word: str | None = None
    problems: bool = False
    changed_ms: int | None = None

    def __post_init__(self) -> None:
        if self.class_word is not None and self.class_word not in CLASS_BITS:
            raise ValueError(f"class_word: one of {', '.join(CLASS_WORDS)} (got {self.class_word!r})")

    @property
    def empty(self) -> bool:
        """Whether it lets everything through."""
        return self.class_word is None and not self.problems and self.changed_ms is None

    def criteria(self, now_ms: int) -> tuple[int, int]:
        """(the class bit wanted, 0 for any; the earliest latest time passing, -1 for any) at ``now_ms``."""
        since = now_ms - self.changed_ms if self.changed_ms else -1
        return CLASS_BITS.get(self.class_word or "", 0), since

    def passes(self, figures: Figures, bit: int, since: int) -> bool:
        """Whether a subtree with these figures (a tree node's ``classes``, ``problems``, ``last_ms``) passes.

        ``bit``, ``since``: :meth:`criteria` of this filter, worked out once for all the nodes of one answer.
        """
        return (
            (not bit or figures.classes & bit != 0)
            and (not self.problems or figures.problems > 0)
            and figures.last_ms >= since
        )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    """One page of a node's children: ``shown`` in tree order, and how many more pass the filter after them."""

    shown: tuple[Node, ...]
    more: int


@dataclasses.dataclass(slots=True)
class CacheStats:
    """Counters for ``/api/health``."""

    messages: int = 0
    topics: int = 0
    topics_refused: int = 0
    payload_bytes: int = 0
    payloads_shortened: int = 0
    sparkplug_errors: int = 0
    out_of_order: int = 0
    """Envelopes older than the one a topic holds: counted, never made its latest."""

    def as_dict(self) -> dict[str, int]:
        """The counters by name."""
        return dataclasses.asdict(self)

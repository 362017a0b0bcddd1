"""Topic-exchange routing: whether a routing key fits a binding pattern ('*' one word, '#' zero or more).

The source picks the route of a message the way RabbitMQ's topic exchange picks queues, so a
route's ``routing_key`` means what the same text means as a binding key.
"""

from __future__ import annotations

import functools

__all__ = ["key_matches"]


@functools.lru_cache(maxsize=4096)
def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split("."))


def key_matches(routing_key: str, pattern: str) -> bool:
    """Whether ``routing_key`` fits ``pattern`` (``a.*.c``, ``a.#``, ``#``; other words compared as text)."""
    if pattern == "#":
        return True
    return _match(_words(routing_key), 0, _words(pattern), 0)


def _match(key: tuple[str, ...], at: int, pattern: tuple[str, ...], pat: int) -> bool:
    while pat < len(pattern):
        word = pattern[pat]
        if word == "#":
            if pat == len(pattern) - 1:
                return True
            # '#' takes zero or more words: try each split (patterns are short)
            return any(_match(key, skip, pattern, pat + 1) for skip in range(at, len(key) + 1))
        if at >= len(key) or (word != "*" and word != key[at]):
            return False
        at, pat = at + 1, pat + 1
    return at == len(key)

"""The topic cache's search index: the names of the topics under one first level, searched by substring in any case."""

from __future__ import annotations

import array
import bisect
import sys
from collections.abc import Callable

__all__ = ["Haystack"]


class Haystack:
    """The topics under one first level, for search: their names and when each was seen first (the cache's count).

    The names folded and joined by newlines, and where each begins, are made when a search needs them after a
    topic was added under this first level (not under another).
    """

    __slots__ = ("_names", "_seen", "_starts", "_text")

    def __init__(self) -> None:
        self._names: list[str] = []
        self._seen = array.array("q")
        self._text: str | None = None
        self._starts: list[int] = []

    def add(self, topic: str, seen: int) -> None:
        """Take a new topic, ``seen``: its number among all topics the cache took, in order."""
        self._names.append(topic)
        self._seen.append(seen)
        self._text = None

    @property
    def first(self) -> int:
        """When its first topic was seen: none of its topics was seen before."""
        return self._seen[0]

    def find(
        self, needle: str, limit: int, keep: Callable[[str], bool] | None, before: int = sys.maxsize
    ) -> list[tuple[int, str]]:
        """(first seen, name) of the first ``limit`` names containing ``needle`` (folded) that ``keep`` keeps.

        Only names seen before ``before`` (the cache's count): the later ones are not even given to ``keep``.
        """
        text = self._text
        if text is None:
            folded = [name.casefold() for name in self._names]  # folding may change a name's length
            starts, offset = [], 0  # a list: bisect reads it faster than an array
            for name in folded:
                starts.append(offset)
                offset += len(name) + 1
            text = self._text = "\n".join(folded)
            self._starts = starts
        starts, names = self._starts, self._names
        found: list[tuple[int, str]] = []
        at = 0
        while len(found) < limit and at < len(text):
            at = text.find(needle, at)
            if at < 0:
                break
            index = bisect.bisect_right(starts, at) - 1
            seen = self._seen[index]
            if seen >= before:
                break  # this name and the rest were seen after it
            name = names[index]
            if keep is None or keep(name):
                found.append((seen, name))
            at = starts[index + 1] if index + 1 < len(starts) else len(text)
        return found

"""Events counted by path for a health document: how many, at how many paths, the first paths by name.

The MES's lists of paths a plant engineer should look at (events at unbound paths, stray counts on a line
path) each count events, list paths and warn once per path; this is the counting and listing they share.
"""

from __future__ import annotations

__all__ = ["LISTED", "PathTally"]

LISTED = 100
"""Paths named in a health list (all are counted)."""


class PathTally:
    """Events counted at paths; ``add`` says whether a path is new (the caller warns once per path)."""

    def __init__(self) -> None:
        self._paths: set[str] = set()
        self.events = 0
        """Events counted, all paths."""

    def add(self, path: str) -> bool:
        """Count one event at ``path``; True when it is the path's first."""
        self.events += 1
        if path in self._paths:
            return False
        self._paths.add(path)
        return True

    def __len__(self) -> int:
        return len(self._paths)

    def listed(self) -> list[str]:
        """The first ``LISTED`` paths, sorted."""
        return sorted(self._paths)[:LISTED]

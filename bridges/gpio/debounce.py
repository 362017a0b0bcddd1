"""Debouncing a digital input from its edges (pure: times come in, nothing is read from a clock).

A new level counts once it has held ``period_ns`` without another edge: contact bounce and glitches
shorter than that change nothing. A counter counts the confirmed transitions of one direction.
"""

from __future__ import annotations

__all__ = ["Debouncer"]


class Debouncer:
    """One input's confirmed level, from raw edges.

    Args:
        period_ns: how long a new level must hold.
        level: the level read when the line was taken.
    """

    def __init__(self, *, period_ns: int, level: bool) -> None:
        self.period_ns = period_ns
        self.level = level
        """The confirmed level."""
        self._raw = level
        self._since_ns = 0
        self.changed_ns = 0
        """When the confirmed level began (its first edge after the bounce), monotonic ns."""

    def edge(self, value: bool, at_ns: int) -> bool | None:
        """A raw edge at ``at_ns``; returns a level it confirms first (the previous one held long enough), if any."""
        confirmed = self.settle(at_ns)
        self._raw = value
        self._since_ns = at_ns
        if self.period_ns == 0:
            return self._confirm() if confirmed is None else confirmed
        return confirmed

    def due_ns(self) -> int | None:
        """When the pending level will be confirmed, if one is pending."""
        return None if self._raw == self.level else self._since_ns + self.period_ns

    def settle(self, now_ns: int) -> bool | None:
        """The new confirmed level, if the pending one has held until ``now_ns``."""
        if self._raw != self.level and now_ns - self._since_ns >= self.period_ns:
            return self._confirm()
        return None

    def _confirm(self) -> bool | None:
        if self._raw == self.level:
            return None
        self.level = self._raw
        self.changed_ns = self._since_ns
        return self.level

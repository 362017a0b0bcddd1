"""What a committed batch of MES events changed: the invalidation point for anything caching derived numbers.

Every stored event changes the numbers of its path over a stretch of time: a count at its instant,
a machine state from its instant on, a downtime label over its interval, a shift over its span, a
work order from its instant on (and every row it re-attributed to another order), a product type
at every instant. A late or backfilled event is simply one whose stretch lies in the past.

The MES store announces them after each commit, on the store's one writer thread, through
``ChangeFeed.publish``. A cache of per-interval facts (month reports) hooks in with
``ChangeFeed.subscribe(callback)`` and drops what overlaps: a change at ``path`` touches that path,
its ancestors (a line's numbers include its cells) and, for a path-wide event such as a shift at a
site, everything below it. A callback must be quick and must not raise; it runs before the HTTP
answer or the MQTT acknowledgement of the events it describes, so the next read sees the change.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence

__all__ = ["Change", "ChangeFeed", "ChangeListener"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One stretch of derived numbers made stale by a stored event."""

    event: str
    """The event name (``production_count``, ``machine_state``, ...); a re-attributed row's own event."""
    path: str
    """The equipment path the event is at (a line for work orders)."""
    start_ms: int | None
    """First instant changed, ms since 1970; None: all of history (a product type's ideal cycle time)."""
    end_ms: int | None
    """End of the change (exclusive); None: open, up to now and beyond (a state runs until the next)."""


ChangeListener = Callable[[Sequence[Change]], None]
"""Called with the changes of one committed batch."""


class ChangeFeed:
    """Fans the changes of each committed batch out to the listeners that subscribed."""

    def __init__(self) -> None:
        self._listeners: list[ChangeListener] = []

    def subscribe(self, listener: ChangeListener) -> Callable[[], None]:
        """Call ``listener`` after every commit that changed something; returns the unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def publish(self, changes: Sequence[Change]) -> None:
        """Tell every listener; one failing listener is logged and does not stop the others."""
        if not changes:
            return
        for listener in list(self._listeners):
            try:
                listener(changes)
            except Exception:  # a cache's bug must not undo a committed batch
                log.exception("MES change listener %r failed", listener)

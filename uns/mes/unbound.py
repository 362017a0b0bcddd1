"""MES events at paths the plant file does not name: stored, counted, listed, and warned about once per path.

As the Sparkplug host does for a device no binding names (``uns.host.directory``), an event is never
dropped for its path: a new cell may send events before the plant file lists it. Its path is
``unbound``: the adapter's health lists it and counts its events, and the log says so once per path.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from uns.mes.path_tally import PathTally

__all__ = ["UnboundPaths"]

log = logging.getLogger(__name__)


class UnboundPaths:
    """The paths of stored events that are not equipment of the plant file.

    Args:
        equipment: the plant file's equipment paths; None knows no plant, so nothing is unbound.
    """

    def __init__(self, equipment: Collection[str] | None) -> None:
        self._equipment = frozenset(equipment) if equipment is not None else None
        self._tally = PathTally()

    def note(self, path: str, topic: str) -> bool:
        """Count a stored event at ``path``; True when the path is unbound (warned about on its first event)."""
        if self._equipment is None or path in self._equipment:
            return False
        if self._tally.add(path):
            log.warning(
                "MES event at unbound path %s (%s): not in the plant file; stored under that path and listed as"
                " unbound in the health; add it to the plant file or fix the publisher's topic",
                path,
                topic,
            )
        return True

    def health(self) -> dict[str, object]:
        """``unbound_paths`` (how many), ``unbound`` (the first 100, sorted) and ``unbound_events``."""
        return {
            "unbound_paths": len(self._tally),
            "unbound": self._tally.listed(),
            "unbound_events": self._tally.events,
        }

"""What the MES adapter does with refused events: count each, keep a bounded number, log one line per cause.

A fuzzer or a broken ERP connector can send thousands of invalid events a second. Each refusal is
counted; at most ``rows_per_s`` of them per second get a ``mes_dead_letters`` row and an announcement
on the errors topic, the rest are counted as dropped (the count is never lost). The log gets one
rate-limited WARNING per topic and field, saying how many more were held back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from uns.logs import RateLimitedLog
from uns.mes.intake import Refused

__all__ = ["DEAD_LETTERS_PER_S", "DeadLetterRow", "Refusals", "dead_letter_rows"]

log = logging.getLogger(__name__)

DEAD_LETTERS_PER_S = 100
"""Refused events kept (dead-letter row and announcement) per second; the rest are only counted."""
_BODY_CHARS = 4000

DeadLetterRow = tuple[int, str, str | None, str, str, str]
"""``(received_ms, topic, event, field, reason, body)`` as ``mes_dead_letters`` stores it."""


def dead_letter_rows(refused: Sequence[Refused], now_ms: int) -> list[DeadLetterRow]:
    """The ``mes_dead_letters`` rows of ``refused``, received at ``now_ms``."""
    return [
        (now_ms, r.topic, r.event, r.field, r.reason, r.raw[:_BODY_CHARS].decode("utf-8", "replace")) for r in refused
    ]


class Refusals:
    """Counts, bounds and logs refused MES events.

    Args:
        rows_per_s: refusals kept per second (clock second); past it they are counted in ``dropped``.
        clock: seconds, monotonic (injectable for tests).
    """

    def __init__(self, *, rows_per_s: int = DEAD_LETTERS_PER_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._rows_per_s = rows_per_s
        self._clock = clock
        self._second = -1
        self._used = 0
        self._warn = RateLimitedLog(log)
        self.counted = 0
        """Every refusal seen."""
        self.dropped = 0
        """Refusals past the bound: counted, but no dead-letter row and no announcement."""

    def take(self, refused: Sequence[Refused], *, stored: bool = False) -> list[Refused]:
        """Count and log ``refused``; return those within this second's bound (to store and announce).

        ``stored``: their rows are already written (the store's cross-event rejections), so only the
        announcements are bounded and nothing counts as dropped.
        """
        self.counted += len(refused)
        for item in refused:
            self._warn.warning(
                f"{item.topic}\x00{item.field}", "MES event refused on %s: %s: %s", item.topic, item.field, item.reason
            )
        second = int(self._clock())
        if second != self._second:
            self._second, self._used = second, 0
        room = max(0, self._rows_per_s - self._used)
        kept = list(refused[:room])
        self._used += len(kept)
        if not stored:
            self.dropped += len(refused) - len(kept)
        return kept

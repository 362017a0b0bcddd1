"""The one wall clock: epoch milliseconds for samples and envelopes, an aware UTC instant for queries.

Everything that stamps or compares wall time reads it here, so a test or a bench can see every
caller of the clock with one grep, and milliseconds are computed one way (integer nanoseconds, no float
rounding). Instants as whole microseconds since the epoch (how the MES facts store time, as DuckDB's
``epoch_us``) and whole milliseconds (``epoch_ms``) convert here too, both ways; a span is whole microseconds
(``span_us``), what durations are summed in.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

__all__ = [
    "EPOCH",
    "HOUR_US",
    "at_epoch_ms",
    "at_epoch_us",
    "epoch_ms",
    "epoch_us",
    "nearest_epoch_ms",
    "now_ms",
    "now_ns",
    "span_us",
    "utc_now",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""The Unix epoch as an aware ``datetime``: where every stored microsecond and millisecond counts from."""
HOUR_US = 3_600_000_000
"""Microseconds in an hour: the MES facts' hour ``h`` is ``[h * HOUR_US, (h + 1) * HOUR_US)`` since ``EPOCH``."""
_MICROSECOND = timedelta(microseconds=1)


def now_ns() -> int:
    """Nanoseconds since the Unix epoch: the wall clock itself, which ``now_ms`` rounds down."""
    return time.time_ns()


def now_ms() -> int:
    """Milliseconds since the Unix epoch, from the integer nanosecond clock (no float rounding)."""
    return time.time_ns() // 1_000_000  # now_ns() // 1_000_000 without a call: this one runs per message


def utc_now() -> datetime:
    """The current instant as an aware UTC ``datetime``."""
    return datetime.now(UTC)


def epoch_us(moment: datetime) -> int:
    """Microseconds of an aware ``moment`` since the Unix epoch, exact (``timedelta`` arithmetic, no float)."""
    return (moment - EPOCH) // _MICROSECOND


def epoch_ms(moment: datetime) -> int:
    """Whole milliseconds of an aware ``moment`` since the Unix epoch, rounded down, exact (``epoch_us``'s)."""
    return epoch_us(moment) // 1000


def span_us(start: datetime, end: datetime) -> int:
    """Whole microseconds from ``start`` to ``end``, rounded down, exact (``timedelta`` arithmetic, no float).

    What durations are summed in, so a sum is what a hand adds up (float seconds sum 120.1 + 130.2 s to
    250.29999999999998) and becomes seconds or hours once.
    """
    return (end - start) // _MICROSECOND


def nearest_epoch_ms(moment: datetime) -> int:
    """The millisecond nearest an aware ``moment`` since the Unix epoch (half a millisecond up), exact.

    For a time a source reads from a device or a document (an ISO text, a database column): its
    sub-millisecond digits round to the nearest millisecond, where ``epoch_ms`` rounds down.
    """
    return (epoch_us(moment) + 500) // 1000


def at_epoch_us(micros: int) -> datetime:
    """The aware UTC instant ``micros`` microseconds after the Unix epoch (``epoch_us``'s inverse)."""
    return EPOCH + timedelta(microseconds=micros)


def at_epoch_ms(millis: int) -> datetime:
    """The aware UTC instant ``millis`` milliseconds after the Unix epoch (``epoch_ms``'s inverse), exact."""
    return EPOCH + timedelta(milliseconds=millis)

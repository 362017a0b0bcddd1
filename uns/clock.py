"""The one wall clock: epoch milliseconds for samples and envelopes, an aware UTC instant for queries.

Everything that stamps or compares wall time reads it here, so a test or a bench can see every
caller of the clock with one grep, and milliseconds are computed one way (integer nanoseconds, no float
rounding).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

__all__ = ["now_ms", "utc_now"]


def now_ms() -> int:
    """Milliseconds since the Unix epoch, from the integer nanosecond clock (no float rounding)."""
    return time.time_ns() // 1_000_000


def utc_now() -> datetime:
    """The current instant as an aware UTC ``datetime``."""
    return datetime.now(UTC)

"""The one reader of HTTP ``Retry-After`` (RFC 9110 10.2.3), shared by the HTTP source and the HTTP sinks."""

from __future__ import annotations

import email.utils
import math

__all__ = ["retry_after_s"]


def retry_after_s(value: str | None, *, now_s: float, cap_s: float = math.inf) -> float | None:
    """Seconds to wait from a ``Retry-After`` value, at most ``cap_s``; None if absent or unreadable.

    The value is delay-seconds (digits only: ``-5`` and ``1.5`` are not valid) or an HTTP date, which counts
    from ``now_s`` (a date in the past means now). A target may not hold a client back longer than the cap.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), cap_s)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return min(max(0.0, when.timestamp() - now_s), cap_s)

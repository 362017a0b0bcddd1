"""The one reader of HTTP ``Retry-After`` (RFC 9110 10.2.3), shared by the HTTP source and the HTTP sinks."""

from __future__ import annotations

import email.utils
import math

from uns.clock import now_ns

__all__ = ["retry_after_s"]


def retry_after_s(value: str | None, *, cap_s: float = math.inf, now_s: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value, at most ``cap_s``; None if absent or unreadable.

    The value is delay-seconds (digits only: ``-5`` and ``1.5`` are not valid) or an HTTP date, which counts
    from now (a date in the past means now). A target may not hold a client back longer than the cap.

    Args:
        value: the header's value.
        cap_s: the longest wait a target may ask for.
        now_s: the wall clock in seconds since 1970; None reads ``uns.clock`` (a test passes its own).
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
    now = now_ns() / 1e9 if now_s is None else now_s
    return min(max(0.0, when.timestamp() - now), cap_s)

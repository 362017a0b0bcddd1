"""HTTP response headers the poller reads: ``Retry-After`` (RFC 9110 10.2.3) and ``Link: rel="next"`` (RFC 8288)."""

from __future__ import annotations

import email.utils
import re

__all__ = ["next_link", "retry_after_s"]

_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]*)*)")
_REL = re.compile(r"""(?:^|;)\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,"]+))""", re.IGNORECASE)


def retry_after_s(value: str | None, *, now_s: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay-seconds or an HTTP date); None if absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now_s)


def next_link(value: str | None) -> str | None:
    """The target of the ``rel="next"`` link in a ``Link`` header (rel may list several types), or None."""
    if not value:
        return None
    for match in _LINK.finditer(value):
        for rel in _REL.finditer(match.group(2)):
            types = (rel.group(1) or rel.group(2) or "").lower().split()
            if "next" in types:
                return match.group(1).strip()
    return None

"""The ``Link: rel="next"`` header (RFC 8288) the poller pages by (``Retry-After`` is read by ``uns.retry_after``)."""

from __future__ import annotations

import re

__all__ = ["next_link"]

_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]*)*)")
_REL = re.compile(r"""(?:^|;)\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,"]+))""", re.IGNORECASE)


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

"""Durations as people type them, one grammar for every setting and argument: ``500ms``, ``10s``, ``1.5h``, ``2w``.

A number (decimals allowed) and a unit (``ms``, ``s``, ``m``, ``h``, ``d``, ``w``, either case), spaces
around and between them allowed, read to the millisecond. The computed tags' windows and ``every``, the
history queries' bucket sizes and relative times (``-15m``) all read it here (docs/configuration.md#durations).
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from types import MappingProxyType

__all__ = ["DURATION_PATTERN", "MAX_DURATION_MS", "UNIT_MS", "duration_ms"]

DURATION_PATTERN = r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([mM][sS]|[sSmMhHdDwW])\s*$"
"""The grammar as a regular expression that Python, pydantic (Rust) and JSON Schema (ECMA 262) read alike."""

UNIT_MS = MappingProxyType({"w": 604_800_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1})
"""Milliseconds per unit, longest first."""

MAX_DURATION_MS = timedelta.max // timedelta(milliseconds=1)
"""The longest duration read: what a ``timedelta`` holds (999,999,999 days)."""

_DURATION = re.compile(DURATION_PATTERN)


def duration_ms(text: str, *, allow_zero: bool = False) -> int:
    """``text`` as whole milliseconds (a fraction of one rounded): ``"1.5h"`` -> ``5_400_000``.

    Raises:
        ValueError: not a duration, zero (unless ``allow_zero``), or longer than ``MAX_DURATION_MS``.
    """
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration such as '500ms', '10s', '1m', '1.5h', '1d' or '2w'")
    ms = round(Decimal(match.group(1)) * UNIT_MS[match.group(2).lower()])
    if ms <= 0 and not allow_zero:
        raise ValueError(f"the duration {text!r} must be longer than 0")
    if ms > MAX_DURATION_MS:
        raise ValueError(f"the duration {text!r} is longer than 999,999,999 days")
    return ms

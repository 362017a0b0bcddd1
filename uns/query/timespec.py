"""Time arguments as people type them (ISO-8601, ``now``, ``-15m``) and bucket sizes (``1m``), for the CLI and HTTP.

Bucket sizes and relative times are durations of ``model.duration``'s one grammar (``1.5h``, ``2w``).
"""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from model.duration import UNIT_MS, duration_ms
from uns.errors import BadArgument

__all__ = [
    "UTC_ZONE",
    "checked_window",
    "format_interval",
    "instant",
    "parse_interval",
    "parse_time",
    "parse_zone",
    "relative_ms",
    "require_aware",
]

UTC_ZONE = ZoneInfo("UTC")
"""The default time zone of every query."""

_RELATIVE = re.compile(r"(?:now)?-(.+)", re.DOTALL)  # then a duration
_TIME_EXAMPLES = (
    "2026-11-24T08:00:00+01:00, 2026-11-24T07:00:00Z, 2026-11-24T08:00 (in the given tz), now, -15m, -2h, -7d"
)


def require_aware(value: datetime, field: str) -> datetime:
    """``value`` itself when it carries a time zone.

    Raises:
        BadArgument: for a naive datetime: the instant it means is unknown.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise BadArgument(field, f"{value.isoformat()} has no time zone: give a time zone, e.g. tzinfo=datetime.UTC")
    return value


def checked_window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC, once both carry a time zone and ``end`` is after ``start``.

    Raises:
        BadArgument: naming ``start`` or ``end``.
    """
    require_aware(start, "start")
    require_aware(end, "end")
    if end <= start:
        raise BadArgument("end", f"{end.isoformat()} is not after start {start.isoformat()}")
    return start.astimezone(UTC), end.astimezone(UTC)


def instant(epoch_ms: int, tz: tzinfo) -> datetime:
    """Milliseconds since 1970 as a datetime in ``tz``: exact, and cheap enough for answers of many rows."""
    seconds, millis = divmod(epoch_ms, 1000)
    return datetime.fromtimestamp(seconds, tz).replace(microsecond=millis * 1000)


def parse_zone(text: str, *, field: str = "tz") -> ZoneInfo:
    """An IANA time zone name (``UTC``, ``Europe/Berlin``) as a ``ZoneInfo``.

    Raises:
        BadArgument: naming ``field`` for an unknown zone.
    """
    try:
        return ZoneInfo(text.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadArgument(field, f"unknown time zone {text!r}; use an IANA name like UTC or Europe/Berlin") from exc


def parse_time(text: str, *, now: datetime, tz: tzinfo, field: str = "time") -> datetime:
    """One instant from what a user typed, as a tz-aware datetime.

    Accepts ISO-8601 with an offset or ``Z``; a naive ISO time (or a date) read in ``tz``; ``now``;
    and times relative to now: ``-30s``, ``-15m``, ``-2h``, ``-7d``, ``-1w`` (also ``now-15m``).

    Args:
        text: what was typed.
        now: the current instant (tz-aware), so that relative times are testable.
        tz: the zone a time without an offset is read in.
        field: the argument's name, for the error.

    Raises:
        BadArgument: naming ``field`` and showing examples.
    """
    require_aware(now, "now")
    cleaned = text.strip()
    if cleaned.lower() == "now":
        return now
    back_ms = relative_ms(cleaned)
    if back_ms is not None:
        with contextlib.suppress(OverflowError):  # before year 1: refused below
            return now - timedelta(milliseconds=back_ms)
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError:
        raise BadArgument(field, f"cannot read {text!r} as a time; examples: {_TIME_EXAMPLES}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=tz)
    return parsed


def relative_ms(text: str) -> int | None:
    """How far before now a relative time (``-15m``, ``now-1.5h``, any case) reaches, in ms; None if it is not one."""
    relative = _RELATIVE.fullmatch(text.strip().lower())
    if relative is None:
        return None
    try:
        return duration_ms(relative.group(1), allow_zero=True)
    except ValueError:
        return None


def parse_interval(text: str, *, field: str = "bucket") -> timedelta:
    """A positive duration like ``15s``, ``1m``, ``1h``, ``1d`` (also ``ms``, ``w`` and decimals: ``1.5h``).

    Raises:
        BadArgument: naming ``field`` and showing examples.
    """
    try:
        return timedelta(milliseconds=duration_ms(text))
    except ValueError:
        raise BadArgument(field, f"cannot read {text!r} as a duration; examples: 15s, 1m, 15m, 1h, 1d") from None


def format_interval(value: timedelta) -> str:
    """The shortest ``parse_interval`` spelling of a duration: ``timedelta(hours=1)`` -> ``1h``."""
    micros = value // timedelta(microseconds=1)
    for unit, ms in UNIT_MS.items():
        if micros % (ms * 1000) == 0:
            return f"{micros // (ms * 1000)}{unit}"
    return f"{value.total_seconds()}s"

"""The demo plant's shift calendar (early, late, night; 8 h with a 30 min break) and local-time stamps for ids."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from uns.clock import at_epoch_ms, epoch_ms

__all__ = ["SHIFT_NAMES", "ShiftDef", "local_date", "local_stamp", "shift_at", "shifts_around", "shifts_of_day"]

# name, local start hour, break start hour offset from the shift start (h), all 8 h long
_PATTERN = (("early", 6), ("late", 14), ("night", 22))
_LENGTH = timedelta(hours=8)
_BREAK_AFTER = timedelta(hours=4)
_BREAK = timedelta(minutes=30)

SHIFT_NAMES = tuple(name for name, _ in _PATTERN)
"""The shift names, in the order of the day."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ShiftDef:
    """One planned shift with its break, in ms since 1970 UTC."""

    shift_id: str
    """``2026-11-24-early``: the local date the shift starts on, and its name."""
    name: str
    index: int
    """0 early, 1 late, 2 night."""
    start_ms: int
    end_ms: int
    break_start_ms: int
    break_end_ms: int


def shifts_of_day(day: date, tz: ZoneInfo) -> list[ShiftDef]:
    """The three shifts starting on local ``day`` (the night one ends the next morning)."""
    out = []
    for index, (name, hour) in enumerate(_PATTERN):
        start = datetime.combine(day, time(hour), tzinfo=tz)
        # wall-clock arithmetic in UTC, so a DST change makes the night 7 or 9 h, as the clock on the wall says
        end = datetime.combine(day + timedelta(days=1) if hour + 8 >= 24 else day, time((hour + 8) % 24), tzinfo=tz)
        pause = start.astimezone(UTC) + _BREAK_AFTER  # elapsed time: the break is 4 h in, DST or not
        out.append(
            ShiftDef(
                shift_id=f"{day.isoformat()}-{name}",
                name=name,
                index=index,
                start_ms=epoch_ms(start),
                end_ms=epoch_ms(end),
                break_start_ms=epoch_ms(pause),
                break_end_ms=epoch_ms(pause + _BREAK),
            )
        )
    return out


def local_date(now_ms: int, tz: ZoneInfo) -> date:
    """The local calendar date at ``now_ms``."""
    return at_epoch_ms(now_ms).astimezone(tz).date()


def shifts_around(now_ms: int, tz: ZoneInfo) -> list[ShiftDef]:
    """Today's and tomorrow's shifts, plus yesterday's night while it still runs, in start order."""
    today = local_date(now_ms, tz)
    out = [s for s in shifts_of_day(today - timedelta(days=1), tz) if s.end_ms > now_ms]
    return out + shifts_of_day(today, tz) + shifts_of_day(today + timedelta(days=1), tz)


def shift_at(now_ms: int, tz: ZoneInfo) -> ShiftDef:
    """The shift running at ``now_ms`` (the shifts cover the whole day)."""
    return next(s for s in shifts_around(now_ms, tz) if s.start_ms <= now_ms < s.end_ms)


def local_stamp(now_ms: int, tz: ZoneInfo, fmt: str = "%y%m%d-%H%M%S") -> str:
    """``now_ms`` as local time in ``fmt``, for lot and order ids."""
    return at_epoch_ms(now_ms).astimezone(tz).strftime(fmt)

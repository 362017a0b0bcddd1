"""The one wall clock."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.exports import assert_all_is_honest
from uns.clock import (
    EPOCH,
    HOUR_US,
    at_epoch_ms,
    at_epoch_us,
    epoch_ms,
    epoch_us,
    nearest_epoch_ms,
    now_ms,
    now_ns,
    utc_now,
)


def test_exports() -> None:
    assert_all_is_honest("uns.clock")


def test_now_ns_now_ms_and_utc_now_agree_with_the_system_clock() -> None:
    before_ns = time.time_ns()
    before = before_ns // 1_000_000
    nanos = now_ns()
    stamp = now_ms()
    instant = utc_now()
    after = time.time_ns() // 1_000_000
    assert isinstance(stamp, int)
    assert isinstance(nanos, int)
    assert before_ns <= nanos <= time.time_ns()
    assert before <= nanos // 1_000_000 <= stamp <= after
    assert instant.tzinfo is UTC
    assert before - 1 <= instant.timestamp() * 1000 <= after + 1


@pytest.mark.parametrize(
    ("moment", "micros", "millis"),
    [
        (datetime(1970, 1, 1, tzinfo=UTC), 0, 0),
        (datetime(2026, 11, 24, 8, 0, 0, 123456, tzinfo=UTC), 1_795_507_200_123_456, 1_795_507_200_123),
        (datetime(2026, 11, 24, 8, 0, 0, 123999, tzinfo=UTC), 1_795_507_200_123_999, 1_795_507_200_123),  # down
        (datetime(2026, 11, 24, 9, 0, 0, 123000, tzinfo=timezone(timedelta(hours=1))), 1_795_507_200_123_000,
         1_795_507_200_123),
        (datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), -1, -1),
        (datetime(2200, 1, 1, tzinfo=UTC) - timedelta(microseconds=1), 7_258_118_399_999_999, 7_258_118_399_999),
    ],
)  # fmt: skip
def test_epoch_microseconds_both_ways_and_milliseconds_rounded_down_exactly(
    moment: datetime, micros: int, millis: int
) -> None:
    assert (epoch_us(moment), epoch_ms(moment)) == (micros, millis)
    back = at_epoch_us(micros)
    assert (back, back.tzinfo) == (moment, UTC)
    assert at_epoch_us(HOUR_US) - EPOCH == timedelta(hours=1)
    whole = at_epoch_ms(millis)  # milliseconds back: the moment rounded down to its millisecond
    assert (whole, whole.tzinfo) == (EPOCH + timedelta(milliseconds=millis), UTC)
    assert epoch_ms(whole) == millis
    assert timedelta(0) <= moment - whole < timedelta(milliseconds=1)


@pytest.mark.parametrize(
    ("moment", "millis"),
    [
        (datetime(2026, 11, 24, 8, 0, 0, 123499, tzinfo=UTC), 1_795_507_200_123),
        (datetime(2026, 11, 24, 8, 0, 0, 123500, tzinfo=UTC), 1_795_507_200_124),  # half a millisecond: up
        (datetime(2026, 11, 24, 8, 0, 0, 999999, tzinfo=UTC), 1_795_507_201_000),
        (datetime(2026, 11, 24, 9, 0, 0, 123600, tzinfo=timezone(timedelta(hours=1))), 1_795_507_200_124),
        (datetime(1969, 12, 31, 23, 59, 59, 999400, tzinfo=UTC), -1),
        (datetime(1969, 12, 31, 23, 59, 59, 999500, tzinfo=UTC), 0),
    ],
)  # fmt: skip
def test_nearest_epoch_ms_rounds_to_the_nearest_millisecond_exactly(moment: datetime, millis: int) -> None:
    assert nearest_epoch_ms(moment) == millis


def test_nearest_epoch_ms_is_what_rounding_the_float_timestamp_gave_off_the_half() -> None:
    # the sources rounded moment.timestamp() * 1000; the same ms wherever that float was not on a half
    rng = random.Random(7)
    for _ in range(20_000):
        micros = rng.randrange(-(10**15), 5 * 10**15)
        if micros % 1000 == 500:
            continue
        moment = at_epoch_us(micros)
        assert nearest_epoch_ms(moment) == round(moment.timestamp() * 1000), micros

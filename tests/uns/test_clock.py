"""The one wall clock."""

from __future__ import annotations

import time
from datetime import UTC

from tests.exports import assert_all_is_honest
from uns.clock import now_ms, utc_now


def test_exports() -> None:
    assert_all_is_honest("uns.clock")


def test_now_ms_and_utc_now_agree_with_the_system_clock() -> None:
    before = time.time_ns() // 1_000_000
    stamp = now_ms()
    instant = utc_now()
    after = time.time_ns() // 1_000_000
    assert isinstance(stamp, int)
    assert before <= stamp <= after
    assert instant.tzinfo is UTC
    assert before - 1 <= instant.timestamp() * 1000 <= after + 1

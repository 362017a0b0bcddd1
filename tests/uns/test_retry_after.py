"""The one ``Retry-After`` reader: delay-seconds or an HTTP date, capped, None when unreadable."""

from __future__ import annotations

import email.utils

import pytest

from tests.exports import assert_all_is_honest
from uns.clock import now_ns
from uns.retry_after import retry_after_s

NOW = 1_764_000_000.0


def test_exports() -> None:
    assert_all_is_honest("uns.retry_after")


@pytest.mark.parametrize(
    ("value", "cap", "expected"),
    [
        ("120", 60.0, 60.0),  # a target may not hold the client longer than the cap
        ("30", 60.0, 30.0),
        (email.utils.formatdate(NOW + 300, usegmt=True), 60.0, 60.0),
        ("1.5", 60.0, None),  # not delay-seconds
        ("", 60.0, None),
    ],
)
def test_capped(value: str, cap: float, expected: float | None) -> None:
    assert retry_after_s(value, now_s=NOW, cap_s=cap) == expected


def test_a_date_counts_from_the_hubs_clock_unless_told() -> None:
    """Without ``now_s`` an HTTP date counts from ``uns.clock``: every caller reads the clock one way."""
    wait = retry_after_s(email.utils.formatdate(now_ns() / 1e9 + 300, usegmt=True))
    assert wait is not None
    assert 295.0 <= wait <= 300.0  # the date has whole seconds: up to one lost, and a slow box

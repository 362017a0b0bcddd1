"""The one rate-limited warning: once per key and interval, with the held-back count on the next line."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from tests.exports import assert_all_is_honest
from uns.logs import RateLimitedLog, configure_logging


def test_exports() -> None:
    assert_all_is_honest("uns.logs")


def test_one_warning_per_key_and_interval_with_the_count_held_back(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    warn = RateLimitedLog(logging.getLogger("test.ratelimit"), interval_s=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="test.ratelimit"):
        assert warn.warning(("bad", "a/b"), "bad payload on %s", "a/b")
        for _ in range(5):
            assert not warn.warning(("bad", "a/b"), "bad payload on %s", "a/b")
        assert warn.warning(("bad", "c/d"), "bad payload on %s", "c/d")  # another key is not held back
        now[0] += 10.0
        assert warn.warning(("bad", "a/b"), "bad payload on %s", "a/b")
    assert [r.getMessage() for r in caplog.records] == [
        "bad payload on a/b",
        "bad payload on c/d",
        "bad payload on a/b (5 more like it since the last one)",
    ]


def test_a_flood_of_distinct_keys_is_bounded() -> None:
    # a logger of its own that drops the 10,000 warnings: the bound is in the limiter, which runs before the
    # logger; handing each record to pytest's log capture only cost seconds
    quiet = logging.Logger("test.ratelimit.flood", level=logging.ERROR)
    warn = RateLimitedLog(quiet, max_keys=100, clock=lambda: 0.0)
    for key in range(10_000):
        warn.warning(key, "x")
    assert len(warn._last) <= 100


def test_configured_logging_writes_to_the_stderr_of_the_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    # a command run in-process by an earlier test (hub.cli.main) configured logging on that test's captured
    # stderr, closed since: its records printed "--- Logging error ---" and a traceback into the next test's
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    earlier, now = io.StringIO(), io.StringIO()
    try:
        monkeypatch.setattr(sys, "stderr", earlier)
        configure_logging("INFO")
        earlier.close()
        monkeypatch.setattr(sys, "stderr", now)
        logging.getLogger("test.stderr").warning("written after the swap")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert now.getvalue().endswith(" WARNING test.stderr: written after the swap\n")

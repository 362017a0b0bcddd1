"""uns.historian.stats.StoreStats: the one counters type of the historian and of every sink."""

from __future__ import annotations

from tests.exports import assert_all_is_honest
from uns.historian.stats import StoreStats
from uns.historian.store import CommitReport
from uns.sinks.service import SinkStats
from uns.sinks.writer import WriteReport


def test_exports() -> None:
    assert_all_is_honest("uns.historian.stats")


def test_commits_of_either_report_type_are_counted_alike() -> None:
    stats = StoreStats()
    stats.received = 9
    stats.add(CommitReport(inserted=5, duplicates=1, events=2, duplicate_events=0, rejected=0, new_series=3,
                           oldest_late_ms=None, seconds=0.0125))  # fmt: skip
    stats.add(WriteReport(inserted=3, duplicates=2, events=0, duplicate_events=1, seconds=0.004))
    stats.reject("value")
    stats.reject("value")
    stats.reject("timestamp_ms")
    stats.transient_skipped = 4
    assert stats.as_dict() == {
        "received": 9,
        "stored": 8,
        "duplicates": 3,
        "events": 2,
        "duplicate_events": 1,
        "rejected": 3,
        "rejected_by_field": {"value": 2, "timestamp_ms": 1},
        "transient_skipped": 4,
        "commits": 2,
        "last_commit_ms": 4.0,
        "max_commit_ms": 12.5,
    }


def test_a_sink_reports_the_same_counters_and_its_link() -> None:
    stats = SinkStats()
    stats.add(WriteReport(inserted=4, duplicates=0, seconds=0.002))
    stats.write_failures = 2
    stats.last_error = "HTTP 503"
    shown = stats.as_dict()
    assert set(StoreStats().as_dict()) < set(shown)
    assert shown["stored"] == 4
    assert (shown["database_online"], shown["write_failures"], shown["last_error"]) == (False, 2, "HTTP 503")

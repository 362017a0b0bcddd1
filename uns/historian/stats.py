"""Counters of one run of a store of the UNS: the historian and every sink (health topics and ``/api/health``)."""

from __future__ import annotations

from typing import Protocol

__all__ = ["CommitCounts", "StoreStats"]


class CommitCounts(Protocol):
    """What one commit did, as the historian's ``CommitReport`` and a sink's ``WriteReport`` both say it."""

    @property
    def inserted(self) -> int:
        """Samples stored."""
        ...

    @property
    def duplicates(self) -> int:
        """Samples already stored (a re-delivery), ignored by the sample identity."""
        ...

    @property
    def events(self) -> int:
        """MES events stored."""
        ...

    @property
    def duplicate_events(self) -> int:
        """MES events already stored."""
        ...

    @property
    def seconds(self) -> float:
        """How long the commit took."""
        ...


class StoreStats:
    """What a store received, committed and refused in this run.

    ``received`` counts messages read; ``rejected`` rows dead-lettered (and per field the refusal named);
    ``transient_skipped`` samples flagged transient (not to be historized) left out on purpose; the rest
    is added per commit.
    """

    def __init__(self) -> None:
        self.received = 0
        self.stored = 0
        self.duplicates = 0
        self.events = 0
        self.duplicate_events = 0
        self.rejected = 0
        self.rejected_by_field: dict[str, int] = {}
        self.transient_skipped = 0
        self.commits = 0
        self.last_commit_s = 0.0
        self.max_commit_s = 0.0

    def reject(self, field: str) -> None:
        """Count one dead-lettered row, refused for ``field``."""
        self.rejected += 1
        self.rejected_by_field[field] = self.rejected_by_field.get(field, 0) + 1

    def add(self, report: CommitCounts) -> None:
        """Count one commit."""
        self.stored += report.inserted
        self.duplicates += report.duplicates
        self.events += report.events
        self.duplicate_events += report.duplicate_events
        self.commits += 1
        self.last_commit_s = report.seconds
        self.max_commit_s = max(self.max_commit_s, report.seconds)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready counters."""
        return {
            "received": self.received,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "events": self.events,
            "duplicate_events": self.duplicate_events,
            "rejected": self.rejected,
            "rejected_by_field": dict(self.rejected_by_field),
            "transient_skipped": self.transient_skipped,
            "commits": self.commits,
            "last_commit_ms": round(self.last_commit_s * 1000, 1),
            "max_commit_ms": round(self.max_commit_s * 1000, 1),
        }

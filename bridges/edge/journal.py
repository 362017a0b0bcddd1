"""The replay window on disk: what the edge node sent in the last few seconds, to send again after a crash.

The hub's historian commits in batches, so a sample the edge node already published can still be
lost if the hub is killed. The journal keeps every batch the node published during the last window;
when the connection is lost, or when the node starts after it was killed, ``take`` hands those
records over and the node puts them into the store-and-forward buffer ahead of everything else.
They go out again as ``is_historical`` with their own timestamps; consumers dedupe on
(metric, timestamp).

Layout of ``<buffer dir>/journal/``::

    jrn-000000000001.sfb   records as the buffer writes them (``encode_record``), oldest first, each
                           with when it was sent in its payload's timestamp

A segment is rotated once it spans the window (at least 250 ms) or holds an eighth of the cap, and
deleted once its last write is older than the window: one file created and one deleted per window
unless a window's records fill an eighth of the cap (rotating every quarter window made one per
batch at a batch every few seconds). Each record carries when it was sent, so ``take`` returns
exactly the records sent within the window: those of the segments written within it, less the ones
sent before it (a record without the time, written before records had it, goes with its segment,
which then spanned a quarter window at most). Plain writes, no fsync: a kill -9 leaves the page
cache, and with it the journal, intact. A torn record found on start cuts its segment there.
Writing is best effort: a failed write is counted and logged, never fatal, since the data itself
went out.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from io import FileIO
from pathlib import Path

from bridges.edge.buffer import BufferedBatch, encode_record, record_at, scan_records

__all__ = ["Journal", "Window"]

log = logging.getLogger(__name__)

_PREFIX = "jrn-"
_SUFFIX = ".sfb"
_ROTATE_MIN_MS = 250


@dataclasses.dataclass(frozen=True, slots=True)
class Window:
    """The records of the replay window, ready for ``DiskBuffer.prepend``."""

    records: bytes
    samples: int


@dataclasses.dataclass(slots=True)
class _Segment:
    index: int
    path: Path
    opened_ms: int
    last_ms: int
    size: int = 0
    samples: int = 0


class Journal:
    """Rotating segment files of what was sent recently.

    ``with Journal(...) as journal:`` scans the directory; ``record`` appends a sent batch,
    ``take`` empties the journal and returns what is within the window, ``clear`` empties it.
    A window of 0 disables it: nothing is created, written or returned.

    Args:
        directory: where the segments live (created on enter if the journal is enabled).
        window_ms: how long a sent batch is kept; 0 = disabled.
        max_bytes: cap on the segments' total size; beyond it whole oldest segments are deleted.
        name: the edge node, for logs.
    """

    def __init__(self, *, directory: Path, window_ms: int, max_bytes: int, name: str) -> None:
        self.directory = directory
        self.window_ms = window_ms
        self.max_bytes = max_bytes
        self.name = name
        self._rotate_ms = max(window_ms, _ROTATE_MIN_MS)
        self._segment_target = max(max_bytes // 8, 512)
        self._segments: list[_Segment] = []
        self._writer: FileIO | None = None
        self._next_index = 1
        self.recorded = 0
        """Samples written since open."""
        self.dropped = 0
        """Samples deleted over the cap before their window ended (the window was narrower for them)."""
        self.failures = 0
        """Writes or reads that failed (logged, not fatal)."""

    @property
    def enabled(self) -> bool:
        """False when the window is 0."""
        return self.window_ms > 0

    @property
    def size_bytes(self) -> int:
        """Bytes of segment files on disk."""
        return sum(s.size for s in self._segments)

    @property
    def samples(self) -> int:
        """Samples held, within the window or not yet pruned."""
        return sum(s.samples for s in self._segments)

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> Journal:
        if not self.enabled:
            return self
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            for path in sorted(self.directory.glob(f"{_PREFIX}*{_SUFFIX}")):
                self._scan(path)
        except OSError as exc:
            self._failed("journal directory unusable", self.directory, exc)
        if self._segments:
            self._next_index = self._segments[-1].index + 1
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the segment being written (no fsync: see the module docstring)."""
        if self._writer is not None:
            with contextlib.suppress(OSError):
                self._writer.close()
            self._writer = None

    # -- writing (the hot path) -------------------------------------------------------------------

    def record(self, batch: BufferedBatch, *, now_ms: int) -> None:
        """Remember a batch that was just published."""
        if not self.enabled:
            return
        record = encode_record(batch, sent_ms=now_ms)
        last, writer = self._segments[-1] if self._segments else None, self._writer
        if (
            last is None
            or writer is None
            or now_ms - last.opened_ms >= self._rotate_ms
            or last.size + len(record) > self._segment_target
        ):
            last, writer = self._roll(now_ms), self._writer
            if last is None or writer is None:
                return
        try:
            written = writer.write(record)  # unbuffered: one write(2), nothing left to flush
            if written != len(record):
                raise OSError(f"wrote {written} of {len(record)} bytes")
        except OSError as exc:
            self._failed("journal write failed", last.path, exc)
            self.close()  # the next record starts a new segment after the torn one
            return
        last.size += len(record)
        last.samples += len(batch.metrics)
        last.last_ms = now_ms
        self.recorded += len(batch.metrics)

    def _roll(self, now_ms: int) -> _Segment | None:
        self.close()
        self._prune(now_ms)
        segment = _Segment(
            self._next_index, self.directory / f"{_PREFIX}{self._next_index:012d}{_SUFFIX}", now_ms, now_ms
        )
        self._next_index += 1
        try:
            self._writer = segment.path.open("ab", buffering=0)
        except OSError as exc:
            self._failed("journal segment not created", segment.path, exc)
            return None
        self._segments.append(segment)
        return segment

    def _prune(self, now_ms: int) -> None:
        """Delete segments older than the window, then the oldest ones while over the cap."""
        cutoff = now_ms - self.window_ms
        while self._segments and self._segments[0].last_ms < cutoff:
            self._delete(self._segments.pop(0))
        over = 0
        while self._segments and self.size_bytes > self.max_bytes:
            oldest = self._segments.pop(0)
            over += oldest.samples
            self._delete(oldest)
        if over:
            self.dropped += over
            if _worth_logging(self.dropped, over):
                log.warning(
                    "edge %s: replay journal over %d bytes: forgot %d sent samples early (%d so far); "
                    "raise buffer_max_bytes or lower replay_window_s",
                    self.name,
                    self.max_bytes,
                    over,
                    self.dropped,
                )

    # -- reading --------------------------------------------------------------------------------

    def take(self, *, now_ms: int) -> Window:
        """Every record sent within the window before ``now_ms``; the journal is emptied."""
        self.close()
        cutoff = now_ms - self.window_ms
        parts: list[bytes] = []
        samples = 0
        for segment in self._segments:
            if segment.last_ms < cutoff or not segment.size:
                continue
            try:
                with segment.path.open("rb") as file:
                    data = file.read(segment.size)
            except OSError as exc:
                self._failed("journal segment unreadable", segment.path, exc)
                continue
            if len(data) == segment.size:
                start, before = _first_sent_since(data, cutoff)
                parts.append(data[start:])
                samples += segment.samples - before
        self.clear()
        return Window(b"".join(parts), samples)

    def clear(self) -> None:
        """Delete every segment: what was sent is safe (a deliberate stop) or moved to the buffer."""
        self.close()
        for segment in self._segments:
            self._delete(segment)
        self._segments.clear()

    # -- disk bookkeeping ---------------------------------------------------------------------

    def _scan(self, path: Path) -> None:
        try:
            index = int(path.stem.removeprefix(_PREFIX))
        except ValueError:
            log.warning("edge %s: ignoring %s: not a journal segment name", self.name, path)
            return
        data = path.read_bytes()
        last_ms = path.stat().st_mtime_ns // 1_000_000
        size, samples, problem = scan_records(data, str(path))
        if problem is not None:
            log.warning(
                "edge %s: %s: record at byte %d is %s; cutting the journal segment there",
                self.name,
                path,
                size,
                problem,
            )
            with path.open("r+b") as file:
                file.truncate(size)
        self._segments.append(_Segment(index, path, last_ms, last_ms, size, samples))

    def _delete(self, segment: _Segment) -> None:
        try:
            segment.path.unlink(missing_ok=True)
        except OSError as exc:
            self._failed("journal segment not deleted", segment.path, exc)

    def _failed(self, what: str, path: Path, exc: OSError) -> None:
        self.failures += 1
        if _worth_logging(self.failures, 1):
            log.warning("edge %s: %s: %s: %s (%d failures so far)", self.name, what, path, exc, self.failures)


def _first_sent_since(data: bytes, cutoff_ms: int) -> tuple[int, int]:
    """Where a segment's records sent at ``cutoff_ms`` or later start, and the samples before them.

    Records are appended as they are sent, so the first one within the window starts the rest.
    """
    offset = samples = 0
    while offset < len(data):
        end, count, sent_ms = record_at(data, offset)
        if sent_ms is None or sent_ms >= cutoff_ms:
            break
        offset, samples = end, samples + count
    return offset, samples


def _worth_logging(total: int, step: int) -> bool:
    """True when ``total`` just passed 1, 10, 100, ...: repeated trouble is logged, not flooded."""
    before = total - step
    return len(str(total)) > len(str(before)) or before == 0

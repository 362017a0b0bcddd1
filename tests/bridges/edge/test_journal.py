"""The replay journal and DiskBuffer.prepend, on a real directory, without a broker."""

from __future__ import annotations

import os
from io import FileIO
from pathlib import Path

import pytest

from bridges.edge.buffer import BufferedBatch, DiskBuffer, encode_record, record_at
from bridges.edge.journal import Journal
from uns.clock import now_ms
from uns.sparkplug import DataType, Metric

_T0 = 1_700_000_000_000


def _batch(i: int) -> BufferedBatch:
    return BufferedBatch("press", (Metric(name="Count", timestamp=_T0 + i, datatype=DataType.Int64, value=i),))


def _values(buffer: DiskBuffer) -> list[int]:
    chunk = buffer.read(10_000)
    return [int(m.value) for b in chunk.batches for m in b.metrics]  # type: ignore[arg-type]


def _take_into_buffer(journal: Journal, directory: Path, now_ms: int) -> list[int]:
    window = journal.take(now_ms=now_ms)
    with DiskBuffer(directory=directory, max_bytes=1 << 20, name="n1") as buffer:
        buffer.prepend(window.records, window.samples)
        assert buffer.depth == window.samples
        return _values(buffer)


@pytest.mark.parametrize(
    ("now_s", "expected"),
    [
        (9, list(range(10))),  # all within the 10 s window
        (10, list(range(10))),  # the first record (s 0) is exactly 10 s old: kept
        (12, list(range(2, 10))),  # its segment is kept (last write s 9), the records sent before s 2 are not
        (13, list(range(3, 10))),
        (16, list(range(6, 10))),
        (19, [9]),
        (25, []),
    ],
)
def test_take_returns_segments_written_within_the_window(tmp_path: Path, now_s: int, expected: list[int]) -> None:
    # window 10 s -> one segment holds seconds 0-9; each record carries when it was sent
    with Journal(directory=tmp_path / "journal", window_ms=10_000, max_bytes=1 << 20, name="n1") as journal:
        for i in range(10):
            journal.record(_batch(i), now_ms=_T0 + i * 1000)
        assert journal.recorded == 10
        assert _take_into_buffer(journal, tmp_path / "buf", _T0 + now_s * 1000) == expected
        assert list((tmp_path / "journal").iterdir()) == []  # take empties it
        assert journal.take(now_ms=_T0 + now_s * 1000).samples == 0


def test_torn_tail_is_cut_on_start(tmp_path: Path) -> None:
    with Journal(directory=tmp_path, window_ms=10_000, max_bytes=1 << 20, name="n1") as journal:
        for i in range(5):
            journal.record(_batch(i), now_ms=_T0)
    (segment,) = tmp_path.glob("jrn-*.sfb")
    good = segment.stat().st_size
    with segment.open("ab") as file:
        file.write(b"\x00\x00\x01\x00torn")  # a record header cut short by kill -9
    with Journal(directory=tmp_path, window_ms=10_000, max_bytes=1 << 20, name="n1") as journal:
        assert segment.stat().st_size == good
        assert journal.samples == 5
        assert _take_into_buffer(journal, tmp_path / "buf", _T0) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("gap_s", "files"),
    [
        (1, 12),  # the idle demo's batch a second: a segment per 10 s window (a quarter-window rotation: 40)
        (4, 10),  # a quiet node: segments opened at s 0, 12, 24, ..., 108 (a quarter-window rotation: one per batch)
        (30, 4),  # sparser than the window: each batch opens a segment, and finds the one before it expired
    ],
)
def test_segment_files_follow_the_window_not_the_rate(tmp_path: Path, gap_s: int, files: int) -> None:
    directory = tmp_path / "journal"
    times = [_T0 + s * 1000 for s in range(0, 120, gap_s)]
    with Journal(directory=directory, window_ms=10_000, max_bytes=1 << 20, name="n1") as journal:
        for i, now in enumerate(times):
            journal.record(_batch(i), now_ms=now)
            assert len(list(directory.iterdir())) <= 2  # the one written and at most one within the window
        created = max(int(path.stem.removeprefix("jrn-")) for path in directory.iterdir())
        assert created == files
        sent_in_window = [i for i, sent in enumerate(times) if sent >= times[-1] - 10_000]
        assert _take_into_buffer(journal, tmp_path / "buf", times[-1]) == sent_in_window


def test_records_without_a_sent_time_go_with_their_segment(tmp_path: Path) -> None:
    """A journal left by a version whose records carried no sent time: the segment's last write decides."""
    tmp_path.joinpath("jrn-000000000007.sfb").write_bytes(b"".join(encode_record(_batch(i)) for i in range(3)))
    with Journal(directory=tmp_path, window_ms=10_000, max_bytes=1 << 20, name="n1") as journal:
        assert _take_into_buffer(journal, tmp_path / "buf", now_ms()) == [0, 1, 2]


class _ShortWriter:
    """A segment's writer that gets half of the next record to the file and says so (a disk filling up)."""

    def __init__(self, real: FileIO) -> None:
        self.real = real

    def write(self, data: bytes) -> int:
        return self.real.write(data[: len(data) // 2])

    def close(self) -> None:
        self.real.close()


def test_a_short_write_is_a_failed_one_and_cuts_its_segment(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    with Journal(directory=directory, window_ms=10_000, max_bytes=1 << 20, name="n1") as journal:
        journal.record(_batch(0), now_ms=_T0)
        assert journal._writer is not None
        journal._writer = _ShortWriter(journal._writer)  # type: ignore[assignment]
        journal.record(_batch(1), now_ms=_T0 + 1)  # half of it on disk: not counted, the segment closed
        journal.record(_batch(2), now_ms=_T0 + 2)  # in a new segment after the torn one
        assert (journal.failures, journal.recorded, journal.samples) == (1, 2, 2)
        assert len(list(directory.iterdir())) == 2
        assert _take_into_buffer(journal, tmp_path / "buf", _T0 + 2) == [0, 2]


def test_record_at_reads_the_sent_time_without_decoding(tmp_path: Path) -> None:
    stamped, plain = encode_record(_batch(1), sent_ms=_T0 + 5), encode_record(_batch(2))
    data = stamped + plain
    assert record_at(data, 0) == (len(stamped), 1, _T0 + 5)
    assert record_at(data, len(stamped)) == (len(data), 1, None)
    with DiskBuffer(directory=tmp_path, max_bytes=1 << 20, name="n1") as buffer:  # the buffer reads both alike
        buffer.prepend(data, 2)
        assert _values(buffer) == [1, 2]


def test_cap_forgets_oldest_segments(tmp_path: Path) -> None:
    with Journal(directory=tmp_path, window_ms=60_000, max_bytes=2048, name="n1") as journal:
        for i in range(300):
            journal.record(_batch(i), now_ms=_T0 + i)
        assert journal.dropped > 0
        assert journal.size_bytes <= 2048 + 512
        got = _take_into_buffer(journal, tmp_path / "buf", _T0 + 300)
        assert got == list(range(300 - len(got), 300))  # the newest, in order
        assert journal.dropped + len(got) == 300


def test_disabled_journal_creates_nothing(tmp_path: Path) -> None:
    with Journal(directory=tmp_path / "journal", window_ms=0, max_bytes=1 << 20, name="n1") as journal:
        journal.record(_batch(1), now_ms=_T0)
        assert journal.take(now_ms=_T0).samples == 0
    assert not (tmp_path / "journal").exists()


def test_prepend_goes_ahead_of_a_partly_replayed_head(tmp_path: Path) -> None:
    with DiskBuffer(directory=tmp_path, max_bytes=1 << 20, name="n1") as buffer:
        for i in range(10, 20):
            buffer.append(_batch(i))
        buffer.commit(buffer.read(3))  # 10..12 were replayed
        with Journal(directory=tmp_path / "journal", window_ms=10_000, max_bytes=1 << 20, name="n1") as journal:
            for i in range(13):
                journal.record(_batch(i), now_ms=_T0)
            window = journal.take(now_ms=_T0)
        buffer.prepend(window.records, window.samples)
        buffer.append(_batch(20))
        assert buffer.depth == 13 + 7 + 1
        assert _values(buffer) == list(range(21))
    with DiskBuffer(directory=tmp_path, max_bytes=1 << 20, name="n1") as reopened:  # head and segments agree
        assert _values(reopened) == list(range(21))
        assert reopened.corrupt == 0


def test_prepend_into_empty_buffer_then_append(tmp_path: Path) -> None:
    with Journal(directory=tmp_path / "journal", window_ms=10_000, max_bytes=1 << 20, name="n1") as journal:
        for i in range(3):
            journal.record(_batch(i), now_ms=_T0)
        window = journal.take(now_ms=_T0)
    with DiskBuffer(directory=tmp_path, max_bytes=1 << 20, name="n1") as buffer:
        buffer.prepend(window.records, window.samples)
        buffer.append(_batch(3))
        assert _values(buffer) == [0, 1, 2, 3]
        buffer.commit(buffer.read(10))
        assert buffer.depth == 0


def test_stale_prepend_temp_file_is_removed(tmp_path: Path) -> None:
    with DiskBuffer(directory=tmp_path, max_bytes=1 << 20, name="n1") as buffer:
        buffer.append(_batch(1))
    (segment,) = tmp_path.glob("seg-*.sfb")
    stale = segment.with_name(segment.name + ".tmp")
    stale.write_bytes(b"half a rewrite")
    os.utime(stale)
    with DiskBuffer(directory=tmp_path, max_bytes=1 << 20, name="n1") as buffer:
        assert _values(buffer) == [1]
    assert not stale.exists()

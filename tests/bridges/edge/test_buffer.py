"""The disk buffer: FIFO order, the cap, torn records, replay progress and bdSeq across reopen."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridges.edge.buffer import BufferedBatch, DiskBuffer, encode_record, load_bd_seq, save_bd_seq
from uns.sparkplug import DataType, Metric, PropertySet, PropertyValue


def batch(i: int, device: str = "d1") -> BufferedBatch:
    quality = PropertySet({"Quality": PropertyValue(type=DataType.Int32, value=64)})
    return BufferedBatch(
        device,
        (
            Metric(name="Count", timestamp=i, datatype=DataType.Int64, value=i),
            Metric(name="Temp", timestamp=i, datatype=DataType.Double, value=float("nan") if i == 3 else i / 2,
                   properties=quality),
            Metric(name="Mode", timestamp=i, datatype=DataType.String, is_null=True),
        ),
    )  # fmt: skip


def drain(buf: DiskBuffer, step: int = 3) -> list[BufferedBatch]:
    out: list[BufferedBatch] = []
    while chunk := buf.read(step):
        if not chunk.batches:
            break
        out += chunk.batches
        buf.commit(chunk)
    return out


def test_fifo_round_trip_keeps_values_quality_and_nulls(tmp_path: Path) -> None:
    with DiskBuffer(directory=tmp_path, max_bytes=1 << 20, name="n") as buf:
        for i in range(10):
            buf.append(batch(i, "d1" if i % 2 else "d2"))
        assert buf.depth == 30
        got = drain(buf)
        assert buf.depth == 0
        assert buf.size_bytes == 0
    assert [b.device for b in got] == ["d1" if i % 2 else "d2" for i in range(10)]
    assert [b.metrics[0].value for b in got] == list(range(10))
    assert repr(got[3].metrics[1].value) == "nan"
    assert got[1].metrics[1].properties == PropertySet({"Quality": PropertyValue(type=DataType.Int32, value=64)})
    assert got[1].metrics[2].is_null


def test_reopen_continues_where_replay_stopped(tmp_path: Path) -> None:
    with DiskBuffer(directory=tmp_path, max_bytes=1 << 20, name="n") as buf:
        for i in range(10):
            buf.append(batch(i))
        chunk = buf.read(4)
        buf.commit(chunk)
        buf.read(3)  # read but not committed (never published): must come again
    with DiskBuffer(directory=tmp_path, max_bytes=1 << 20, name="n") as buf:
        assert buf.depth == 18
        assert [b.metrics[0].value for b in drain(buf)] == list(range(4, 10))
        buf.append(batch(99))
        assert [b.metrics[0].value for b in drain(buf)] == [99]


def test_one_device_s_batches_sent_ahead_of_their_turn_are_passed_over(tmp_path: Path) -> None:
    # a device that dies during a replay sends its history before its DDEATH: the replay then skips those batches,
    # also after a window is put back ahead of them (rewriting the head segment) and across segments
    with DiskBuffer(directory=tmp_path, max_bytes=4096, name="n") as buf:
        for i in range(10):
            buf.append(batch(i, "d1" if i % 2 else "d2"))
        assert len(list(tmp_path.glob("seg-*"))) > 1
        buf.commit(buf.read(2))
        first = buf.of_device("d2", max_batches=3)
        assert [b.metrics[0].value for b in first.batches] == [2, 4, 6]
        assert first.next is not None
        assert buf.depth == 24  # not marked yet: nothing changes
        buf.skip(first)
        assert buf.depth == 15
        rest = buf.of_device("d2", max_batches=3, start=first.next)
        assert ([b.metrics[0].value for b in rest.batches], rest.next) == ([8], None)
        buf.skip(rest)
        assert buf.depth == 12
        assert buf.of_device("d2", max_batches=3).batches == []
        buf.prepend(encode_record(batch(100, "d2")), 3)
        assert buf.depth == 15
        got: list[BufferedBatch] = []
        while (chunk := buf.read(2)).batches:
            got += chunk.batches
            buf.commit(chunk)
        buf.commit(chunk)  # past the last skipped records
        assert [(b.device, b.metrics[0].value) for b in got] == [("d2", 100)] + [("d1", i) for i in (3, 5, 7, 9)]
        assert buf.depth == 0
        assert buf.size_bytes == 0


def test_cap_drops_whole_oldest_segments_and_counts_them(tmp_path: Path) -> None:
    with DiskBuffer(directory=tmp_path, max_bytes=2048, name="n") as buf:
        dropped = sum(buf.append(batch(i)) for i in range(200))
        assert dropped == buf.dropped > 0
        assert buf.depth == 600 - dropped
        assert buf.size_bytes <= 2048
        values = [b.metrics[0].value for b in drain(buf, 50)]
    assert values == list(range(200 - len(values), 200))
    assert len(values) * 3 == 600 - dropped


@pytest.mark.parametrize("cut", [5, -3, None], ids=["torn-header", "torn-body", "crc-mismatch"])
def test_torn_or_corrupt_tail_is_cut_and_counted(tmp_path: Path, cut: int | None) -> None:
    with DiskBuffer(directory=tmp_path, max_bytes=1 << 20, name="n") as buf:
        for i in range(3):
            buf.append(batch(i))
    (segment,) = tmp_path.glob("seg-*.sfb")
    data = segment.read_bytes()
    whole = len(data)
    with DiskBuffer(directory=tmp_path, max_bytes=1 << 20, name="n") as buf:
        record = buf.size_bytes // 3
    # a bit flipped in the last record's body, or the file cut in its header or its body
    flipped = data[:-1] + bytes([data[-1] ^ 0xFF])
    data = flipped if cut is None else data[: 2 * record + cut] if cut > 0 else data[:cut]
    segment.write_bytes(data)
    with DiskBuffer(directory=tmp_path, max_bytes=1 << 20, name="n") as buf:
        assert buf.corrupt == 1
        assert buf.size_bytes == 2 * record < whole
        assert [b.metrics[0].value for b in drain(buf)] == [0, 1]


def test_bd_seq_file(tmp_path: Path) -> None:
    assert load_bd_seq(tmp_path) is None
    save_bd_seq(tmp_path, 255)
    assert load_bd_seq(tmp_path) == 255
    (tmp_path / "bdseq").write_text("garbage")
    assert load_bd_seq(tmp_path) is None

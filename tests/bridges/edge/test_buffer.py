"""The disk buffer: FIFO order, the cap, torn records, replay progress and bdSeq across reopen."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridges.edge.buffer import BufferedBatch, DiskBuffer, load_bd_seq, save_bd_seq
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

import asyncio
from pathlib import Path

import pytest
from amqtt.adapters import StreamReaderAdapter

from tests.fixtures.broker import start_broker
from tests.fixtures.waiting import until
from uns.broker.framing import GuardedReader, MalformedLength, Oversize

LIMIT = 100


def _publish(topic: bytes, payload_size: int, qos: int = 0) -> bytes:
    body_length = 2 + len(topic) + (2 if qos else 0) + payload_size
    length = bytearray()
    value = body_length
    while True:
        byte, value = value % 128, value // 128
        length.append(byte | (0x80 if value else 0))
        if not value:
            break
    head = bytes([0x30 | (qos << 1)]) + bytes(length) + len(topic).to_bytes(2, "big") + topic
    return head + (b"\x00\x01" if qos else b"")


def _reader(data: bytes, *, eof: bool = False, timeout_s: float | None = None) -> tuple[GuardedReader, list[Oversize]]:
    stream = asyncio.StreamReader()
    stream.feed_data(data)
    if eof:
        stream.feed_eof()
    seen: list[Oversize] = []
    guarded = GuardedReader(
        StreamReaderAdapter(stream),
        max_payload_bytes=LIMIT,
        on_oversize=lambda _reader, oversize: seen.append(oversize),
        connect_timeout_s=timeout_s,
    )
    return guarded, seen


async def _read_header(reader: GuardedReader) -> bytes:
    data = await reader.read(1)
    while True:
        byte = await reader.read(1)
        data += byte
        if not byte or not byte[0] & 0x80:
            return data


@pytest.mark.parametrize(
    ("payload_size", "qos", "rejected"),
    [(LIMIT, 0, False), (LIMIT + 1, 0, True), (LIMIT, 1, False), (LIMIT + 1, 2, True), (10_000_000, 0, True)],
)
async def test_oversize_is_seen_from_the_header(payload_size: int, qos: int, rejected: bool) -> None:
    # only the headers exist: a rejection must not need the payload bytes
    reader, seen = _reader(_publish(b"a/topic", payload_size, qos))
    await _read_header(reader)
    if rejected:
        assert [(o.topic, o.size) for o in seen] == [("a/topic", payload_size)]
        assert await reader.read(2) == b""  # the stream now reads as closed
    else:
        assert seen == []
        assert await reader.read(2) == len(b"a/topic").to_bytes(2, "big")  # peeked bytes are handed on
        assert await reader.read(7) == b"a/topic"


async def test_counts_qos0_and_1_publishes_for_back_pressure() -> None:
    stream = _publish(b"t", 0) + _publish(b"t", 0, qos=1)[:-2] + b"\x00\x01" + _publish(b"t", 0, qos=2)
    reader, _ = _reader(stream)
    for qos in (0, 1, 2):
        await _read_header(reader)
        await reader.read(3 + (2 if qos else 0))
    assert reader.read_count == 2  # QoS 2 is left out
    reader.handled = 2
    assert reader.backlog == 0


async def test_a_silent_client_times_out_before_connect() -> None:
    reader, _ = _reader(b"", timeout_s=0.05)
    with pytest.raises(asyncio.IncompleteReadError):
        await reader.read(1)


async def test_a_connection_that_never_sends_connect_is_closed_at_exit(tmp_path: Path) -> None:
    async with start_broker(tmp_path) as broker:
        reader, writer = await asyncio.open_connection(broker.url.host, broker.url.port)
        core = broker._broker  # white-box: nothing public shows a connection before its CONNECT
        assert core is not None
        await until(lambda: len(core._writers) == 1, what="the broker to accept the connection")
    try:
        assert await asyncio.wait_for(reader.read(), 2) == b""  # the broker closed its end
    finally:
        writer.close()
        await writer.wait_closed()


async def test_read_packet_takes_whole_packets_from_one_buffer() -> None:
    # two PUBLISHes and a PINGREQ arrive in one chunk: each comes out whole, with its first byte
    first = _publish(b"a/b", 3) + b"xyz"
    second = _publish(b"c", 2, qos=1) + b"pq"
    reader, seen = _reader(first + second + b"\xc0\x00", eof=True)
    assert await reader.read_packet() == (0x30, first[2:])
    assert await reader.read_packet() == (0x32, second[2:])
    assert await reader.read_packet() == (0xC0, b"")
    assert await reader.read_packet() is None  # the end of the stream
    assert reader.read_count == 2
    assert seen == []


async def test_read_packet_ends_inside_a_packet_and_on_an_oversize_one() -> None:
    reader, _ = _reader(_publish(b"a/b", 5) + b"xy", eof=True)  # three payload bytes missing
    assert await reader.read_packet() is None
    reader, seen = _reader(_publish(b"a/b", LIMIT + 1), eof=True)
    assert await reader.read_packet() is None
    assert [(o.topic, o.size) for o in seen] == [("a/b", LIMIT + 1)]


async def test_read_packet_refuses_a_remaining_length_over_four_bytes() -> None:
    reader, _ = _reader(b"\x30\xff\xff\xff\xff\x01", eof=True)
    with pytest.raises(MalformedLength, match="over four bytes"):
        await reader.read_packet()


async def _packets(reader: GuardedReader) -> list[tuple[int, bytes] | None]:
    """Every packet as the broker's reader loop takes them: from the buffer when whole, else awaited."""
    out: list[tuple[int, bytes] | None] = []
    while True:
        packet = reader.buffered_packet()
        if packet is None:
            packet = await reader.read_packet()
        out.append(packet)
        if packet is None:
            return out


async def test_buffered_packet_takes_what_read_packet_would() -> None:
    # small and multi-byte-length PUBLISHes, QoS 0-2, a PINGREQ: the same packets, counts and end either way
    stream = (
        b"".join(
            _publish(f"t/{n}".encode(), size, qos) + bytes(size)
            for n, (size, qos) in enumerate([(3, 0), (0, 1), (LIMIT, 0), (90, 2), (1, 0)] * 40)
        )
        + b"\xc0\x00"
    )
    awaited_reader, _ = _reader(stream, eof=True)
    awaited: list[tuple[int, bytes] | None] = []
    while (packet := await awaited_reader.read_packet()) is not None:
        awaited.append(packet)
    reader, seen = _reader(stream, eof=True)
    assert reader.buffered_packet() is None  # nothing buffered before the first read
    taken = await _packets(reader)
    assert taken == [*awaited, None]
    assert len(taken) == 202
    assert reader.read_count == awaited_reader.read_count == 160  # QoS 2 is left out
    assert seen == []


async def test_buffered_packet_leaves_the_waiting_cases_to_read_packet() -> None:
    whole = _publish(b"a", 1) + b"x"
    reader, seen = _reader(whole * 3 + _publish(b"big", LIMIT + 1) + bytes(10), eof=True)
    assert await reader.read_packet() == (0x30, whole[2:])  # fills the buffer with all of it
    reader.high_water, reader.handled = 1, 0
    assert reader.buffered_packet() is None  # one read, none handled: back-pressure is read_packet's gate
    reader.handled = 1
    assert reader.buffered_packet() == (0x30, whole[2:])
    reader.gate.clear()
    assert reader.buffered_packet() is None
    reader.gate.set()
    reader.high_water = 0
    assert reader.buffered_packet() == (0x30, whole[2:])
    assert reader.buffered_packet() is None  # oversize: read_packet reports and closes
    assert await reader.read_packet() is None
    assert [(o.topic, o.size) for o in seen] == [("big", LIMIT + 1)]
    assert reader.buffered_packet() is None


async def test_buffered_packet_waits_for_a_packet_split_across_reads() -> None:
    packet = _publish(b"a/b", 200) + bytes(200)  # a two-byte remaining length
    stream = asyncio.StreamReader()
    reader = GuardedReader(StreamReaderAdapter(stream), max_payload_bytes=1000, on_oversize=lambda *_: None)
    stream.feed_data(packet + packet[:2])  # the second packet's first byte and half its length
    assert await reader.read_packet() == (0x30, packet[3:])
    assert reader.buffered_packet() is None
    stream.feed_data(packet[2:])
    assert await reader.read_packet() == (0x30, packet[3:])
    stream.feed_data(packet[:100])
    assert reader.buffered_packet() is None  # the body is not all there


async def test_count_handled_reopens_the_gate_once_the_backlog_is_down_to_low_water() -> None:
    reader, _ = _reader(b"")
    reader.high_water, reader.low_water, reader.read_count = 10, 3, 10
    reader.gate.clear()  # as read_packet does at high water
    for left in range(9, 3, -1):
        reader.count_handled()
        assert (reader.backlog, reader.gate.is_set()) == (left, False)
    reader.count_handled()
    assert (reader.backlog, reader.gate.is_set()) == (3, True)

import random

import pytest

from uns.errors import BrokerError
from uns.mqtt import codec
from uns.mqtt.codec import (
    ConnAck,
    Packet,
    PacketReader,
    PingResp,
    ProtocolError,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    SubAck,
    UnsubAck,
)

ROUND_TRIPS: list[Packet] = [
    Publish("a/b", b"payload"),
    Publish("a/b", b"", retain=True),
    Publish("ünï/cödé/温度", b"\x00\xff", qos=1, packet_id=1),
    Publish("x", b"y" * 300, qos=2, retain=True, dup=True, packet_id=65535),
    ConnAck(session_present=True, return_code=0),
    ConnAck(session_present=False, return_code=5),
    PubAck(1),
    PubRec(65535),
    PubRel(7),
    PubComp(300),
    SubAck(10, (0, 1, 2, 0x80)),
    UnsubAck(3),
    PingResp(),
]


@pytest.mark.parametrize("packet", ROUND_TRIPS, ids=repr)
def test_round_trip(packet: Packet) -> None:
    data = codec.encode(packet)
    reader = PacketReader()
    assert reader.feed(data) == [packet]
    assert reader.buffered == 0


@pytest.mark.parametrize(
    ("remaining", "length_bytes"),
    [
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (16383, b"\xff\x7f"),
        (16384, b"\x80\x80\x01"),
        (2097151, b"\xff\xff\x7f"),
        (2097152, b"\x80\x80\x80\x01"),
    ],
)
def test_remaining_length_boundaries(remaining: int, length_bytes: bytes) -> None:
    payload = bytes(range(256)) * (remaining // 256 + 1)
    packet = Publish("t", payload[: remaining - 3])  # topic field "t" is 3 bytes
    data = codec.encode(packet)
    assert data[1 : 1 + len(length_bytes)] == length_bytes
    assert len(data) == 1 + len(length_bytes) + remaining
    assert PacketReader().feed(data) == [packet]


@pytest.mark.parametrize(
    ("remaining", "length_bytes"),
    [(0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"), (268_435_455, b"\xff\xff\xff\x7f")],
)
def test_encode_remaining_length(remaining: int, length_bytes: bytes) -> None:
    assert codec.encode_remaining_length(remaining) == length_bytes


@pytest.mark.parametrize("remaining", [-1, 268_435_456])
def test_encode_remaining_length_refuses_what_four_bytes_cannot_say(remaining: int) -> None:
    with pytest.raises(ValueError, match="remaining length"):
        codec.encode_remaining_length(remaining)


def test_byte_by_byte_feed_yields_every_packet_once() -> None:
    stream = b"".join(codec.encode(p) for p in ROUND_TRIPS)
    reader = PacketReader()
    got: list[Packet] = []
    for i in range(len(stream)):
        got += reader.feed(stream[i : i + 1])
    assert got == ROUND_TRIPS
    assert reader.buffered == 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_chunking_yields_every_packet_once(seed: int) -> None:
    rng = random.Random(seed)
    packets: list[Packet] = [
        Publish(f"t/{i}", b"x" * rng.randrange(0, 40000), qos=1, packet_id=i + 1) for i in range(30)
    ]
    stream = b"".join(codec.encode(p) for p in packets)
    reader = PacketReader()
    got: list[Packet] = []
    pos = 0
    while pos < len(stream):
        step = rng.randrange(1, 70000)
        got += reader.feed(stream[pos : pos + step])
        pos += step
    assert got == packets


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (codec.encode_pingreq(), b"\xc0\x00"),
        (codec.encode_disconnect(), b"\xe0\x00"),
        (codec.encode_puback(258), b"\x40\x02\x01\x02"),
        (codec.encode_pubrec(1), b"\x50\x02\x00\x01"),
        (codec.encode_pubrel(1), b"\x62\x02\x00\x01"),
        (codec.encode_pubcomp(1), b"\x70\x02\x00\x01"),
        (codec.encode_connect(client_id="t", keepalive_s=10), b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x0a\x00\x01t"),
        (
            codec.encode_connect(
                client_id="c",
                clean_session=False,
                keepalive_s=60,
                will_topic="w",
                will_payload=b"bye",
                will_qos=1,
                will_retain=True,
                username="u",
                password="p",  # noqa: S106  (spec bytes, not a secret)
            ),
            b"\x10\x1b\x00\x04MQTT\x04\xec\x00\x3c\x00\x01c\x00\x01w\x00\x03bye\x00\x01u\x00\x01p",
        ),
        (codec.encode_subscribe(5, [("a/#", 1), ("b/+", 0)]), b"\x82\x0e\x00\x05\x00\x03a/#\x01\x00\x03b/+\x00"),
        (codec.encode_unsubscribe(6, ["a/#"]), b"\xa2\x07\x00\x06\x00\x03a/#"),
        (codec.encode_publish("a", b"x", qos=1, packet_id=2), b"\x32\x06\x00\x01a\x00\x02x"),
        (codec.encode_publish_raw(codec.encode_topic("a"), b"x", 0, True), b"\x31\x04\x00\x01ax"),
    ],
)
def test_encoders_match_the_spec_bytes(data: bytes, expected: bytes) -> None:
    assert data == expected


MALFORMED = [
    # (stream, packet type named, byte offset)
    (b"\x20\x03\x00\x00\x00", "CONNACK", 1),
    (b"\x20\x02\x02\x00", "CONNACK", 2),
    (b"\x21\x02\x00\x00", "CONNACK", 0),
    (b"\x36\x05\x00\x01a\x00\x01", "PUBLISH", 0),
    (b"\x30\x03\x00\x05a", "PUBLISH", 2),
    (b"\x32\x03\x00\x01a", "PUBLISH", 2),
    (b"\x32\x05\x00\x01a\x00\x00", "PUBLISH", 5),
    (b"\x30\x04\x00\x02a\xff", "PUBLISH", 5),
    (b"\x30\x01\x00", "PUBLISH", 2),
    (b"\x90\x03\x00\x01\x03", "SUBACK", 4),
    (b"\x90\x02\x00\x01", "SUBACK", 1),
    (b"\x30\xff\xff\xff\xff\x01", "PUBLISH", 5),
    (b"\x10\x00", "CONNECT", 0),
    (b"\x00\x00", "reserved(0)", 0),
    (b"\xd0\x01\x00", "PINGRESP", 1),
    (b"\x40\x02\x00\x01\x40\x03\x00\x01\x00", "PUBACK", 5),  # a good PUBACK first
]


@pytest.mark.parametrize(("data", "packet_type", "offset"), MALFORMED)
def test_malformed_packet_names_type_and_offset(data: bytes, packet_type: str, offset: int) -> None:
    with pytest.raises(ProtocolError) as caught:
        PacketReader(endpoint="test").feed(data)
    assert caught.value.packet_type == packet_type
    assert caught.value.offset == offset
    assert f"{packet_type} at byte {offset}" in str(caught.value)
    assert isinstance(caught.value, BrokerError)


def test_good_packets_before_a_bad_one_are_kept_on_the_error() -> None:
    with pytest.raises(ProtocolError) as caught:
        PacketReader().feed(codec.encode(Publish("a", b"1")) + codec.encode(PubAck(9)) + b"\xf0\x00")
    assert caught.value.packets == [Publish("a", b"1"), PubAck(9)]
    assert caught.value.offset == 10


def test_offset_counts_from_the_start_of_the_stream_across_feeds() -> None:
    reader = PacketReader()
    assert reader.feed(codec.encode(PubAck(1)) + b"\x40") == [PubAck(1)]
    with pytest.raises(ProtocolError) as caught:
        reader.feed(b"\x03\x00\x01\x00")
    assert caught.value.offset == 5


def test_remaining_length_above_the_limit_raises_before_the_body_arrives() -> None:
    reader = PacketReader(max_remaining_length=100)
    assert reader.feed(codec.encode(Publish("t", b"x" * 97))) == [Publish("t", b"x" * 97)]
    with pytest.raises(ProtocolError) as caught:
        reader.feed(b"\x30\x65")  # announces 101 bytes
    assert caught.value.offset == 103
    assert "exceeds the limit 100" in str(caught.value)


@pytest.mark.parametrize(
    ("encode", "message"),
    [
        (lambda: codec.encode_publish("a/+", b""), "wildcards"),
        (lambda: codec.encode_publish("", b""), "empty"),
        (lambda: codec.encode_publish("a", b"", qos=3, packet_id=1), "qos 3"),
        (lambda: codec.encode_publish("a", b"", qos=1), "packet id 0"),
        (lambda: codec.encode_puback(70000), "packet id 70000"),
        (lambda: codec.encode_connect(client_id="c", password="p"), "without username"),  # noqa: S106
        (lambda: codec.encode_connect(client_id="c", keepalive_s=70000), "keepalive_s"),
        (lambda: codec.encode_connect(client_id="c" * 70000), "client_id is 70000 bytes"),
        (lambda: codec.encode_subscribe(1, []), "at least one"),
        (lambda: codec.encode_subscribe(1, [("a", 3)]), "qos 3"),
    ],
)
def test_encoders_reject_bad_input_naming_it(encode: object, message: str) -> None:
    assert callable(encode)
    with pytest.raises(ValueError, match=message):
        encode()


def test_all_is_honest() -> None:
    for name in codec.__all__:
        assert hasattr(codec, name), name
    public = {n for n in vars(codec) if not n.startswith("_")} - {
        "annotations",
        "dataclasses",
        "Sequence",
        "NamedTuple",
    }
    assert public - {"BrokerError"} == set(codec.__all__)


@pytest.mark.parametrize(
    ("first", "body", "expected"),
    [
        (0x30, b"\x00\x03a/bxyz", Publish("a/b", b"xyz")),
        (0x3B, b"\x00\x01t\x01\x02p", Publish("t", b"p", qos=1, retain=True, dup=True, packet_id=0x0102)),
        (0x31, b"\x00\x01t", Publish("t", b"", retain=True)),
    ],
)
def test_decode_publish_is_the_readers_publish(first: int, body: bytes, expected: Publish) -> None:
    # the broker's reader decodes a body alone; the client's stream reader the same bytes in a stream
    assert codec.decode_publish(first, body, 0, len(body)) == expected
    stream = bytes([first]) + codec.encode_remaining_length(len(body)) + body
    assert PacketReader().feed(stream) == [expected]


@pytest.mark.parametrize(
    ("first", "body", "offset", "reason"),
    [
        (0x30, b"\x00", 0, "leaves no topic"),
        (0x30, b"\x00\x05ab", 0, "topic length overruns"),
        (0x32, b"\x00\x01t\x00", 0, "packet id overrun"),
        (0x32, b"\x00\x01t\x00\x00", 3, "packet id 0"),
        (0x30, b"\x00\x02a\xff", 3, "not UTF-8"),
    ],
)
def test_decode_publish_names_the_offset(first: int, body: bytes, offset: int, reason: str) -> None:
    with pytest.raises(codec.PublishError, match=reason) as caught:
        codec.decode_publish(first, body, 0, len(body))
    assert caught.value.offset == offset

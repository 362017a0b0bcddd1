from __future__ import annotations

import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.uns.sparkplug.strategies import payloads
from uns.errors import PayloadDecodeError, SparkplugError
from uns.sparkplug import DataType, Metric, Payload, decode_payload, encode_payload
from uns.sparkplug import sparkplug_b_pb2 as pb
from uns.sparkplug.wire import MAX_DEPTH, find_wire_error


def _len(body: bytes) -> bytes:
    """A varint length prefix followed by ``body``."""
    out = bytearray()
    n = len(body)
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + body


def _nested_property_sets(levels: int) -> tuple[bytes, int]:
    """A payload whose metric nests PropertySet→PropertyValue→PropertySet…; and the offset of the deepest tag."""
    inner = b""
    for _ in range(levels):
        inner = b"\x12" + _len(b"\x4a" + _len(inner))  # PropertySet.values → PropertyValue.propertyset_value
    metric = b"\x4a" + _len(inner)  # Metric.properties
    data = b"\x12" + _len(metric)  # Payload.metrics
    # Every level adds a 1-byte tag and a 1- or 2-byte length before the next one.
    offset = 0
    pos = 0
    depth = 0
    while pos < len(data):
        depth += 1
        if depth > MAX_DEPTH:
            offset = pos
            break
        pos += 1  # tag
        pos += 2 if data[pos] & 0x80 else 1  # length
    return data, offset


_TRUNCATED = encode_payload(Payload(timestamp=1, metrics=[Metric(name="abc", datatype=DataType.Int32, value=5)]))[:8]

# (case, bytes, offset, words in the reason)
_BAD: list[tuple[str, bytes, int, str]] = [
    ("empty tag varint", b"\x80", 0, "tag in Payload is truncated"),
    ("garbage byte", b"\xff", 0, "tag in Payload is truncated"),
    ("field number 0", b"\x00\x01", 0, "field number 0"),
    ("wire type 7", b"\x08\x01\x0f", 2, "invalid wire type 7"),
    ("wire type 6 in a metric", b"\x12\x02\x08\x01" + b"\x12\x01\x0e", 6, "in Metric has invalid wire type 6"),
    ("tag longer than 5 bytes", b"\x88\x80\x80\x80\x80\x00\x01", 0, "longer than 5 bytes"),
    ("tag wider than 32 bits", b"\x80\x80\x80\x80\x10\x01", 0, "does not fit in 32 bits"),
    ("truncated timestamp varint", b"\x08\xe8\x07\x18\x80", 4, "varint of field 3 in Payload is truncated"),
    ("varint longer than 10 bytes", b"\x08" + b"\x80" * 10 + b"\x01", 1, "longer than 10 bytes"),
    (
        "length past the end",
        b"\x08\x01\x12\x05\x0a",
        3,
        "length 5 of field 2 in Payload runs past its end (1 bytes left)",
    ),
    # 08 01 | 12 09 | 0a 03 "abc" 20 03 50 05, cut after "ab": the metric length at byte 3 overshoots.
    ("truncated payload", _TRUNCATED, 3, "length 9 of field 2 in Payload runs past its end (4 bytes left)"),
    ("name past the metric's end", b"\x08\x01\x12\x04\x0a\x05ab", 5, "length 5 of field 1 in Metric runs past its end"),
    ("double cut short", b"\x12\x05\x08\x01\x69\x00\x00", 5, "fixed64 of field 13 in Metric needs 8 bytes, 2 left"),
    ("float cut short", b"\x12\x03\x65\x00\x00", 3, "fixed32 of field 12 in Metric needs 4 bytes, 2 left"),
    ("end group with no start", b"\x08\x01\x0c", 2, "end-group tag for field 1 in Payload with no start-group"),
    ("group never closed", b"\x08\x01\x1b\x08\x01", 2, "group of field 3 is never closed"),
    ("group closed by another field", b"\x1b\x24", 1, "end-group tag for field 4 closes the group of field 3"),
    ("group open at a metric's end", b"\x12\x01\x0b" + b"\x0c", 2, "group of field 1 is never closed"),
    (
        "bad varint in packed DataSet types",
        b"\x12" + _len(b"\x8a\x01" + _len(b"\x1a" + _len(b"\x05\x80"))),
        8,  # 12 07 | 8a 01 04 | 1a 02 | 05 80: the second varint starts at byte 8
        "packed varint of field 3 in DataSet is truncated",
    ),
    (
        "bad tag deep in a property set",
        b"\x12" + _len(b"\x4a" + _len(b"\x12" + _len(b"\x08\x0c\x00"))),
        8,  # 12 07 | 4a 05 | 12 03 | 08 0c | 00: type=12, then a tag of field 0
        "tag in PropertyValue names field number 0",
    ),
    (
        "bad extension value",
        b"\x12" + _len(b"\x08\x03" + b"\x9a\x01" + _len(b"\x0f")),
        7,  # 12 06 | 08 03 | 9a 01 01 | 0f
        "tag in extension message has invalid wire type 7",
    ),
    ("nested deeper than 100", *_nested_property_sets(60), "nested deeper than 100 levels"),
]


@pytest.mark.parametrize(("case", "data", "offset", "reason"), _BAD, ids=[c[0] for c in _BAD])
def test_bad_bytes_raise_with_the_exact_offset(case: str, data: bytes, offset: int, reason: str) -> None:
    with pytest.raises(DecodeError):
        pb.Payload().ParseFromString(data)  # protobuf agrees the bytes are bad
    with pytest.raises(PayloadDecodeError) as info:
        decode_payload(data, topic="spBv1.0/g/NDATA/n")
    assert info.value.offset == offset
    assert reason in info.value.reason
    assert info.value.topic == "spBv1.0/g/NDATA/n"
    assert f"byte {offset}" in str(info.value)
    assert isinstance(info.value, SparkplugError)


@pytest.mark.parametrize(
    ("case", "data"),
    [
        ("empty payload", b""),
        ("unknown field", b"\xf8\xff\xff\xff\x0f\x01"),
        ("known field with another wire type", b"\x0a\x01\x00"),
        ("group of unknown fields", b"\x33\x08\x01\x34"),
        ("10-byte varint", b"\x08" + b"\xff" * 9 + b"\x7f"),
        ("99 levels deep", _nested_property_sets(49)[0]),
    ],
)
def test_bytes_protobuf_accepts_are_not_blamed(case: str, data: bytes) -> None:
    pb.Payload().ParseFromString(data)
    assert find_wire_error(data) is None
    decode_payload(data)


def _protobuf_accepts(data: bytes) -> bool:
    try:
        pb.Payload().ParseFromString(data)
    except DecodeError:
        return False
    return True


_FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(payload=payloads, data=st.data())
def test_walker_agrees_with_protobuf_on_damaged_payloads(payload: Payload, data: st.DataObject) -> None:
    good = bytearray(encode_payload(payload))
    how = data.draw(st.sampled_from(["truncate", "flip", "insert"]))
    at = data.draw(st.integers(0, max(len(good) - 1, 0)))
    if how == "truncate":
        damaged = bytes(good[:at])
    elif how == "flip" and good:
        good[at] ^= data.draw(st.integers(1, 255))
        damaged = bytes(good)
    else:
        damaged = bytes(good[:at]) + data.draw(st.binary(min_size=1, max_size=3)) + bytes(good[at:])
    found = find_wire_error(damaged)
    assert (found is None) == _protobuf_accepts(damaged), found
    if found is not None:
        assert 0 <= found[0] <= len(damaged)


@_FUZZ
@given(data=st.binary(max_size=40))
def test_walker_agrees_with_protobuf_on_random_bytes(data: bytes) -> None:
    assert (find_wire_error(data) is None) == _protobuf_accepts(data)

"""The LwM2M content formats: TLV, SenML JSON/CBOR, plain text, CBOR; broken payloads named by byte or field."""

from __future__ import annotations

import struct

import cbor2
import pytest

from bridges.lwm2m.content import (
    CBOR,
    OPAQUE,
    SENML_CBOR,
    SENML_JSON,
    TEXT,
    TLV,
    decode,
    encode_write,
    plain_value,
    tlv_value,
)
from bridges.lwm2m.ipso import Path, parse_path, resource_info
from bridges.lwm2m.senml import Value, decode_senml_cbor, decode_senml_json, encode_senml_cbor, encode_senml_json
from bridges.lwm2m.tlv import ContentError, decode_tlv, encode_tlv
from uns.sparkplug import DataType

NOW = 1_764_000_000_000
TYPES: dict[Path, DataType] = {
    (3303, 0, 5700): DataType.Double,
    (3303, 0, 5701): DataType.String,
    (3200, 0, 5500): DataType.Boolean,
    (3200, 0, 5501): DataType.Int64,
    (3, 0, 13): DataType.DateTime,
}


def type_of(path: Path) -> DataType | None:
    return TYPES.get(path)


# -- TLV -----------------------------------------------------------------------------------------------

# LwM2M 1.1 Core TS 7.4.3.1 example: the Device object instance 0, first resources (hand-encoded)
DEVICE_TLV = bytes.fromhex("c8 00 14 4f 70 65 6e 20 4d 6f 62 69 6c 65 20 41 6c 6c 69 61 6e 63 65".replace(" ", ""))


def test_tlv_spec_example_manufacturer() -> None:
    entries = decode_tlv(DEVICE_TLV, (3, 0))
    assert [(e.path, e.value, e.offset) for e in entries] == [((3, 0, 0), b"Open Mobile Alliance", 3)]


def test_tlv_multiple_resource_and_object_instances() -> None:
    # /3/0/6 available power sources: a multiple resource with instances 0 -> 1, 1 -> 5 (spec 7.4.3.1)
    multiple = bytes.fromhex("86 06 41 00 01 41 01 05".replace(" ", ""))
    assert [(e.path, e.value) for e in decode_tlv(multiple, (3, 0))] == [
        ((3, 0, 6, 0), b"\x01"),
        ((3, 0, 6, 1), b"\x05"),
    ]
    two = encode_tlv([(5700, struct.pack(">f", 21.5))], instance=0) + encode_tlv([(5700, b"\x41")], instance=1)
    assert [(e.path, e.value) for e in decode_tlv(two, (3303,))] == [
        ((3303, 0, 5700), struct.pack(">f", 21.5)),
        ((3303, 1, 5700), b"\x41"),
    ]


@pytest.mark.parametrize("size", [0, 5, 8, 300, 70_000])
def test_tlv_round_trip_every_length_width(size: int) -> None:
    value = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    for rid in (1, 5700):
        assert [(e.path, e.value) for e in decode_tlv(encode_tlv([(rid, value)]), (3303, 0))] == [
            ((3303, 0, rid), value)
        ]


@pytest.mark.parametrize(
    ("payload", "base", "where"),
    [
        (bytes.fromhex("c8 00 14 4f 70"), (3, 0), "byte 0"),  # 20 bytes announced, 2 there
        (bytes.fromhex("c1 00 01 c8"), (3, 0), "byte 3"),  # a good resource then a cut header
        (bytes.fromhex("e1"), (3, 0), "byte 0"),  # 16-bit id, header cut
        (bytes.fromhex("c1 00 01"), (3303,), "byte 0"),  # a resource with no instance around it
        (bytes.fromhex("08 00 02 c1 00 01"), (3303,), "byte 3"),  # the instance's 2 bytes hold a 3-byte TLV
        (bytes.fromhex("08 00 03 c1 00 01 ff"), (3303,), "byte 6"),  # a broken header after the instance
        (bytes.fromhex("41 00 01"), (3303, 0), "byte 0"),  # a resource instance without its resource
    ],
)
def test_tlv_broken_names_the_byte(payload: bytes, base: Path, where: str) -> None:
    with pytest.raises(ContentError) as caught:
        decode_tlv(payload, base)
    assert caught.value.where == where
    assert str(caught.value).startswith(f"TLV at {where}: ")


# -- SenML ---------------------------------------------------------------------------------------------


def test_senml_json_spec_style_pack_with_base_name_and_time() -> None:
    pack = b'[{"bn":"/3303/0/","bt":1764000000,"n":"5700","v":21.5},{"n":"5701","vs":"Cel","t":1},{"n":"5700","v":22}]'
    records = decode_senml_json(pack, NOW)
    assert [(r.path, r.value, r.timestamp_ms) for r in records] == [
        ((3303, 0, 5700), 21.5, 1_764_000_000_000),
        ((3303, 0, 5701), "Cel", 1_764_000_001_000),
        ((3303, 0, 5700), 22, 1_764_000_000_000),
    ]


def test_senml_cbor_uses_the_integer_labels_and_relative_times() -> None:
    pack = cbor2.dumps([{-2: "/3200/0/", 0: "5500", 4: True, 6: -5}, {0: "5501", 2: 17}])
    records = decode_senml_cbor(pack, NOW)
    assert [(r.path, r.value, r.timestamp_ms) for r in records] == [
        ((3200, 0, 5500), True, NOW - 5000),
        ((3200, 0, 5501), 17, None),
    ]


@pytest.mark.parametrize(
    ("pack", "where"),
    [
        (b'[{"n":"/3303/0/5700","v":"hot"}]', "record 0 'v'"),
        (b'[{"n":"/3303/0/5700","v":1},{"n":"/3303/0/5700"}]', "record 1"),
        (b'[{"n":"/3303/x/5700","v":1}]', "record 0 'n'"),
        (b'[{"n":"/3303/0/5700","v":1,"vs":"a"}]', "record 0"),
        (b'[{"n":"/3303/0/5700","vb":1}]', "record 0 'vb'"),
        (b'[{"bn":5,"n":"/3303/0/5700","v":1}]', "record 0 'bn'"),
        (b'[{"n":"/3303/0/5700","v":1,"t":"now"}]', "record 0 't'"),
        (b'[{"n":"/3303/0/5700","v":1}', "byte 27"),  # the pack ends without its ]
        (b'{"n":"/3303/0/5700"}', "byte 0"),
    ],
)
def test_senml_json_broken_names_the_record_and_field(pack: bytes, where: str) -> None:
    with pytest.raises(ContentError) as caught:
        decode_senml_json(pack, NOW)
    assert caught.value.where == where


def test_senml_cbor_broken_names_the_byte() -> None:
    good = cbor2.dumps([{0: "/3303/0/5700", 2: 21.5}])
    with pytest.raises(ContentError) as caught:
        decode_senml_cbor(good + b"\x00", NOW)
    assert caught.value.where == f"byte {len(good)}"
    with pytest.raises(ContentError) as cut:
        decode_senml_cbor(good[:5], NOW)
    assert cut.value.where.startswith("byte ")
    with pytest.raises(ContentError) as wrong:
        decode_senml_cbor(cbor2.dumps([{0: "/3303/0/5700", 2: "x"}]), NOW)
    assert wrong.value.where == "record 0 'v'"


def test_senml_round_trips() -> None:
    values: list[tuple[Path, Value]] = [
        ((3303, 0, 5700), 21.5), ((3303, 0, 5701), "Cel"), ((3200, 0, 5500), True), ((3, 0, 99), b"\x00\xff")
    ]  # fmt: skip
    for encode, decoder in ((encode_senml_json, decode_senml_json), (encode_senml_cbor, decode_senml_cbor)):
        assert [(r.path, r.value) for r in decoder(encode(values), NOW)] == values


# -- decode by content format --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "fmt", "base", "expected"),
    [
        (b"21.5", None, (3303, 0, 5700), [((3303, 0, 5700), 21.5)]),
        (b"1", TEXT, (3200, 0, 5500), [((3200, 0, 5500), True)]),
        (b"1764000000", TEXT, (3, 0, 13), [((3, 0, 13), 1_764_000_000_000)]),
        (cbor2.dumps(7), CBOR, (3200, 0, 5501), [((3200, 0, 5501), 7)]),
        (b"\x01\x02", OPAQUE, (3303, 0, 5701), [((3303, 0, 5701), "0102")]),
        (
            encode_tlv([(5700, struct.pack(">f", 21.5)), (5701, b"Cel"), (9999, b"x")]),
            TLV,
            (3303, 0),
            [((3303, 0, 5700), 21.5), ((3303, 0, 5701), "Cel")],
        ),
        (encode_tlv([(5501, b"\xff\xfe")]), TLV, (3200, 0), [((3200, 0, 5501), -2)]),
        (encode_senml_json([((3200, 0, 5500), False)]), SENML_JSON, (3200, 0), [((3200, 0, 5500), False)]),
        (encode_senml_cbor([((3303, 0, 5700), 20)]), SENML_CBOR, (3303, 0, 5700), [((3303, 0, 5700), 20.0)]),
    ],
)
def test_decode_each_format_keeps_configured_resources(
    payload: bytes, fmt: int | None, base: Path, expected: list[tuple[Path, object]]
) -> None:
    decoded = decode(payload, fmt, base, type_of, now_ms=NOW)
    assert [(r.path, r.value) for r in decoded.readings] == expected
    assert decoded.problems == []


def test_a_value_unfit_for_its_resource_is_named_and_the_rest_kept() -> None:
    payload = encode_tlv([(5500, b"\x07"), (5501, b"\x00\x2a")])
    decoded = decode(payload, TLV, (3200, 0), type_of, now_ms=NOW)
    assert [(r.path, r.value) for r in decoded.readings] == [((3200, 0, 5501), 42)]
    assert decoded.problems == ["3200/0/5500 (TLV byte 3): a TLV Boolean is one byte 0 or 1 (got 07)"]
    text = decode(b"warm", TEXT, (3303, 0, 5700), type_of, now_ms=NOW)
    assert text.readings == []
    assert text.problems == ["3303/0/5700 (text): not a number: 'warm'"]


def test_decode_refuses_what_it_cannot_read() -> None:
    with pytest.raises(ContentError, match="content format 11543"):
        decode(b"{}", 11543, (3303, 0), type_of, now_ms=NOW)
    with pytest.raises(ContentError, match="only a resource read"):
        decode(b"1", TEXT, (3303, 0), type_of, now_ms=NOW)
    with pytest.raises(ContentError, match="text at byte 1: not UTF-8"):
        decode(b"2\xff", TEXT, (3303, 0, 5700), type_of, now_ms=NOW)


@pytest.mark.parametrize("fmt", [TEXT, TLV, CBOR, SENML_JSON, SENML_CBOR])
@pytest.mark.parametrize(
    ("path", "value", "datatype"),
    [((3303, 0, 5700), 21.25, DataType.Double), ((3200, 0, 5500), True, DataType.Boolean),
     ((3200, 0, 5501), -300, DataType.Int64), ((3303, 0, 5701), "Cel", DataType.String),
     ((3, 0, 13), 1_764_000_000_000, DataType.DateTime)],
)  # fmt: skip
def test_writes_decode_to_what_was_written(fmt: int, path: Path, value: object, datatype: DataType) -> None:
    payload = encode_write(path, value, datatype, fmt)  # type: ignore[arg-type]
    decoded = decode(payload, fmt, path, lambda p: datatype if p == path else None, now_ms=NOW)
    assert [(r.path, r.value) for r in decoded.readings] == [(path, value)]


def test_value_helpers_and_registry() -> None:
    assert tlv_value(1_764_000_000_000, DataType.DateTime) == (1_764_000_000).to_bytes(4, "big", signed=True)
    assert plain_value(1_764_000_000_000, DataType.DateTime) == 1_764_000_000
    assert parse_path("/3303/0/5700") == (3303, 0, 5700)
    with pytest.raises(ValueError, match="not an LwM2M path"):
        parse_path("3303/a")
    name, info = resource_info((3303, 0, 5700))
    assert (name, info.unit if info else None) == ("Temperature/0/SensorValue", "Cel")
    assert resource_info((3304, 1, 5700))[1] is not None
    assert resource_info((3331, 0, 5805))[0] == "Energy/0/CumulativeActivePower"
    assert resource_info((40000, 2, 7)) == ("40000/2/7", None)

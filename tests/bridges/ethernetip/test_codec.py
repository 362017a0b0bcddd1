"""Pure cores of the EtherNet/IP driver: tag addresses, CIP paths and replies, values and writes (tables)."""

from __future__ import annotations

import importlib
import re
import struct

import pytest
from pydantic import TypeAdapter

from bridges.ethernetip.cip import CipDecodeError, decode_multiple, decode_reply, encode_multiple, status_text
from bridges.ethernetip.values import ValueMismatch, decode_value, encode_write, read_request, tag_path
from model.bridges import BridgeConfig
from model.bridges.ethernetip import EthernetIpBridgeConfig, EthernetIpDevice, TagAddress, TagPart


@pytest.mark.parametrize(
    ("text", "parts", "program", "bit", "count"),
    [
        ("Speed", [("Speed", ())], None, None, None),
        ("Temps[3]", [("Temps", (3,))], None, None, None),
        ("Temps[0]{10}", [("Temps", (0,))], None, None, 10),
        ("Grid[1,2,3]", [("Grid", (1, 2, 3))], None, None, None),
        ("Motor.Amps", [("Motor", ()), ("Amps", ())], None, None, None),
        ("Line[2].Motor.Speed", [("Line", (2,)), ("Motor", ()), ("Speed", ())], None, None, None),
        ("Program:Main.Count", [("Count", ())], "Main", None, None),
        ("Program:Main.Recipe.Steps[4]", [("Recipe", ()), ("Steps", (4,))], "Main", None, None),
        ("Flags.3", [("Flags", ())], None, 3, None),
        ("_hidden_1", [("_hidden_1", ())], None, None, None),
    ],
)
def test_addresses_parse_and_print_back(
    text: str, parts: list[tuple[str, tuple[int, ...]]], program: str | None, bit: int | None, count: int | None
) -> None:
    address = TagAddress.from_str(text)
    assert address == TagAddress(tuple(TagPart(n, i) for n, i in parts), program, bit, count)
    assert str(address) == text


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("1Speed", "part 1 ('1Speed') is not a Logix name"),
        ("Motor..Amps", "part 2 ('') is not a Logix name"),
        ("Temps[a]", "part 1 ('Temps[a]')"),
        ("Temps[0]{0}", "element count {0} must be 1..10000"),
        ("Program:.X", "a program-scoped tag reads Program:<program>.<tag>"),
        ("Flags.64", "bit 64 is beyond 63"),
        ("Flags.3{2}", "a bit (3) cannot have an element count"),
        ("A" * 41, "at most 40"),
    ],
)
def test_bad_addresses_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        TagAddress.from_str(text)


def test_a_bad_address_in_a_config_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"devices\.0\.tags\.0\.address") as error:
        EthernetIpBridgeConfig.model_validate(
            {
                "name": "b",
                "edge": {"group": "g"},
                "devices": [{"id": "d", "host": "h", "tags": [{"name": "t", "address": "Bad Name", "type": "REAL"}]}],
            }
        )
    assert "is not a Logix name" in str(error.value)


def test_paths_are_symbolic_segments_with_elements_padded_to_words() -> None:
    # CIP Vol. 1 C-1.4.5: 0x91, length, name, pad to even; member 0x28 (USINT) / 0x29 0x00 (UINT) element ids
    assert tag_path(TagAddress.from_str("Program:Main.Tags[2].Ab[300]")) == (
        b"\x91\x0cProgram:Main" + b"\x91\x04Tags\x28\x02" + b"\x91\x02Ab\x29\x00\x2c\x01"
    )
    assert read_request(TagAddress.from_str("Odd[0]{5}")) == b"\x4c\x04\x91\x03Odd\x00\x28\x00\x05\x00"


@pytest.mark.parametrize(
    ("logix", "address", "data", "value"),
    [
        ("BOOL", "F", b"\xc1\x00\x01", True),
        ("SINT", "S", b"\xc2\x00\xff", -1),
        ("INT", "I", b"\xc3\x00\x00\x80", -32768),
        ("DINT", "D", b"\xc4\x00" + struct.pack("<i", -5), -5),
        ("LINT", "L", b"\xc5\x00" + struct.pack("<q", -(2**40)), -(2**40)),
        ("USINT", "U", b"\xc6\x00\xff", 255),
        ("UINT", "U", b"\xc7\x00\xff\xff", 65535),
        ("UDINT", "U", b"\xc8\x00\xff\xff\xff\xff", 2**32 - 1),
        ("ULINT", "U", b"\xc9\x00" + b"\xff" * 8, 2**64 - 1),
        ("REAL", "R", b"\xca\x00" + struct.pack("<f", 1.5), 1.5),
        ("LREAL", "R", b"\xcb\x00" + struct.pack("<d", 0.1), 0.1),
        ("REAL", "R[0]{2}", b"\xca\x00" + struct.pack("<2f", 1.0, 2.0), [1.0, 2.0]),
        ("BOOL", "B[0]{3}", b"\xd3\x00\x05\x00\x00\x00", [True, False, True]),
        ("BOOL", "Word.2", b"\xc3\x00\x04\x00", True),
        ("BOOL", "Word.1", b"\xc3\x00\x04\x00", False),
        ("STRING", "S", b"\xa0\x02\xce\x0f\x02\x00\x00\x00hi" + b"\x00" * 80, "hi"),
        ("STRING", "S", b"\xd0\x00\x03\x00abc", "abc"),
    ],
)
def test_reply_data_decodes_as_the_declared_type(logix: str, address: str, data: bytes, value: object) -> None:
    assert decode_value(logix, TagAddress.from_str(address), data) == value


@pytest.mark.parametrize(
    ("logix", "data", "says"),
    [
        ("REAL", b"\xc4\x00\x01\x00\x00\x00", "PLC answered DINT (0xC4), the config declares REAL"),
        ("DINT", b"\xc4\x00\x01", "PLC answered 1 bytes for 1 x DINT"),
        ("STRING", b"\xa0\x02\xce\x0f\x50\x00\x00\x00ab", "STRING LEN 80 exceeds its 2 data bytes"),
        ("STRING", b"\xc4\x00\x01\x00\x00\x00", "PLC answered DINT (0xC4), the config declares STRING"),
        ("INT", b"\xc3", "reply data of 1 bytes carries no type"),
    ],
)
def test_replies_of_another_type_are_refused_naming_both(logix: str, data: bytes, says: str) -> None:
    with pytest.raises(ValueMismatch) as error:
        decode_value(logix, TagAddress.from_str("T"), data)
    assert str(error.value) == says


@pytest.mark.parametrize(
    ("logix", "value", "says"),
    [
        ("SINT", 128, "128 is out of SINT range -128..127"),
        ("UINT", -1, "-1 is out of UINT range 0..65535"),
        ("DINT", 1.5, "a DINT takes a whole number, not 1.5"),
        ("BOOL", 2, "a BOOL takes true/false, not 2"),
        ("REAL", "x", "a REAL takes a number, not str"),
        ("REAL", 1e39, "1e+39 is out of REAL range"),
        ("STRING", "x" * 83, "83 characters exceed a STRING's 82"),
        ("STRING", "€", "a STRING holds Latin-1 characters only"),
    ],
)
def test_writes_that_do_not_fit_say_why(logix: str, value: object, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        encode_write(logix, TagAddress.from_str("T"), value)  # type: ignore[arg-type]


def test_writes_carry_the_type_code_and_one_element() -> None:
    assert encode_write("REAL", TagAddress.from_str("Sp"), 2.5) == (
        b"\x4d\x02\x91\x02Sp" + b"\xca\x00\x01\x00" + struct.pack("<f", 2.5)
    )
    string = encode_write("STRING", TagAddress.from_str("N"), "ok")
    assert string[:12] == b"\x4d\x02\x91\x01N\x00\xa0\x02\xce\x0f\x01\x00"
    assert string[12:18] == b"\x02\x00\x00\x00ok"
    assert len(string) == 12 + 88


def test_replies_and_multiple_service_packets_decode_or_name_the_offset() -> None:
    # a Multiple Service Packet reply as 1756-PM020 draws it: count, offsets from the count, replies
    first, second = b"\xcc\x00\x00\x00\xc4\x00\x07\x00\x00\x00", b"\xcc\x00\x05\x01\x00\x00"
    packet = b"\x02\x00\x06\x00\x10\x00" + first + second
    assert decode_multiple(packet) == [first, second]
    assert encode_multiple([first, second]) == packet
    reply = decode_reply(second)
    assert (reply.service, reply.status, reply.extended) == (0x4C, 0x05, (0,))
    with pytest.raises(CipDecodeError, match="byte 4"):
        decode_reply(b"\xcc\x00\x05\x02\x00\x00")
    with pytest.raises(CipDecodeError, match="byte 2: offset 99"):
        decode_multiple(b"\x01\x00\x63\x00")
    assert status_text(0x01, (0x0113,)) == "0x01 connection failure, extended 0x0113 out of connections"


@pytest.mark.parametrize(
    "name",
    ["bridges.ethernetip", "bridges.ethernetip.cip", "bridges.ethernetip.encap", "bridges.ethernetip.client",
     "bridges.ethernetip.values", "bridges.ethernetip.symbols", "bridges.ethernetip.device",
     "bridges.ethernetip.source", "bridges.ethernetip.browse", "model.bridges.ethernetip",
     "bridges.sim.ethernetip_server", "bridges.sim.ethernetip_plant"],
)  # fmt: skip
def test_all_names_exist_and_are_public(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__all__, name
    for export in module.__all__:
        assert hasattr(module, export), export
        assert not export.startswith("_"), export


def test_every_schema_field_is_described_and_the_union_takes_the_kind() -> None:
    schema = EthernetIpBridgeConfig.model_json_schema()
    missing = [
        f"{name}.{field}"
        for name, model in [*schema["$defs"].items(), ("EthernetIpBridgeConfig", schema)]
        for field, spec in model.get("properties", {}).items()
        if "description" not in spec
    ]
    assert missing == []
    config = TypeAdapter(BridgeConfig).validate_python(
        {
            "kind": "ethernetip",
            "name": "b",
            "edge": {"group": "g"},
            "devices": [
                {"id": "d", "host": "h", "tags": [{"name": "t", "address": "Program:Main.T[2]", "type": "REAL"}]}
            ],
        }
    )
    assert isinstance(config, EthernetIpBridgeConfig)
    assert config.devices[0].hops == [(1, 0)]


@pytest.mark.parametrize(
    ("device", "says"),
    [
        ({"poll_groups": {"fast": 0.5}}, "poll group 'default' not in poll_groups of device d"),
        ({"route": [[15, 0]]}, "route hop [15, 0]: port 1..14, link 0..255"),
        ({"tags": [{"name": "t", "address": "A", "type": "REAL"}] * 2}, "tag t: name used twice in device d"),
        ({"tags": [{"name": "t", "address": "W.3", "type": "DINT"}]}, "a bit address (W.3) is type BOOL"),
        ({"tags": [{"name": "t", "address": "W.3", "type": "BOOL", "writable": True}]}, "is read only; write a BOOL"),
        (
            {"tags": [{"name": "t", "address": "A[0]{4}", "type": "REAL", "writable": True}]},
            "of 4 elements is read only",
        ),
        ({"tags": [{"name": "t", "address": "A[0]{4}", "type": "STRING"}]}, "STRING arrays are not supported"),
    ],
)
def test_config_mistakes_are_refused_at_load_naming_the_tag(device: dict[str, object], says: str) -> None:
    base: dict[str, object] = {"id": "d", "host": "h", "tags": [{"name": "t", "address": "A", "type": "REAL"}]}
    with pytest.raises(ValueError, match=re.escape(says)):
        EthernetIpDevice.model_validate({**base, **device})

"""Cayenne LPP against the published spec's examples and The Things Network's go-cayenne-lib test vectors."""

from __future__ import annotations

import pytest

from bridges.lorawan.codec import CodecError, NoCodec, load_codec
from bridges.lorawan.lpp import CayenneLpp, LppError, decode_lpp, encode_lpp

# myDevices' Cayenne LPP spec (github.com/myDevicesIoT/cayenne-docs, docs/LORA.md), its three examples
SPEC = [
    ("03670110056700FF", {"temperature_3": 27.2, "temperature_5": 25.5}),
    ("067104D2FB2E0000", {"accelerometer_6": {"x": 1.234, "y": -1.234, "z": 0.0}}),
    ("018806765FF2960A0003E8", {"gps_1": {"latitude": 42.3519, "longitude": -87.9094, "altitude": 10.0}}),
]

# TheThingsNetwork/go-cayenne-lib cayennelpp/decoder_test.go (TestDecode, "Happy flow: uplink"):
# the frame and the values that implementation decodes from it (float32 there, exact decimals here)
GO_FRAME = bytes(
    [1, 0, 255, 2, 1, 100, 3, 2, 21, 74, 4, 3, 234, 182, 5, 101, 1, 244, 6, 102, 50, 7, 103, 255, 100,
     8, 104, 160, 9, 113, 254, 88, 0, 15, 6, 130, 10, 115, 41, 239, 11, 134, 1, 99, 2, 49, 254, 102,
     12, 136, 7, 253, 135, 0, 190, 245, 0, 8, 106, 13, 116, 21, 74, 14, 117, 0, 240, 15, 118, 21, 124,
     16, 131, 2, 142, 164]
)  # fmt: skip
GO_VALUES = {
    "digital_in_1": 255, "digital_out_2": 100, "analog_in_3": 54.5, "analog_out_4": -54.5, "luminosity_5": 500,
    "presence_6": 50, "temperature_7": -15.6, "relative_humidity_8": 80.0,
    "accelerometer_9": {"x": -0.424, "y": 0.015, "z": 1.666}, "barometric_pressure_10": 1073.5,
    "gyrometer_11": {"x": 3.55, "y": 5.61, "z": -4.1}, "gps_12": {"latitude": 52.3655, "longitude": 4.8885,
    "altitude": 21.54}, "voltage_13": 54.5, "current_14": 2.4, "frequency_15": 55.0, "energy_16": 1675.88,
}  # fmt: skip


@pytest.mark.parametrize(("frame", "values"), SPEC)
def test_the_spec_examples(frame: str, values: dict[str, object]) -> None:
    assert decode_lpp(bytes.fromhex(frame)) == values
    assert encode_lpp(values) == bytes.fromhex(frame)


def test_go_cayenne_lib_vectors_decode_and_encode_the_same_bytes() -> None:
    assert decode_lpp(GO_FRAME) == GO_VALUES
    assert encode_lpp(GO_VALUES) == GO_FRAME


@pytest.mark.parametrize(
    ("frame", "offset", "words"),
    [
        ("01FFFF", 1, "unknown type 255 on channel 1"),  # go-cayenne-lib: ErrInvalidChannel
        ("0C8807FD8700BE", 2, "gps on channel 12 needs 9 bytes, the frame has 5"),  # go-cayenne-lib: ErrUnexpectedEOF
        ("03670110FF", 4, "a channel without its type"),
        ("0367", 2, "temperature on channel 3 needs 2 bytes, the frame has 0"),
    ],
)
def test_bad_frames_name_the_byte_offset(frame: str, offset: int, words: str) -> None:
    with pytest.raises(LppError) as caught:
        decode_lpp(bytes.fromhex(frame))
    assert caught.value.offset == offset
    assert words in str(caught.value)
    assert f"byte {offset}" in str(caught.value)


@pytest.mark.parametrize(
    ("values", "key", "words"),
    [
        ({"temperature_3": 4000.0}, "temperature_3", "does not fit 2 byte(s)"),
        ({"digital_out_1": -1}, "digital_out_1", "does not fit 1 byte(s)"),
        ({"relay_1": 1}, "relay_1", "not <type>_<channel>"),
        ({"digital_out_300": 1}, "digital_out_300", "channel 0..255"),
        ({"analog_out_2": "on"}, "analog_out_2", "is not a number"),
        ({"gps_1": {"latitude": 1.0}}, "gps_1", "latitude, longitude, altitude"),
    ],
)
def test_values_that_cannot_be_encoded_name_the_key(values: dict[str, object], key: str, words: str) -> None:
    with pytest.raises(LppError) as caught:
        encode_lpp(values)
    assert caught.value.key == key
    assert words in str(caught.value)


def test_codecs_by_name() -> None:
    assert isinstance(load_codec("cayenne_lpp"), CayenneLpp)
    assert load_codec("none").decode(1, b"\x01") == {}
    with pytest.raises(CodecError, match="use encoding raw or server"):
        NoCodec().encode(1, {"x": 1})
    plugged = load_codec("tests.bridges.lorawan.plugin:FirstByte")
    assert plugged.decode(7, b"\x2a\x00") == {"port": 7, "first": 42}
    assert plugged.encode(7, {"first": 5}) == b"\x05"
    with pytest.raises(CodecError, match="cannot make it"):
        load_codec("tests.bridges.lorawan.plugin:Missing")
    with pytest.raises(CodecError, match="has no decode"):
        load_codec("tests.bridges.lorawan.plugin:NotACodec")

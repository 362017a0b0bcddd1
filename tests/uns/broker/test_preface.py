"""The CONNECT preface check (uns/broker/preface.py): a table of protocol names, levels and client ids."""

from __future__ import annotations

import pytest

from uns.broker.preface import Verdict, check_preface, client_id_of, connack


def _string(text: bytes) -> bytes:
    return len(text).to_bytes(2, "big") + text


def _connect(name: bytes, level: int, client_id: bytes, *, properties: bytes | None = None, pad: int = 0) -> bytes:
    body = _string(name) + bytes([level, 0x02, 0, 30])
    if properties is not None:
        body += bytes([len(properties)]) + properties
    body += _string(client_id) + b"\x00" * pad
    length = len(body)
    varint = bytearray()
    while True:
        byte, length = length % 128, length // 128
        varint.append(byte | (0x80 if length else 0))
        if not length:
            break
    return bytes([0x10]) + bytes(varint) + body


async def _verdict(packet: bytes) -> Verdict | None:
    async def peek(n: int) -> bytes:
        return packet[:n]

    return await check_preface(peek)


async def test_mqtt_311_is_left_to_amqtt() -> None:
    assert await _verdict(_connect(b"MQTT", 4, b"abc")) is None


@pytest.mark.parametrize(
    ("name", "level", "protocol", "code"),
    [
        (b"MQTT", 5, "5", 1),
        (b"MQTT", 3, "MQTT level 3", 1),
        (b"MQTT", 6, "MQTT level 6", 1),
        (b"MQIsdp", 4, "MQIsdp level 4", 1),
    ],
)
async def test_other_levels_are_refused_with_connack_1(name: bytes, level: int, protocol: str, code: int) -> None:
    verdict = await _verdict(_connect(name, level, b"abc", properties=b"" if level == 5 else None))
    assert verdict is not None
    assert (verdict.refuse, verdict.code, verdict.protocol) == (True, code, protocol)


async def test_mqtt5_is_refused_from_the_level_byte_alone() -> None:
    """Only the bytes up to the level are needed: the answer never waits for the rest."""
    whole = _connect(b"MQTT", 5, b"v5", properties=b"\x11\x00\x00\x00\x3c")
    verdict = await _verdict(whole[:9])  # fixed header (2) + name (6) + level (1)
    assert verdict is not None
    assert (verdict.refuse, verdict.code) == (True, 1)
    assert client_id_of(whole, verdict) == "v5"


@pytest.mark.parametrize("name", [b"MQTX", b"", b"MQIsdpX"])
async def test_unknown_names_are_closed_without_connack(name: bytes) -> None:
    verdict = await _verdict(_connect(name, 4, b"abc"))
    assert verdict is not None
    assert (verdict.refuse, verdict.code) == (True, None)


@pytest.mark.parametrize(("length", "code"), [(0, 2), (24, 2), (300, 2)])
async def test_mqtt31_client_ids_outside_1_to_23_bytes_get_connack_2(length: int, code: int) -> None:
    verdict = await _verdict(_connect(b"MQIsdp", 3, b"c" * length))
    assert verdict is not None
    assert (verdict.refuse, verdict.code, verdict.protocol) == (True, code, "3.1")


@pytest.mark.parametrize("pad", [0, 200])  # 200: the remaining length takes two bytes before, one or two after
async def test_mqtt31_is_rewritten_to_the_same_packet_as_311(pad: int) -> None:
    packet = _connect(b"MQIsdp", 3, b"c" * 23, pad=pad)
    verdict = await _verdict(packet)
    assert verdict is not None
    assert verdict.rewrite is not None
    assert not verdict.refuse
    length, replacement = verdict.rewrite
    assert replacement + packet[length:] == _connect(b"MQTT", 4, b"c" * 23, pad=pad)


async def test_not_a_connect_or_a_cut_stream_is_left_to_amqtt() -> None:
    assert await _verdict(b"\x30\x02\x00\x00") is None
    assert await _verdict(b"\x10") is None
    assert await _verdict(_connect(b"MQTT", 5, b"x")[:5]) is None


def test_connack_bytes() -> None:
    assert connack(1) == b"\x20\x02\x00\x01"

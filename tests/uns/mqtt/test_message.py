"""Message: a frozen value type whose own __init__ fills its slots (the hub builds two per republished metric)."""

import copy
import dataclasses

import pytest

from uns.mqtt.types import Message

_READING = (1.5, 1_764_000_000_123, "good", "Double", None, False, False, None, False)


def test_fields_by_position_and_by_keyword() -> None:
    by_position = Message("a/b", b"{}", 1, True, 7, _READING)
    by_keyword = Message(topic="a/b", payload=b"{}", qos=1, retain=True, packet_id=7, decoded=_READING)
    for message in (by_position, by_keyword):
        assert (message.topic, message.payload, message.qos, message.retain) == ("a/b", b"{}", 1, True)
        assert (message.packet_id, message.decoded) == (7, _READING)
    defaults = Message("a/b", b"x")
    assert (defaults.qos, defaults.retain, defaults.packet_id, defaults.decoded) == (0, False, 0, None)


def test_stays_frozen() -> None:
    message = Message("a/b", b"x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.qos = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del message.topic


def test_packet_id_and_decoded_take_no_part_in_equality_or_hash() -> None:
    plain = Message("a/b", b"x", 1, True)
    held = Message("a/b", b"x", 1, True, 9, _READING)
    assert plain == held
    assert hash(plain) == hash(held)
    assert plain != Message("a/b", b"x", 0, True)
    assert repr(held) == "Message(topic='a/b', payload=b'x', qos=1, retain=True, packet_id=9)"


def test_replace_and_copy_keep_every_field() -> None:
    message = Message("a/b", b"x", 1, True, 9, _READING)
    replaced = dataclasses.replace(message, retain=False)
    assert (replaced.retain, replaced.packet_id, replaced.decoded) == (False, 9, _READING)
    twin = copy.copy(message)
    assert (twin.topic, twin.payload, twin.qos, twin.retain, twin.packet_id, twin.decoded) == (
        "a/b",
        b"x",
        1,
        True,
        9,
        _READING,
    )

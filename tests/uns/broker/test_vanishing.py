"""Clients that vanish while the broker refuses or admits them (issue 13.11): counted, never a traceback."""

from __future__ import annotations

import asyncio
import gc
import logging
from pathlib import Path

import pytest

from tests.fixtures.broker import broker_test_config, start_broker
from tests.fixtures.waiting import until
from tests.uns.broker.raw_mqtt import CONNACK_OK, close_with_reset, connect_packet, mqtt_packet, open_raw, read_or_eof
from uns.broker.embedded import EmbeddedBroker

_TIMES = 40


def _mqtt5_connect(client_id: bytes) -> bytes:
    body = b"\x00\x04MQTT" + bytes([5, 0x02, 0, 30, 0]) + len(client_id).to_bytes(2, "big") + client_id
    return mqtt_packet(0x10, body)


async def _send_and_reset(broker: EmbeddedBroker, packet: bytes, times: int) -> None:
    """Send ``packet`` and close with a TCP RST at once, ``times`` times, a few connections at a time."""

    async def one() -> None:
        _, writer = await open_raw(broker.url, packet)
        close_with_reset(writer)

    for _ in range(times // 4):
        await asyncio.gather(*(one() for _ in range(4)))


async def _good_client_connects(broker: EmbeddedBroker) -> None:
    reader, writer = await open_raw(broker.url, connect_packet("good-client"))
    assert await read_or_eof(reader, 4, within_s=3) == CONNACK_OK
    writer.close()


def _loud(caplog: pytest.LogCaptureFixture) -> list[str]:
    gc.collect()  # a never-retrieved task exception is logged when its task is collected
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_mqtt5_clients_gone_before_their_connack_are_counted_without_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with start_broker(tmp_path) as broker:
        await _send_and_reset(broker, _mqtt5_connect(b"v5-gone"), _TIMES)
        await until(lambda: broker.stats.protocol_refused == _TIMES, what="every MQTT 5 client to be refused")
        await _good_client_connects(broker)
    assert _loud(caplog) == []


async def _send_half_close_and_reset(broker: EmbeddedBroker, packet: bytes, times: int) -> None:
    """While the broker's gate holds them unread: send ``packet``, end the stream (FIN), then reset (RST).

    The broker reads the whole packet and the end of stream, never the reset: its answer or its
    own close then meets a socket that is gone (ENOTCONN, ECONNRESET, EPIPE).
    """
    for _ in range(times):
        _, writer = await open_raw(broker.url, packet)
        writer.write_eof()
        close_with_reset(writer)


@pytest.mark.parametrize(
    ("packet", "counter"),
    [
        (_mqtt5_connect(b"v5-gone"), "protocol_refused"),  # answered with CONNACK 1
        (mqtt_packet(0x10, b"\x00\x04MQTX\x04\x02\x00\x1e\x00\x01x"), "protocol_refused"),  # closed, no CONNACK
    ],
    ids=["mqtt5", "unknown-protocol"],
)
async def test_refused_clients_already_gone_when_the_broker_answers_leave_no_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, packet: bytes, counter: str
) -> None:
    caplog.set_level(logging.DEBUG)
    async with EmbeddedBroker(config=broker_test_config(), data_dir=tmp_path / "broker", gated=True) as broker:
        await _send_half_close_and_reset(broker, packet, _TIMES)
        broker.open_gate()
        await until(lambda: getattr(broker.stats, counter) == _TIMES, what=f"{counter} to count every client")
        await _good_client_connects(broker)
    assert _loud(caplog) == []

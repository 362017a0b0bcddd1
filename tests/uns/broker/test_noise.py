"""Broker log noise (issue 13.11): bad connections give at most one WARNING per cause and client, never an ERROR."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
from pathlib import Path

import pytest

from tests.fixtures.broker import start_broker
from tests.uns.broker.raw_mqtt import CONNACK_OK, close_with_reset, connect_packet, open_raw, read_or_eof
from uns.mqtt.types import BrokerUrl

_NUMBERS = re.compile(r"\d+")


async def _send_and_close(url: BrokerUrl, data: bytes, *, after_connect: bool = False, reset: bool = False) -> None:
    reader, writer = await open_raw(url, connect_packet("noisy") if after_connect else b"")
    if after_connect:
        assert await read_or_eof(reader, 4, within_s=3) == CONNACK_OK
    if data:
        writer.write(data)
        await writer.drain()
    if reset:
        close_with_reset(writer)
        return
    with contextlib.suppress(AssertionError):  # the broker may close at once, or wait for more (truncated)
        await read_or_eof(reader, 1, within_s=0.3)
    writer.close()


_CASES = {
    "port check": ({"data": b""}),
    "garbage": ({"data": b"\xde\xad\xbe\xef" * 8}),
    "truncated CONNECT": ({"data": connect_packet("half")[:12]}),
    "CONNECT with reserved flag": ({"data": connect_packet("bad")[:9] + b"\x03" + connect_packet("bad")[10:]}),
    "PINGREQ before CONNECT": ({"data": b"\xc0\x00"}),
    "reset mid-PUBLISH": ({"data": b"\x30\x32\x00\x03a/b" + b"x" * 5, "after_connect": True, "reset": True}),
    "second CONNECT": ({"data": connect_packet("again"), "after_connect": True}),
    "PUBREL for an unknown id": ({"data": b"\x62\x02\x00\x09", "after_connect": True}),
}


async def test_bad_connections_log_no_error_no_traceback_and_one_warning_per_cause(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with start_broker(tmp_path) as broker:
        for _ in range(2):  # the same causes again from the same client: no more warnings
            for case in _CASES.values():
                await _send_and_close(broker.url, **case)  # type: ignore[arg-type]
        reader, writer = await open_raw(broker.url, connect_packet("good-client"))
        assert await read_or_eof(reader, 4, within_s=3) == CONNACK_OK  # the broker still serves
        writer.write(b"\xc0\x00")  # PINGREQ
        await writer.drain()
        assert await read_or_eof(reader, 2, within_s=3) == b"\xd0\x00"
        writer.close()
        _, lingering = await open_raw(broker.url, connect_packet("at-exit")[:12])  # pending when the broker stops
    lingering.close()
    gc.collect()  # a never-retrieved task exception is logged when its task is collected
    await asyncio.sleep(0)
    loud = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert loud == [], [r.getMessage() for r in loud]
    warnings = [_NUMBERS.sub("#", r.getMessage()) for r in caplog.records if r.levelno == logging.WARNING]
    repeated = {w for w in warnings if warnings.count(w) > 1}
    assert repeated == set(), warnings

import asyncio
import logging
from pathlib import Path

import pytest

from tests.fixtures.broker import broker_test_config, start_broker
from tests.fixtures.waiting import until
from tests.uns.broker.paho_client import Paho
from uns.mqtt.codec import encode_connect, encode_remaining_length
from uns.mqtt.types import Message

LIMIT = 1000


def _connect(client_id: bytes) -> bytes:
    return encode_connect(client_id=client_id.decode(), keepalive_s=60)


async def test_oversize_publish_is_dropped_and_its_client_cut_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = broker_test_config(limits={"max_payload_bytes": LIMIT})
    async with start_broker(tmp_path, config) as broker:
        sub = Paho(broker.url, "sub")
        big = Paho(broker.url, "big")
        normal = Paho(broker.url, "normal")
        local = broker.local_client("host")
        await local.subscribe(["data/#"])
        try:
            await sub.connect()
            await sub.subscribe("data/#")
            await big.connect()
            await normal.connect()
            with caplog.at_level(logging.WARNING, logger="uns.broker.core"):
                big.client.publish("data/huge", b"x" * (LIMIT + 1), qos=0)
                await until(big.disconnected.is_set, what="the oversize client to be disconnected")
            await normal.publish("data/ok", b"y" * LIMIT, qos=1)
            got = await sub.wait_messages(1)
            assert got == [Message(topic="data/ok", payload=b"y" * LIMIT, qos=1)]
            local_got = await asyncio.wait_for(anext(aiter(local.messages())), 5)
            assert local_got.topic == "data/ok"
            assert local.pending == 0
        finally:
            for client in (sub, big, normal):
                client.close()
        assert broker.stats.oversize_rejected == 1
        assert broker.stats.messages_in == 1
    warnings = [r.getMessage() for r in caplog.records if r.name == "uns.broker.core"]
    assert any("1001-byte" in text and "client big" in text and "'data/huge'" in text for text in warnings)


async def test_oversize_is_rejected_before_the_payload_is_read(tmp_path: Path) -> None:
    config = broker_test_config(limits={"max_payload_bytes": LIMIT})
    async with start_broker(tmp_path, config) as broker:
        reader, writer = await asyncio.open_connection(broker.url.host, broker.url.port)
        try:
            writer.write(_connect(b"raw"))
            assert await asyncio.wait_for(reader.readexactly(4), 5) == b"\x20\x02\x00\x00"
            topic = b"data/claims-ten-megabytes"
            claimed = 10_000_000
            header = b"\x30" + encode_remaining_length(2 + len(topic) + claimed) + len(topic).to_bytes(2, "big") + topic
            writer.write(header + b"z" * 100)  # only the start of the payload: the rest never comes
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), 5) == b""  # the broker hung up without waiting
        finally:
            writer.close()
        await until(lambda: broker.stats.oversize_rejected == 1, what="the rejection to be counted")


async def test_a_payload_at_the_limit_passes(tmp_path: Path) -> None:
    config = broker_test_config(limits={"max_payload_bytes": LIMIT})
    async with start_broker(tmp_path, config) as broker:
        local = broker.local_client("host")
        await local.subscribe(["#"])
        pub = Paho(broker.url, "pub")
        try:
            await pub.connect()
            await pub.publish("a/b", b"q" * LIMIT, qos=2)
            got = await asyncio.wait_for(anext(aiter(local.messages())), 5)
        finally:
            pub.close()
        assert got == Message(topic="a/b", payload=b"q" * LIMIT, qos=1)  # min(message 2, subscription 1)
        assert broker.stats.oversize_rejected == 0

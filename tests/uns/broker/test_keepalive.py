"""MQTT-3.1.2-24: a client silent past 1.5 x its keep-alive is disconnected and its will published."""

from __future__ import annotations

import asyncio
import socket
import time

from uns.broker import EmbeddedBroker
from uns.mqtt.client import MqttClient


def _connect_packet(client_id: bytes, keepalive: int, will_topic: bytes, will: bytes) -> bytes:
    variable = b"\x00\x04MQTT\x04" + bytes([0x02 | 0x04 | 0x08]) + keepalive.to_bytes(2, "big")  # clean, will qos1
    body = variable + len(client_id).to_bytes(2, "big") + client_id
    body += len(will_topic).to_bytes(2, "big") + will_topic + len(will).to_bytes(2, "big") + will
    return bytes([0x10, len(body)]) + body


async def test_silent_client_is_dropped_and_its_will_published(broker: EmbeddedBroker) -> None:
    async with MqttClient(url=broker.url, client_id="will-watcher") as watcher:
        await watcher.subscribe(["test/keepalive/will"], qos=1)
        sock = socket.create_connection((broker.url.host, broker.url.port))
        try:
            sock.sendall(_connect_packet(b"silent-plc", 1, b"test/keepalive/will", b"gone"))
            connack = await asyncio.get_running_loop().run_in_executor(None, sock.recv, 4)
            assert connack == bytes([0x20, 2, 0, 0])
            started = time.monotonic()
            # the socket stays open and silent: no PINGREQ, no DISCONNECT
            async with asyncio.timeout(5):
                message = await anext(aiter(watcher.messages()))
            waited = time.monotonic() - started
            assert message.topic == "test/keepalive/will"
            assert message.payload == b"gone"
            assert 1.4 <= waited <= 1.5 + 2.0  # 1.5 x keep-alive, plus scheduling slack
        finally:
            sock.close()


async def test_a_client_that_pings_stays_connected(broker: EmbeddedBroker) -> None:
    async with MqttClient(url=broker.url, client_id="will-watcher2") as watcher:
        await watcher.subscribe(["test/keepalive/will2"], qos=1)
        sock = socket.create_connection((broker.url.host, broker.url.port))
        loop = asyncio.get_running_loop()
        try:
            sock.sendall(_connect_packet(b"pinging-plc", 1, b"test/keepalive/will2", b"gone"))
            assert await loop.run_in_executor(None, sock.recv, 4) == bytes([0x20, 2, 0, 0])
            for _ in range(6):  # 3 s of PINGREQ every 0.5 s
                sock.sendall(bytes([0xC0, 0]))
                assert await loop.run_in_executor(None, sock.recv, 2) == bytes([0xD0, 0])
                await asyncio.sleep(0.5)
            assert watcher.stats.received == 0
        finally:
            sock.close()


async def test_a_client_whose_reader_the_broker_holds_is_not_silent(broker: EmbeddedBroker) -> None:
    # a full in-process subscriber holds the client's reader (back-pressure) for twice 1.5 x its keep-alive:
    # its PINGREQs wait unread in the socket, so the broker is quiet, not the client: no disconnect, no will
    slow = broker.local_client("slow", queue_size=1)
    await slow.subscribe(["test/held/#"], qos=0)
    watcher = broker.local_client("watcher")
    await watcher.subscribe(["test/keepalive/will3"], qos=0)
    reader, writer = await asyncio.open_connection(broker.url.host, broker.url.port)
    try:
        writer.write(_connect_packet(b"held-plc", 1, b"test/keepalive/will3", b"gone"))
        assert await reader.readexactly(4) == bytes([0x20, 2, 0, 0])
        writer.write(b"\x30\x0b\x00\x09test/held" * 3)  # the first fills the subscriber, the second waits
        for _ in range(6):  # 3 s of PINGREQ every 0.5 s
            writer.write(bytes([0xC0, 0]))
            await writer.drain()
            await asyncio.sleep(0.5)
        assert watcher.pending == 0  # no will
        got = []
        async for message in slow.messages():
            got.append(message.topic)
            if len(got) == 3:
                break
        assert await asyncio.wait_for(reader.readexactly(12), 2) == bytes([0xD0, 0]) * 6
        await asyncio.sleep(0.2)
        assert watcher.pending == 0
    finally:
        writer.close()

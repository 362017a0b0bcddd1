"""CONNECT: empty user names, MQTT 3.1 clients, MQTT 5 and unknown protocols refused at once.

Side by side with Mosquitto 2.0.11 where both brokers should answer alike; where we choose otherwise
(MQTT 5: Mosquitto speaks it; 3.1 client ids over 23 bytes: Mosquitto lets them in) the test says so.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.fixtures.broker import broker_test_config, start_broker
from tests.fixtures.mosquitto import run_mosquitto
from tests.fixtures.passwords import quick_hash
from tests.fixtures.requires import require
from tests.fixtures.waiting import until
from tests.uns.broker.paho_client import Paho
from uns.broker.auth import is_anonymous
from uns.broker.embedded import EmbeddedBroker
from uns.mqtt.codec import encode_connect
from uns.mqtt.types import BrokerUrl

USER, PASSWORD = "tahu-node", "pw-tahu-1"


@pytest.fixture(params=["embedded", "mosquitto"])
async def closed(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[str, BrokerUrl]]:
    """Either broker with anonymous access off."""
    if request.param == "mosquitto":
        with run_mosquitto("allow_anonymous false") as mosquitto:
            yield "mosquitto", BrokerUrl.from_str(mosquitto.url)
        return
    config = broker_test_config(
        allow_anonymous=False, users={USER: {"password_hash": quick_hash(PASSWORD), "role": "admin"}}
    )
    async with start_broker(tmp_path, config) as broker:
        yield "embedded", broker.url


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[EmbeddedBroker]:
    async with start_broker(tmp_path) as broker:
        yield broker


def _string(text: bytes) -> bytes:
    return len(text).to_bytes(2, "big") + text


def _connect_packet(
    name: bytes, level: int, client_id: bytes, *, properties: bytes | None = None, clean: bool = True
) -> bytes:
    """A CONNECT with any protocol name and level (keep-alive 30); MQTT 5 gets ``properties``."""
    body = _string(name) + bytes([level, 0x02 if clean else 0]) + (30).to_bytes(2, "big")
    if properties is not None:
        body += bytes([len(properties)]) + properties
    body += _string(client_id)
    return bytes([0x10, len(body)]) + body


async def _answer(url: BrokerUrl, packet: bytes) -> bytes:
    """What the broker sends back within 3 s (b"" when it closes without a word)."""

    def exchange() -> bytes:
        with socket.create_connection((url.host, url.port), timeout=3) as sock:
            sock.sendall(packet)
            try:
                return sock.recv(16)
            except ConnectionResetError:
                return b""

    return await asyncio.to_thread(exchange)


# --- point 2: an empty user name is anonymous -------------------------------------------------


@pytest.mark.parametrize(
    ("user", "password", "anonymous"),
    [(None, None, True), ("", None, True), ("", "", True), ("", "x", False), ("u", None, False), ("u", "", False)],
)
def test_empty_user_name_without_a_password_is_anonymous(
    user: str | None, password: str | None, anonymous: bool
) -> None:
    assert is_anonymous(user, password) is anonymous


@pytest.mark.parametrize("password", ["", None])
async def test_empty_user_name_connects_where_anonymous_access_is_on(
    target: tuple[str, BrokerUrl], unique_topic: str, password: str | None
) -> None:
    """Eclipse Tahu's JS client sends user "" and password "": anonymous, so accepted and routed."""
    _kind, url = target
    client = Paho(url, f"{unique_topic}-tahu", username="", password=password)
    try:
        assert await client.connect(expect_ok=False) == 0
        assert await client.subscribe(f"{unique_topic}/x", qos=1) == 1
        await client.publish(f"{unique_topic}/x", b"hello", qos=1)
        received = await client.wait_messages(1)
        assert received[0].payload == b"hello"
    finally:
        client.close()


@pytest.mark.parametrize("password", ["", None])
async def test_empty_user_name_is_refused_with_5_where_anonymous_access_is_off(
    closed: tuple[str, BrokerUrl], unique_topic: str, password: str | None
) -> None:
    _kind, url = closed
    packet = encode_connect(client_id=f"{unique_topic}-tahu", username="", password=password)
    assert await _answer(url, packet) == bytes([0x20, 2, 0, 5])


# --- point 5: MQTT 5 refused at once ----------------------------------------------------------


async def test_mqtt5_connect_with_properties_is_refused_at_once(embedded: EmbeddedBroker) -> None:
    """MQTT-3.1.2-2: CONNACK 1 (unacceptable protocol version) as soon as the level is read, then close.

    amqtt read the properties length as the client id length and waited 10 s for bytes never sent.
    """
    packet = _connect_packet(b"MQTT", 5, b"v5-raw", properties=b"\x11\x00\x00\x00\x3c")  # session expiry 60 s
    started = time.monotonic()
    assert await _answer(embedded.url, packet) == bytes([0x20, 2, 0, 1])
    assert time.monotonic() - started < 1.0
    assert embedded.stats.protocol_refused == 1


async def test_paho_mqtt5_client_with_connect_properties_is_refused_at_once(
    embedded: EmbeddedBroker, unique_topic: str
) -> None:
    client = Paho(embedded.url, f"{unique_topic}-v5", protocol=mqtt.MQTTv5)
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 60
    started = time.monotonic()
    try:
        client.client.connect_async(embedded.url.host, embedded.url.port, keepalive=30, properties=properties)
        client.client.loop_start()
        await until(lambda: client.connack is not None or client.disconnected.is_set(), what="the refusal")
        assert time.monotonic() - started < 1.0
        assert client.connack != 0
    finally:
        client.close()


async def test_mosquitto_sub_v5_is_refused_at_once_and_logged_once_per_client(
    embedded: EmbeddedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    command = [require("mosquitto_sub"), "-V", "5", "-h", embedded.url.host, "-p", str(embedded.url.port)]
    command += ["-t", "x", "-i", "v5-sub", "-W", "5"]
    for _attempt in range(2):
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="uns.broker.core"):
            done = await asyncio.to_thread(subprocess.run, command, capture_output=True, timeout=10, check=False)
        assert time.monotonic() - started < 1.0
        assert done.returncode != 0
        assert b"Unsupported Protocol Version" in done.stderr
    logged = [r.getMessage() for r in caplog.records if "v5-sub" in r.getMessage()]
    assert len(logged) == 1, logged  # the second refusal of the same client is held back
    assert "MQTT 5" in logged[0]
    assert "docs/deployment.md" in logged[0]
    assert embedded.stats.protocol_refused == 2


@pytest.mark.parametrize(
    ("name", "level"), [(b"MQTT", 3), (b"MQTT", 6), (b"MQIsdp", 4)], ids=["MQTT-3", "MQTT-6", "MQIsdp-4"]
)
async def test_unsupported_protocol_level_gets_connack_1(
    target: tuple[str, BrokerUrl], name: bytes, level: int
) -> None:
    _kind, url = target
    assert await _answer(url, _connect_packet(name, level, b"lvl")) == bytes([0x20, 2, 0, 1])


async def test_unknown_protocol_name_is_closed_without_connack(target: tuple[str, BrokerUrl]) -> None:
    """MQTT-3.1.2-1: the server MAY disconnect without CONNACK; both do."""
    _kind, url = target
    assert await _answer(url, _connect_packet(b"MQTX", 4, b"bad-name")) == b""


# --- point 6: MQTT 3.1 clients ----------------------------------------------------------------


async def test_mqtt31_client_connects_subscribes_and_receives(target: tuple[str, BrokerUrl], unique_topic: str) -> None:
    """MQTT 3.1 (``MQIsdp``, level 3) clients are accepted, as Mosquitto accepts them; amqtt dropped them."""
    _kind, url = target
    client = Paho(url, "paho31-client", protocol=mqtt.MQTTv31)
    publisher = Paho(url, f"{unique_topic}-pub")
    try:
        assert await client.connect(expect_ok=False) == 0
        assert await client.subscribe(f"{unique_topic}/#", qos=1) == 1
        await publisher.connect()
        await publisher.publish(f"{unique_topic}/a", b"from 3.1.1", qos=1)
        await client.publish(f"{unique_topic}/b", b"from 3.1", qos=1)
        received = await client.wait_messages(2)
        assert sorted((m.topic, m.payload, m.qos) for m in received) == [
            (f"{unique_topic}/a", b"from 3.1.1", 1),
            (f"{unique_topic}/b", b"from 3.1", 1),
        ]
    finally:
        client.close()
        publisher.close()


@pytest.mark.parametrize(("length", "embedded_code", "mosquitto_code"), [(1, 0, 0), (23, 0, 0), (0, 2, 2), (24, 2, 0)])
async def test_mqtt31_client_id_length(
    target: tuple[str, BrokerUrl], length: int, embedded_code: int, mosquitto_code: int
) -> None:
    """MQTT 3.1 allows 1 to 23 bytes; we refuse others with CONNACK 2, Mosquitto 2.0.11 lets longer ones in."""
    kind, url = target
    expected = embedded_code if kind == "embedded" else mosquitto_code
    packet = _connect_packet(b"MQIsdp", 3, b"c" * length)
    assert await _answer(url, packet) == bytes([0x20, 2, 0, expected])


async def test_mqtt31_connack_never_says_session_present(target: tuple[str, BrokerUrl], unique_topic: str) -> None:
    """In MQTT 3.1 the CONNACK's first byte is reserved: a resumed 3.1 session still gets 0 there."""
    _kind, url = target
    client_id = f"p31-{len(unique_topic)}".encode()
    for _attempt in range(2):
        assert await _answer(url, _connect_packet(b"MQIsdp", 3, client_id, clean=False)) == bytes([0x20, 2, 0, 0])
    assert await _answer(url, _connect_packet(b"MQIsdp", 3, client_id)) == bytes([0x20, 2, 0, 0])  # clean up

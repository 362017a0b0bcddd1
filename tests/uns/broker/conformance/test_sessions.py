"""MQTT 3.1.1 sessions: Session Present, clean sessions, offline queueing, redelivery with DUP, queue bound.

Every test runs against the embedded broker and against Mosquitto, the reference; both must pass.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.broker import broker_test_config, start_broker
from tests.fixtures.mosquitto import run_mosquitto
from tests.fixtures.passwords import quick_hash
from tests.fixtures.requires import require
from tests.fixtures.waiting import until
from tests.uns.broker.paho_client import Paho
from uns.mqtt.codec import encode_connect
from uns.mqtt.types import BrokerUrl

USER, PASSWORD = "line1-plc", "s3cret-pw"
_ids = itertools.count()


@dataclass(frozen=True)
class Target:
    """A running broker under test."""

    kind: str
    url: BrokerUrl
    user: str | None = None
    password: str | None = None


def uid(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


class Client(Paho):
    """Paho that also records the Session Present flag of its last CONNACK."""

    session_present: bool | None = None

    def _on_connect(self, client: object, userdata: object, flags: object, rc, props: object) -> None:
        self.session_present = bool(getattr(flags, "session_present", False))
        super()._on_connect(client, userdata, flags, rc, props)


def _client(target: Target, client_id: str, *, clean: bool, auth: bool = False) -> Client:
    user, password = (target.user, target.password) if auth else (None, None)
    return Client(target.url, client_id, clean_session=clean, username=user, password=password)


@pytest.fixture(scope="module")
def mosquitto_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """Mosquitto with one user (password file) and anonymous access off."""
    folder = tmp_path_factory.mktemp("mosquitto-auth")
    password_file = folder / "passwd"
    subprocess.run(
        [require("mosquitto_passwd"), "-b", "-c", str(password_file), USER, PASSWORD], check=True, capture_output=True
    )
    password_file.chmod(0o600)
    # "user root": when the tests run as root, mosquitto would drop to user mosquitto and not read tmp files
    with run_mosquitto(f"user root\nallow_anonymous false\npassword_file {password_file}") as broker:
        yield Target("mosquitto", BrokerUrl.from_str(broker.url), USER, PASSWORD)


@pytest.fixture(params=["embedded", "mosquitto"])
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Target]:
    """Either broker, anonymous access allowed."""
    if request.param == "mosquitto":
        yield Target("mosquitto", BrokerUrl.from_str(request.getfixturevalue("mosquitto").url))
        return
    async with start_broker(tmp_path) as broker:
        yield Target("embedded", broker.url)


@pytest.fixture(params=["embedded", "mosquitto"])
async def auth_target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Target]:
    """Either broker with one user and no anonymous access."""
    if request.param == "mosquitto":
        yield request.getfixturevalue("mosquitto_auth")
        return
    config = broker_test_config(
        allow_anonymous=False, users={USER: {"password_hash": quick_hash(PASSWORD), "role": "admin"}}
    )
    async with start_broker(tmp_path, config) as broker:
        yield Target("embedded", broker.url, USER, PASSWORD)


async def _connect(client: Client) -> bool:
    await client.connect()
    assert client.session_present is not None
    return client.session_present


async def _offline_publish(target: Target, topic: str, payloads: list[bytes], qos: int) -> None:
    publisher = _client(target, uid("pub"), clean=True, auth=target.user is not None)
    await publisher.connect()
    try:
        for payload in payloads:
            await publisher.publish(topic, payload, qos=qos)
    finally:
        publisher.close()


async def _disconnect(client: Client) -> None:
    client.close()
    await until(client.disconnected.is_set, what=f"{client.client_id} disconnected")


# --- Session Present and clean sessions --------------------------------------------------------


async def test_session_present_is_0_for_a_new_session_and_1_when_resumed(target: Target, unique_topic: str) -> None:
    """MQTT-3.2.2-2 and MQTT-3.2.2-3."""
    client_id = uid("sp")
    first = _client(target, client_id, clean=False)
    assert await _connect(first) is False  # no session yet
    await first.subscribe(f"{unique_topic}/#", qos=1)
    await _disconnect(first)
    again = _client(target, client_id, clean=False)
    try:
        assert await _connect(again) is True
    finally:
        again.close()


async def test_clean_session_reports_no_session_and_discards_the_old_one(target: Target, unique_topic: str) -> None:
    """MQTT-3.2.2-1 (Session Present 0 with clean_session=1) and MQTT-3.1.2-6 (the old session is gone)."""
    client_id = uid("clean")
    persistent = _client(target, client_id, clean=False)
    await _connect(persistent)
    await persistent.subscribe(f"{unique_topic}/old", qos=1)
    await _disconnect(persistent)
    clean = _client(target, client_id, clean=True)
    assert await _connect(clean) is False
    await _disconnect(clean)
    await _offline_publish(target, f"{unique_topic}/old", [b"must not arrive"], qos=1)
    back = _client(target, client_id, clean=False)
    try:
        assert await _connect(back) is False  # the clean session ended at its disconnect
        await back.subscribe(f"{unique_topic}/marker", qos=1)
        await _offline_publish(target, f"{unique_topic}/marker", [b"marker"], qos=1)
        received = await back.wait_messages(1)
        assert [(m.topic, m.payload) for m in received] == [(f"{unique_topic}/marker", b"marker")]
    finally:
        back.close()


# --- offline queueing ----------------------------------------------------------------------------


async def _queued_while_offline(target: Target, topic_root: str, qos: int, *, auth: bool) -> None:
    client_id = uid(f"q{qos}")
    subscriber = _client(target, client_id, clean=False, auth=auth)
    await _connect(subscriber)
    assert await subscriber.subscribe(f"{topic_root}/#", qos=qos) == qos
    await _disconnect(subscriber)
    payloads = [f"m{i}".encode() for i in range(5)]
    await _offline_publish(target, f"{topic_root}/x", payloads, qos=qos)
    back = _client(target, client_id, clean=False, auth=auth)
    try:
        assert await _connect(back) is True
        received = await back.wait_messages(5)
        assert [m.payload for m in received] == payloads  # all of them, in order
        assert {m.qos for m in received} == {qos}
        assert not any(m.retain for m in received)  # queued messages are not retained ones
    finally:
        back.close()


@pytest.mark.parametrize("qos", [1, 2])
async def test_anonymous_persistent_session_gets_what_was_published_while_offline(
    target: Target, unique_topic: str, qos: int
) -> None:
    """MQTT-3.1.2-4/5: QoS 1 and 2 messages are stored for an offline clean_session=0 client."""
    await _queued_while_offline(target, unique_topic, qos, auth=False)


@pytest.mark.parametrize("qos", [1, 2])
async def test_authenticated_persistent_session_gets_what_was_published_while_offline(
    auth_target: Target, unique_topic: str, qos: int
) -> None:
    """MQTT-3.1.2-4/5 for a client that logged in with a user name and password."""
    await _queued_while_offline(auth_target, unique_topic, qos, auth=True)


async def test_qos0_is_not_queued_for_an_offline_client(target: Target, unique_topic: str) -> None:
    """Both brokers drop QoS 0 for offline clients (Mosquitto: queue_qos0_messages false, the default)."""
    client_id = uid("q0")
    subscriber = _client(target, client_id, clean=False)
    await _connect(subscriber)
    await subscriber.subscribe(f"{unique_topic}/#", qos=1)
    await _disconnect(subscriber)
    publisher = _client(target, uid("pub"), clean=True)
    await publisher.connect()
    try:
        await publisher.publish(f"{unique_topic}/zero", b"q0", qos=0)
        await publisher.publish(f"{unique_topic}/one", b"q1", qos=1)
    finally:
        publisher.close()
    back = _client(target, client_id, clean=False)
    try:
        await _connect(back)
        received = await back.wait_messages(1)
        await asyncio.sleep(0.2)  # a QoS 0 message would come before the QoS 1 one; give a stray one room
        assert [m.payload for m in back.received] == [b"q1"], received
    finally:
        back.close()


# --- redelivery of unacknowledged messages -----------------------------------------------------


class RawClient:
    """A blocking MQTT socket client that never acknowledges anything (run in a thread)."""

    def __init__(self, url: BrokerUrl) -> None:
        self.sock = socket.create_connection((url.host, url.port), timeout=5)
        self._buffer = b""

    def _exact(self, size: int) -> bytes:
        while len(self._buffer) < size:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("broker closed the connection")
            self._buffer += chunk
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def packet(self) -> tuple[int, bytes]:
        """(first byte, body) of the next packet."""
        first = self._exact(1)[0]
        length, shift = 0, 0
        while True:
            byte = self._exact(1)[0]
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        return first, self._exact(length)

    def connect(self, client_id: str) -> bool:
        self.sock.sendall(encode_connect(client_id=client_id, clean_session=False, keepalive_s=60))
        first, body = self.packet()
        assert first == 0x20, first
        assert body[1] == 0, body  # accepted
        return bool(body[0] & 1)

    def subscribe(self, topic_filter: str, qos: int) -> None:
        name = topic_filter.encode()
        body = b"\x00\x01" + len(name).to_bytes(2, "big") + name + bytes([qos])
        self.sock.sendall(bytes([0x82, len(body)]) + body)
        first, _body = self.packet()
        assert first == 0x90

    def publish(self) -> tuple[bool, int, str, bytes]:
        """(dup, packet id, topic, payload) of the next PUBLISH (QoS 1/2)."""
        first, body = self.packet()
        assert first >> 4 == 3, first
        size = int.from_bytes(body[:2], "big")
        topic = body[2 : 2 + size].decode()
        packet_id = int.from_bytes(body[2 + size : 4 + size], "big")
        return bool(first & 0x08), packet_id, topic, body[4 + size :]

    def close(self) -> None:
        self.sock.close()


async def test_unacknowledged_qos1_is_resent_with_dup_on_reconnect(target: Target, unique_topic: str) -> None:
    """MQTT-4.4.0-1: on reconnect with clean_session=0, unacknowledged PUBLISHes are re-sent, DUP=1, in order."""
    client_id = uid("dup")
    run = asyncio.to_thread
    raw = RawClient(target.url)
    try:
        assert await run(raw.connect, client_id) is False
        await run(raw.subscribe, f"{unique_topic}/#", 1)
        await _offline_publish(target, f"{unique_topic}/a", [b"first", b"second"], qos=1)
        sent = [await run(raw.publish), await run(raw.publish)]
        assert [(dup, payload) for dup, _id, _topic, payload in sent] == [(False, b"first"), (False, b"second")]
    finally:
        raw.close()  # no PUBACK ever went back
    raw = RawClient(target.url)
    try:
        assert await run(raw.connect, client_id) is True
        again = [await run(raw.publish), await run(raw.publish)]
        assert [(dup, payload) for dup, _id, _topic, payload in again] == [(True, b"first"), (True, b"second")]
        assert [packet_id for _dup, packet_id, _t, _p in again] == [packet_id for _dup, packet_id, _t, _p in sent]
    finally:
        raw.close()


# --- bound on a session's queue ------------------------------------------------------------------


async def test_full_queue_drops_the_oldest_and_counts_it(tmp_path: Path, unique_topic: str) -> None:
    """Embedded only: limits.max_queued_messages=5, 8 published while offline -> the newest 5 arrive."""
    config = broker_test_config(limits={"max_queued_messages": 5})
    async with start_broker(tmp_path, config) as broker:
        target = Target("embedded", broker.url)
        client_id = uid("bound")
        subscriber = _client(target, client_id, clean=False)
        await _connect(subscriber)
        await subscriber.subscribe(f"{unique_topic}/#", qos=1)
        await _disconnect(subscriber)
        payloads = [f"m{i}".encode() for i in range(8)]
        await _offline_publish(target, f"{unique_topic}/x", payloads, qos=1)
        back = _client(target, client_id, clean=False)
        try:
            await _connect(back)
            received = await back.wait_messages(5)
            await asyncio.sleep(0.2)  # nothing beyond the five may follow
            assert [m.payload for m in back.received] == payloads[3:], received
        finally:
            back.close()
        assert broker.stats.queued_dropped == 3


async def test_mosquitto_full_queue_drops_the_newest(unique_topic: str) -> None:
    """Mosquitto's max_queued_messages keeps the OLDEST messages and drops new ones (documented difference)."""
    with run_mosquitto("max_queued_messages 5") as mosquitto:
        target = Target("mosquitto", BrokerUrl.from_str(mosquitto.url))
        client_id = uid("mbound")
        subscriber = _client(target, client_id, clean=False)
        await _connect(subscriber)
        await subscriber.subscribe(f"{unique_topic}/#", qos=1)
        await _disconnect(subscriber)
        payloads = [f"m{i}".encode() for i in range(8)]
        await _offline_publish(target, f"{unique_topic}/x", payloads, qos=1)
        back = _client(target, client_id, clean=False)
        try:
            await _connect(back)
            await back.wait_messages(5)
            await asyncio.sleep(0.2)
            assert [m.payload for m in back.received] == payloads[:5]
        finally:
            back.close()

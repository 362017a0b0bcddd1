import asyncio
import contextlib
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.fixtures.mosquitto import Mosquitto, free_port, readable_by_mosquitto, run_mosquitto
from tests.fixtures.requires import require
from tests.uns.mqtt.helpers import take, url, wait_until
from uns.errors import BrokerError, BrokerUnreachable
from uns.mqtt import MqttClient, codec
from uns.mqtt.types import BrokerUrl, Message


async def test_nothing_listening_is_unreachable_with_advice() -> None:
    with pytest.raises(BrokerUnreachable, match="connection refused: is the broker running"):
        async with MqttClient(url=url(free_port()), client_id="nobody"):
            pass


class FakeBroker:
    """A scripted MQTT peer on a real socket: answers CONNECT, optionally PINGREQ, and sends what a test says."""

    def __init__(
        self,
        *,
        answer_ping: bool = True,
        after_connack: bytes = b"",
        connack: bytes = b"\x20\x02\x00\x00",
        suback_codes: tuple[int, ...] = (),
    ):
        self.suback_codes = suback_codes
        self.answer_ping = answer_ping
        self.after_connack = after_connack
        self.connack = connack
        self.connections = 0
        self.pings = 0
        self.port = 0
        self._writers: list[asyncio.StreamWriter] = []
        self._handlers: set[asyncio.Task[None]] = set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.append(writer)
        try:
            await reader.read(1024)  # CONNECT
            if self.connack:
                writer.write(self.connack + self.after_connack)
            while data := await reader.read(1024):
                self.pings += data.count(codec.encode_pingreq())
                if self.answer_ping and codec.encode_pingreq() in data:
                    writer.write(b"\xd0\x00")
                if data[0] == 0x82:  # SUBSCRIBE (short): grant or refuse as scripted
                    writer.write(codec.encode(codec.SubAck(int.from_bytes(data[2:4], "big"), self.suback_codes)))
        except ConnectionError:
            pass
        finally:
            writer.close()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator["FakeBroker"]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        async with server:
            try:
                yield self
            finally:
                server.close()
                for writer in self._writers:
                    writer.close()  # ends each handler's read loop
                await asyncio.gather(*self._handlers)


async def test_silent_port_times_out_naming_the_deadline() -> None:
    async with FakeBroker(connack=b"").running() as fake:
        with pytest.raises(BrokerUnreachable, match=r"no answer within 0.3s"):
            async with MqttClient(url=url(fake.port), client_id="c", connect_timeout_s=0.3):
                pass


async def test_missing_pingresp_drops_the_connection_and_reconnects() -> None:
    async with (
        FakeBroker(answer_ping=False).running() as fake,
        MqttClient(url=url(fake.port), client_id="c", keepalive_s=0.2) as client,
    ):
        await wait_until(lambda: fake.connections >= 2, timeout_s=5, what="reconnected")
        await wait_until(lambda: client.connected, timeout_s=5)
        assert fake.pings >= 1
        assert client.stats.reconnects >= 1


async def test_idle_connection_pings_and_stays_up() -> None:
    async with (
        FakeBroker(answer_ping=True).running() as fake,
        MqttClient(url=url(fake.port), client_id="c", keepalive_s=0.3) as client,
    ):
        await wait_until(lambda: fake.pings >= 2, timeout_s=5, what="two pings")
        assert fake.connections == 1
        assert client.stats.reconnects == 0


async def test_malformed_bytes_keep_earlier_messages_and_reconnect() -> None:
    good = codec.encode(codec.Publish("t", b"kept"))
    async with (
        FakeBroker(after_connack=good + b"\xf0\x00").running() as fake,
        MqttClient(url=url(fake.port), client_id="c") as client,
    ):
        [got] = await take(client, 1)
        assert got.payload == b"kept"
        await wait_until(lambda: fake.connections >= 2, timeout_s=5, what="reconnected")
        assert client.stats.protocol_errors >= 1


async def test_tasks_are_named_and_gone_after_exit(mosquitto: Mosquitto) -> None:
    async with MqttClient(url=BrokerUrl.from_str(mosquitto.url), client_id="named"):
        names = {t.get_name() for t in asyncio.all_tasks()}
        assert "mqtt[named].supervisor" in names
    assert not any(t.get_name().startswith("mqtt[named]") for t in asyncio.all_tasks())


async def test_reconnect_after_broker_restart_restores_subscriptions_and_resends() -> None:
    port = free_port()
    connects = 0

    async def on_connect() -> None:
        nonlocal connects
        connects += 1

    with run_mosquitto(port=port):
        client = MqttClient(url=url(port), client_id="phoenix", on_connect=on_connect)
        await client.__aenter__()
        await client.subscribe(["r/#"], qos=1)
    try:
        # the broker is gone: the client notices, and publishes wait rather than drop
        await wait_until(lambda: not client.connected, what="disconnected")
        assert connects == 1
        offline_qos0 = asyncio.create_task(client.publish("r/q0", b"held", qos=0))
        offline_qos1 = asyncio.create_task(client.publish("r/q1", b"acked later", qos=1))
        await offline_qos0  # held in the offline buffer
        await asyncio.sleep(0)
        assert not offline_qos1.done()
        with run_mosquitto(port=port):
            await wait_until(lambda: connects == 2, timeout_s=10, what="on_connect after reconnect")
            await asyncio.wait_for(offline_qos1, 5)
            await client.publish("r/live", b"live", qos=1)
            got = await take(client, 3)
            assert {m.payload for m in got} == {b"held", b"acked later", b"live"}
            assert client.stats.reconnects == 1
    finally:
        await client.__aexit__(None, None, None)


async def test_subscriptions_survive_a_broker_restart() -> None:
    port = free_port()
    with run_mosquitto(port=port):
        client = MqttClient(url=url(port), client_id="resub")
        await client.__aenter__()
        await client.subscribe(["r/#"], qos=1)
    try:
        await wait_until(lambda: not client.connected, what="disconnected")
        pending = asyncio.create_task(client.publish("r/1", b"sent while down", qos=1))
        with run_mosquitto(port=port):
            await asyncio.wait_for(pending, 10)  # re-sent after the subscription was restored
            await client.publish("r/2", b"after", qos=1)
            got = await take(client, 2)
            assert [m.payload for m in got] == [b"sent while down", b"after"]
    finally:
        await client.__aexit__(None, None, None)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    tool = require("mosquitto_passwd")
    workdir = tmp_path_factory.mktemp("secured")
    passwords = workdir / "passwd"
    subprocess.run([tool, "-c", "-b", str(passwords), "alice", "s3cret"], check=True)
    acl = workdir / "acl"
    acl.write_text("user alice\ntopic readwrite allowed/#\n")
    readable_by_mosquitto(workdir, passwords, acl)
    with run_mosquitto(f"allow_anonymous false\npassword_file {passwords}\nacl_file {acl}\n") as broker:
        yield broker


@pytest.mark.parametrize(("user", "password"), [("alice", "wrong"), ("mallory", "s3cret"), (None, None)])
async def test_bad_credentials_raise_broker_error_with_advice(
    secured: Mosquitto, user: str | None, password: str | None
) -> None:
    with pytest.raises(BrokerError, match="check the username/password in the broker URL") as caught:
        async with MqttClient(url=url(secured.port, user, password), client_id="intruder"):
            pass
    assert not isinstance(caught.value, BrokerUnreachable)
    assert "wrong" not in str(caught.value)  # the password is never echoed


async def test_a_will_factory_s_own_error_is_raised_as_itself_not_as_the_broker_s(mosquitto: Mosquitto) -> None:
    # a will made for each CONNECT (an edge node saves its bdSeq there): its failure (a full disk) is not the
    # broker's, so it is not turned into BrokerUnreachable with advice to check --broker, nor retried as one
    made: list[int] = []

    def will() -> Message:
        made.append(1)
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left on device") as raised:
        async with MqttClient(url=url(mosquitto.port), client_id="will-fails", will=will):
            pass
    assert not isinstance(raised.value, BrokerError)
    assert made == [1]


async def test_good_credentials_connect(secured: Mosquitto) -> None:
    async with MqttClient(url=url(secured.port, "alice", "s3cret"), client_id="alice") as client:
        await client.subscribe(["allowed/#"])
        await client.publish("allowed/x", b"ok", qos=1)
        [got] = await take(client, 1)
        assert got.topic == "allowed/x"


async def test_refused_subscription_names_each_refused_filter() -> None:
    # (mosquitto 2.0 grants every 3.1.1 SUBSCRIBE and filters delivery instead: script the refusal)
    async with (
        FakeBroker(suback_codes=(1, 0x80, 0, 0x80)).running() as fake,
        MqttClient(url=url(fake.port), client_id="c") as client,
    ):
        with pytest.raises(BrokerError, match=r"refused for 'b/#', 'd': check the topic ACL"):
            await client.subscribe(["a", "b/#", "c", "d"])
        assert sorted(client._subscriptions) == ["a", "c"]  # refused ones are not restored


async def test_publish_many_while_offline_is_held_then_sent() -> None:
    port = free_port()
    with run_mosquitto(port=port):
        client = MqttClient(url=url(port), client_id="holder", max_queued=100)
        await client.__aenter__()
        await client.subscribe(["h/#"], qos=0)
    try:
        await wait_until(lambda: not client.connected, what="disconnected")
        await client.publish_many([Message(f"h/{i}", b"%d" % i) for i in range(50)])  # fits: returns at once
        with run_mosquitto(port=port):
            got = await take(client, 50)
            assert [m.payload for m in got] == [b"%d" % i for i in range(50)]
    finally:
        await client.__aexit__(None, None, None)


async def test_mqtts_with_a_trusted_ca_round_trips(tls_broker: tuple[Mosquitto, Path]) -> None:
    broker, cert = tls_broker
    context = ssl.create_default_context(cafile=str(cert))
    tls_url = BrokerUrl(scheme="mqtts", host="127.0.0.1", port=broker.port)
    async with MqttClient(url=tls_url, client_id="tls", ssl_context=context) as client:
        await client.subscribe(["tls/#"])
        await client.publish("tls/x", b"secret", qos=1)
        [got] = await take(client, 1)
        assert got.payload == b"secret"


async def test_mqtts_with_an_untrusted_certificate_is_unreachable(tls_broker: tuple[Mosquitto, Path]) -> None:
    broker, _ = tls_broker
    tls_url = BrokerUrl(scheme="mqtts", host="127.0.0.1", port=broker.port)
    with pytest.raises(BrokerUnreachable, match="TLS handshake failed"):
        async with MqttClient(url=tls_url, client_id="tls"):  # the system trust store does not know it
            pass


async def test_disconnected_says_why_and_a_client_without_reconnect_is_then_finished() -> None:
    async with (
        FakeBroker(answer_ping=False).running() as fake,
        MqttClient(url=url(fake.port), client_id="c", keepalive_s=0.2, reconnect=False) as client,
    ):
        async with asyncio.timeout(5):
            reason = await client.disconnected()
        assert reason == "no PINGRESP within 0.2s"
        assert not client.connected
        await asyncio.sleep(0.5)
        assert fake.connections == 1  # no reconnect of its own: the owner decides
        with pytest.raises(BrokerError, match="reconnect is off"):
            await client.publish("t", b"x", qos=1)
        assert await client.disconnected()  # not connected: returns at once


async def test_disconnected_returns_each_time_a_reconnecting_client_loses_its_connection() -> None:
    async with (
        FakeBroker(answer_ping=False).running() as fake,
        MqttClient(url=url(fake.port), client_id="c", keepalive_s=0.2) as client,
    ):
        for connection in (1, 2):
            async with asyncio.timeout(5):
                assert await client.disconnected() == "no PINGRESP within 0.2s"

            def reconnected(n: int = connection) -> bool:
                return fake.connections > n and client.connected

            await wait_until(reconnected, timeout_s=5)
        assert client.stats.reconnects >= 2

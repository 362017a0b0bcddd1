import asyncio
import logging
import socket
import time
from pathlib import Path

import pytest

from tests.fixtures.broker import broker_test_config, start_broker
from tests.fixtures.tls import self_signed_cert
from tests.fixtures.waiting import until
from tests.uns.broker.paho_client import Paho
from uns.broker import EmbeddedBroker, hash_password
from uns.errors import BrokerError, ConfigError
from uns.mqtt.types import Message

NOT_AUTHORIZED = 135  # paho reports CONNACK 5 (3.1.1) as MQTT 5 reason 135


async def test_tcp_and_ws_listeners_on_port_zero(tmp_path: Path) -> None:
    config = broker_test_config(listeners={"tcp": {"port": 0}, "ws": {"port": 0}})
    async with start_broker(tmp_path, config) as broker:
        assert broker.url.port != 0
        assert broker.ws_url is not None
        ws_port = int(broker.ws_url.rsplit(":", 1)[1])
        assert ws_port not in (0, broker.url.port)
        assert broker.tls_url is None
        tcp = Paho(broker.url, "tcp-sub")
        web = Paho(broker.url, "ws-pub", transport="websockets", ws_port=ws_port)
        try:
            await tcp.connect()
            await web.connect()
            assert await tcp.subscribe("plant/#", qos=1) == 1
            assert await web.subscribe("plant/#", qos=0) == 0
            await web.publish("plant/line1/temp", b"21.5", qos=1)
            got = await tcp.wait_messages(1)
            assert got == [Message(topic="plant/line1/temp", payload=b"21.5", qos=1)]
            assert (await web.wait_messages(1))[0].payload == b"21.5"
        finally:
            tcp.close()
            web.close()
        assert broker.stats.messages_in == 1
        assert broker.stats.connections_total == 2


async def test_retained_message_reaches_a_later_subscriber(broker: EmbeddedBroker) -> None:
    pub = Paho(broker.url, "pub")
    watcher = Paho(broker.url, "watcher")  # seeing a message proves the broker has handled it
    late = Paho(broker.url, "late")
    try:
        await pub.connect()
        await watcher.connect()
        await watcher.subscribe("plant/#")
        await pub.publish("plant/state", b"running", qos=1, retain=True)
        await pub.publish("plant/gone", b"x", qos=1, retain=True)
        await pub.publish("plant/gone", b"", qos=1, retain=True)  # empty payload clears it
        seen = await watcher.wait_messages(3)
        assert [m.retain for m in seen] == [False, False, False]  # live deliveries carry retain=0
        await late.connect()
        assert await late.subscribe("plant/#", qos=1) == 1
        await pub.publish("plant/marker", b"m", qos=1)
        got = await late.wait_messages(2)
        assert got[0] == Message(topic="plant/state", payload=b"running", qos=1, retain=True)
        assert got[1] == Message(topic="plant/marker", payload=b"m", qos=1, retain=False)
        assert len(got) == 2  # plant/gone was cleared
    finally:
        for client in (pub, watcher, late):
            client.close()


async def test_qos_is_the_lower_of_message_and_subscription(broker: EmbeddedBroker) -> None:
    sub = Paho(broker.url, "sub")
    pub = Paho(broker.url, "pub")
    try:
        await sub.connect()
        await pub.connect()
        await sub.subscribe("q/#", qos=1)
        await pub.publish("q/zero", b"0", qos=0)
        await pub.publish("q/two", b"2", qos=2)
        got = await sub.wait_messages(2)
        assert {m.topic: m.qos for m in got} == {"q/zero": 0, "q/two": 1}
    finally:
        sub.close()
        pub.close()


async def test_will_is_published_when_a_client_dies(broker: EmbeddedBroker) -> None:
    watcher = Paho(broker.url, "watcher")
    dying = Paho(broker.url, "dying")
    local = broker.local_client("host")
    await local.subscribe(["spBv1.0/#"])
    try:
        await watcher.connect()
        await watcher.subscribe("spBv1.0/#", qos=1)
        dying.will_set("spBv1.0/g/NDEATH/n", b"bdSeq=3", qos=1)
        await dying.connect()
        dying.kill()
        got = await watcher.wait_messages(1)
        assert got[0] == Message(topic="spBv1.0/g/NDEATH/n", payload=b"bdSeq=3", qos=1)
        local_got = await asyncio.wait_for(anext(aiter(local.messages())), 5)
        assert local_got == Message(topic="spBv1.0/g/NDEATH/n", payload=b"bdSeq=3", qos=1)
    finally:
        watcher.close()


async def test_clean_disconnect_sends_no_will(broker: EmbeddedBroker) -> None:
    watcher = Paho(broker.url, "watcher")
    polite = Paho(broker.url, "polite")
    try:
        await watcher.connect()
        await watcher.subscribe("will/#")
        polite.will_set("will/polite", b"dead")
        await polite.connect()
        polite.close()
        await watcher.subscribe("marker")
        await watcher.publish("marker", b"m", qos=1)
        assert [m.topic for m in await watcher.wait_messages(1)] == ["marker"]
    finally:
        watcher.close()


@pytest.fixture(scope="module")
def secret_hash() -> str:
    return hash_password("right")


async def test_auth_good_bad_and_anonymous(tmp_path: Path, secret_hash: str, caplog: pytest.LogCaptureFixture) -> None:
    config = broker_test_config(allow_anonymous=False, users={"op": {"password_hash": secret_hash, "role": "admin"}})
    async with start_broker(tmp_path, config) as broker:
        assert not broker.anonymous
        good = Paho(broker.url, "good", username="op", password="right")  # noqa: S106
        bad = Paho(broker.url, "bad", username="op", password="wrong")  # noqa: S106
        ghost = Paho(broker.url, "ghost", username="nobody", password="x")  # noqa: S106
        anon = Paho(broker.url, "anon")
        try:
            with caplog.at_level(logging.WARNING, logger="uns.broker.auth"):
                assert await good.connect() == 0
                assert await bad.connect(expect_ok=False) == NOT_AUTHORIZED
                assert await ghost.connect(expect_ok=False) == NOT_AUTHORIZED
                assert await anon.connect(expect_ok=False) == NOT_AUTHORIZED
        finally:
            for client in (good, bad, ghost, anon):
                client.close()
        assert broker.stats.auth_failures == 3
        assert broker.stats.connections_total == 1
    refusals = [r.getMessage() for r in caplog.records if r.name == "uns.broker.auth"]
    assert any("user op" in text and "wrong password" in text for text in refusals)
    assert any("anonymous access is off" in text for text in refusals)
    assert all("right" not in text for text in refusals)  # never log a password


async def test_port_in_use_says_what_to_do(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = broker_test_config(listeners={"tcp": {"port": port}})
        with pytest.raises(ConfigError) as caught:  # the setting's to change: exit 2, as the web's port
            async with start_broker(tmp_path, config):
                pass
    assert str(caught.value) == (
        f"broker: broker.mqtt_port: 127.0.0.1:{port} is in use: choose another port with --mqtt-port / UNS_MQTT_PORT,"
        f" or 0 for any free port (got {port})"
    )


async def test_a_tls_port_in_use_names_the_environment_variable_that_sets_it(tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        tls = {"bind": "127.0.0.1", "port": port, "certfile": str(cert), "keyfile": str(key)}
        config = broker_test_config(listeners={"tcp": {"port": 0}, "tls": tls})
        with pytest.raises(ConfigError) as caught:
            async with start_broker(tmp_path, config):
                pass
    # docs/configuration.md: --tls-port's variable is UNS_BROKER__TLS_PORT (UNS_TLS_PORT is read by nothing)
    assert str(caught.value) == (
        f"broker: broker.tls_port: 127.0.0.1:{port} is in use: choose another port with --tls-port /"
        f" UNS_BROKER__TLS_PORT, or 0 for any free port (got {port})"
    )


async def test_failed_start_closes_what_started(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ws_port = taken.getsockname()[1]
        with socket.socket() as probe:  # a port free now, for the tcp listener
            probe.bind(("127.0.0.1", 0))
            tcp_port = probe.getsockname()[1]
        config = broker_test_config(listeners={"tcp": {"port": tcp_port}, "ws": {"port": ws_port}})
        with pytest.raises(ConfigError, match=r"broker\.ws_port: .* --ws-port / UNS_WS_PORT"):
            async with start_broker(tmp_path, config):
                pass
    with socket.socket() as again:  # the tcp listener that did start was closed again
        again.bind(("127.0.0.1", tcp_port))


async def test_exit_is_quick_with_clients_connected(tmp_path: Path) -> None:
    clients = []
    async with start_broker(tmp_path) as broker:
        for index in range(5):
            client = Paho(broker.url, f"c{index}")
            await client.connect()
            await client.subscribe("#")
            clients.append(client)
        await until(lambda: broker.stats.connections == 5, what="5 connections")
        started = time.monotonic()
    elapsed = time.monotonic() - started
    for client in clients:
        client.close()
    assert elapsed < 2.0
    assert (tmp_path / "broker").is_dir()


async def test_url_before_enter_is_an_error(tmp_path: Path) -> None:
    broker = start_broker(tmp_path)
    with pytest.raises(BrokerError, match="not running"):
        _ = broker.url


async def test_anonymous_warning_is_loud(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="uns.broker.embedded"):
        async with start_broker(tmp_path):
            pass
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "uns.broker.embedded"]
    assert any(level == logging.WARNING and "ANONYMOUS ACCESS IS ON" in text for level, text in lines)
    assert sum(1 for level, text in lines if level == logging.INFO and "listening" in text) == 1


async def test_retained_are_not_replayed_on_reconnect(broker: EmbeddedBroker) -> None:
    other = Paho(broker.url, "other")
    await other.connect()
    await other.subscribe("elsewhere/#")  # amqtt 0.12.1 would send "elsewhere/x" to any reconnecting session
    writer = broker.local_client("writer")
    await writer.publish("mine/x", b"1", qos=1, retain=True)
    await writer.publish("elsewhere/x", b"2", qos=1, retain=True)
    first = Paho(broker.url, "persistent", clean_session=False)
    await first.connect()
    await first.subscribe("mine/#", qos=1)
    assert [m.topic for m in await first.wait_messages(1)] == ["mine/x"]
    first.close()
    await until(lambda: broker.stats.connections == 1, what="the first connection to end")
    await asyncio.sleep(1.2)  # amqtt's session monitor runs each second: the offline session must survive it
    again = Paho(broker.url, "persistent", clean_session=False)
    try:
        await again.connect()
        await writer.publish("mine/marker", b"m", qos=1)
        got = await again.wait_messages(1)
        assert [m.topic for m in got] == ["mine/marker"]  # the old subscription lives on; no retained replay
    finally:
        again.close()
        other.close()

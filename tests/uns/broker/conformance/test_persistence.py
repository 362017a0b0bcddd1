"""Retained messages and persistent sessions survive a broker restart (embedded: SQLite; Mosquitto: its DB)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.fixtures.broker import broker_test_config, start_broker
from tests.fixtures.mosquitto import free_port, run_mosquitto
from tests.fixtures.waiting import until
from tests.uns.broker.conformance.test_sessions import Client, uid
from uns.broker.persistence import FILE_NAME
from uns.mqtt.types import BrokerUrl, Message

Starter = Callable[[], contextlib.AbstractAsyncContextManager[BrokerUrl]]


@pytest.fixture(params=["embedded", "mosquitto"])
def restartable(request: pytest.FixtureRequest, tmp_path: Path) -> Starter:
    """Starts the same broker (same data) again each time it is entered."""
    if request.param == "mosquitto":
        port = free_port()
        store = tmp_path / "mosquitto-data"
        store.mkdir()
        # "user root": as root, mosquitto would drop to user mosquitto and could not write tmp_path
        extra = f"user root\npersistence true\npersistence_location {store}/\nautosave_interval 3600"

        @contextlib.asynccontextmanager
        async def mosquitto() -> AsyncIterator[BrokerUrl]:
            with run_mosquitto(extra, port=port) as running:
                yield BrokerUrl.from_str(running.url)

        return mosquitto

    @contextlib.asynccontextmanager
    async def embedded() -> AsyncIterator[BrokerUrl]:
        async with start_broker(tmp_path) as running:
            yield running.url

    return embedded


async def _connected(url: BrokerUrl, client_id: str, *, clean: bool) -> Client:
    client = Client(url, client_id, clean_session=clean)
    await client.connect()
    return client


async def test_retained_messages_and_persistent_sessions_survive_a_restart(
    restartable: Starter, unique_topic: str
) -> None:
    client_id = uid("persist")
    payloads = [f"q{i}".encode() for i in range(3)]
    async with restartable() as url:
        subscriber = await _connected(url, client_id, clean=False)
        await subscriber.subscribe(f"{unique_topic}/data/#", qos=1)
        subscriber.close()
        await until(subscriber.disconnected.is_set, what="subscriber gone")
        publisher = await _connected(url, uid("pub"), clean=True)
        await publisher.publish(f"{unique_topic}/state/a", b"kept", qos=1, retain=True)
        await publisher.publish(f"{unique_topic}/state/b", b"cleared", qos=1, retain=True)
        await publisher.publish(f"{unique_topic}/state/b", b"", qos=1, retain=True)  # [MQTT-3.3.1-10]
        for payload in payloads:
            await publisher.publish(f"{unique_topic}/data/x", payload, qos=1)
        publisher.close()
    async with restartable() as url:
        back = await _connected(url, client_id, clean=False)
        try:
            assert back.session_present is True
            got = await back.wait_messages(3)
            assert [m.payload for m in got] == payloads  # queued before the restart, delivered after it
            publisher = await _connected(url, uid("pub"), clean=True)
            await publisher.publish(f"{unique_topic}/data/y", b"after", qos=1)
            publisher.close()
            got = await back.wait_messages(4)  # the subscription itself survived too
            assert got[3] == Message(topic=f"{unique_topic}/data/y", payload=b"after", qos=1)
            reader = await _connected(url, uid("reader"), clean=True)
            await reader.subscribe(f"{unique_topic}/state/#", qos=1)
            retained = await reader.wait_messages(1)
            reader.close()
            assert retained == [Message(topic=f"{unique_topic}/state/a", payload=b"kept", qos=1, retain=True)]
        finally:
            back.close()


async def test_a_corrupt_database_is_moved_aside_and_the_broker_starts_empty(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, unique_topic: str
) -> None:
    data_dir = tmp_path / "broker"
    data_dir.mkdir()
    (data_dir / FILE_NAME).write_bytes(b"this is not a database" * 100)
    with caplog.at_level(logging.ERROR, logger="uns.broker.persistence"):
        async with start_broker(tmp_path) as broker:
            publisher = await _connected(broker.url, uid("pub"), clean=True)
            await publisher.publish(f"{unique_topic}/r", b"new", qos=1, retain=True)
            publisher.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert str(data_dir / FILE_NAME) in errors[0]
    assert "moved it to" in errors[0]
    moved = list(data_dir.glob(f"{FILE_NAME}.corrupt-*"))
    assert len(moved) == 1
    assert moved[0].read_bytes().startswith(b"this is not a database")
    async with start_broker(tmp_path) as broker:  # the fresh file works
        reader = await _connected(broker.url, uid("reader"), clean=True)
        await reader.subscribe(f"{unique_topic}/#", qos=1)
        assert [m.payload for m in await reader.wait_messages(1)] == [b"new"]
        reader.close()


async def test_with_persistence_off_nothing_is_written_or_kept(tmp_path: Path, unique_topic: str) -> None:
    config = broker_test_config(persistence={"enabled": False})
    async with start_broker(tmp_path, config) as broker:
        publisher = await _connected(broker.url, uid("pub"), clean=True)
        await publisher.publish(f"{unique_topic}/r", b"gone", qos=1, retain=True)
        publisher.close()
    assert not (tmp_path / "broker" / FILE_NAME).exists()
    async with start_broker(tmp_path, config) as broker:
        assert broker._require().retained_matching("#") == []
        reader = await _connected(broker.url, uid("reader"), clean=True)
        await reader.subscribe(f"{unique_topic}/#", qos=1)
        await reader.subscribe(f"{unique_topic}-marker", qos=1)
        await reader.publish(f"{unique_topic}-marker", b"m", qos=1)
        assert [m.payload for m in await reader.wait_messages(1)] == [b"m"]
        reader.close()


async def test_retained_writes_are_batched_behind_the_hot_path(tmp_path: Path, unique_topic: str) -> None:
    """Many updates of the same topics between two flushes write each topic once, with its latest value."""
    config = broker_test_config(persistence={"flush_interval_s": 60})
    async with start_broker(tmp_path, config) as broker:
        core = broker._require()
        local = broker.local_client("writer")
        for round_ in range(50):
            batch = [
                Message(topic=f"{unique_topic}/m{i}", payload=f"{round_}".encode(), qos=1, retain=True)
                for i in range(100)
            ]
            await local.publish_many(batch)
        assert await core.flush() == 100  # 5000 updates, 100 rows
        assert await core.flush() == 0  # nothing changed since
    async with start_broker(tmp_path, config) as broker:
        values = {m.topic: m.payload for m in broker._require().retained_matching(f"{unique_topic}/#")}
        assert values == {f"{unique_topic}/m{i}": b"49" for i in range(100)}

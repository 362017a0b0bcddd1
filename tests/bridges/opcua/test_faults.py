"""OpcUaSource when things go wrong on the server: restarts, revoked nodes, a server down at start."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import pytest
from asyncua import ua
from asyncua.client.client import Client

from bridges.opcua import OpcUaSource
from model.envelope import Quality
from tests.bridges.opcua.harness import config, running, until
from tests.bridges.opcua.plant_server import PlantServer, node_id, plant_server
from uns.errors import DeviceUnreachable


def _nodes(names: list[str], **fields: object) -> list[dict[str, object]]:
    return [{"name": name, "node_id": node_id(name), **fields} for name in names]


@pytest.fixture
async def plant() -> AsyncIterator[PlantServer]:
    """A server of its own: these tests stop it, restart it and delete its nodes."""
    async with plant_server() as server:
        yield server


async def test_server_restart_gives_device_down_then_data_again(plant: PlantServer) -> None:
    devices = [
        {"id": "filler", "nodes": _nodes(["Temperature"])},
        {"id": "press", "nodes": _nodes(["Pressure"], mode="poll")},
    ]
    source = OpcUaSource(config=config(plant.endpoint, devices))
    async with running(source) as events:
        await until(lambda: events.latest("filler", "Temperature") and events.latest("press", "Pressure"), what="data")
        await plant.stop()
        await until(lambda: len(events.downs()) == 2, what="DeviceDown for both devices")
        assert {down.device for down in events.downs()} == {"filler", "press"}
        mark = events.mark()
        await plant.start()
        await plant.write("Temperature", 99.0, ua.VariantType.Double)
        after = lambda: events.since(mark)  # noqa: E731
        await until(lambda: after().value("filler", "Temperature") == 99.0, what="data after restart", within_s=15)
        await until(lambda: after().latest("press", "Pressure"), what="polled data after restart")
        assert len(events.downs()) == 2  # one outage, one DeviceDown each
    assert (source.stats.connects, source.stats.losses) == (2, 1)


async def test_a_server_that_stops_answering_without_closing_gives_device_down_then_data_again(
    plant: PlantServer,
) -> None:
    source = OpcUaSource(config=config(plant.endpoint, [{"id": "filler", "nodes": _nodes(["Temperature"])}]))
    took: list[float] = []
    async with running(source) as events:
        await until(lambda: events.latest("filler", "Temperature"), what="data")
        for hang, value in enumerate((77.0, 78.0)):
            hung_at = time.monotonic()
            for transport in plant.server.iserver.asyncio_transports:
                transport.pause_reading()  # a hung server: the socket stays open, requests go unanswered
            # silence for the 1 s window, then a probe read allowed 1 s: lost
            await until(lambda: len(events.downs()) > hang, what="DeviceDown", within_s=6)  # noqa: B023
            took.append(time.monotonic() - hung_at)
            await plant.write("Temperature", value, ua.VariantType.Double)  # a new connection is read again
            await until(lambda: events.value("filler", "Temperature") == value, what="data after reconnecting")  # noqa: B023
    # as docs/bridges.md says: about 2 x the window, not also the second the session's close waits on the hung
    # server (3.2-3.5 s every time before 9488b8c); up to ~3 x when asyncua's stale-subscription re-create falls
    # into the silence, which one hang of two may meet on a loaded box
    assert min(took) < 2 * 1.0 + 0.6, took
    assert max(took) < 3 * 1.0 + 1.0, took
    assert source.stats.losses == 2


async def _watching(source: OpcUaSource) -> tuple[AsyncIterator[object], asyncio.Task[None], Client]:
    """The source's events once its first values came (subscribed, the liveness watch waiting for a state
    change), its runner task and its asyncua client."""
    events = source.events()
    await anext(events)
    (runner,) = [task for task in asyncio.all_tasks() if task.get_name() == "uns.bridge.opcua[opc1].run"]
    client = source._client
    assert isinstance(client, Client)
    return events, runner, client


async def test_a_stop_that_meets_the_connection_closing_still_stops_the_source(plant: PlantServer) -> None:
    source = OpcUaSource(config=config(plant.endpoint, [{"id": "filler", "nodes": _nodes(["Temperature"])}]))
    async with source:
        events, runner, client = await _watching(source)
        # the bridge stops as the socket closes, in one step: the watch's wake-up must not eat the cancel
        # (Python 3.11's wait_for returns the state change instead of raising, and the source runs on)
        runner.cancel()
        client.uaclient.notify_transport_lost()
        await asyncio.wait({runner}, timeout=5)
        stopped = runner.cancelled()
        runner.cancel()  # a runner that ate the cancel stops at its next await
        await events.aclose()  # type: ignore[attr-defined]
    assert stopped, "the source reconnected instead of stopping"
    assert source.stats.losses == 0


async def test_a_stop_that_comes_just_after_the_connection_closes_still_stops_the_source(plant: PlantServer) -> None:
    source = OpcUaSource(config=config(plant.endpoint, [{"id": "filler", "nodes": _nodes(["Temperature"])}]))
    async with source:
        events, runner, client = await _watching(source)
        # the socket closes, then the bridge stops (events() closed), in one step: the watch raises _Lost as
        # the runner's cancel arrives, and Python 3.11's TaskGroup raises the _Lost instead of the cancel
        client.uaclient.notify_transport_lost()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await events.aclose()  # type: ignore[attr-defined]
        stopped = runner.cancelled()
        runner.cancel()  # a runner that ate the cancel stops at its next await
        await asyncio.wait({runner}, timeout=5)
    assert stopped, "the source reconnected instead of stopping"
    assert source.stats.losses == 0


async def test_revoked_nodes_go_bad_and_the_rest_continues(
    plant: PlantServer, caplog: pytest.LogCaptureFixture
) -> None:
    nodes = _nodes(["Temperature", "Speed"]) + _nodes(["Pressure", "GoodCount"], mode="poll")
    source = OpcUaSource(config=config(plant.endpoint, [{"id": "filler", "nodes": nodes}]))
    with caplog.at_level(logging.WARNING, logger="bridges.opcua"):
        async with running(source) as events:
            await until(lambda: events.latest("filler", "GoodCount") and events.latest("filler", "Speed"), what="data")
            await plant.revoke("Temperature")  # subscribed: the server reports it on the monitored item
            await plant.server.delete_nodes([plant.server.get_node(plant.node("Pressure"))])  # polled: reads say so
            bad = lambda name: events.get("filler", name).quality is Quality.bad  # noqa: E731
            await until(lambda: bad("Temperature") and bad("Pressure"), what="Temperature and Pressure bad")
            await plant.write("Speed", 2.5, ua.VariantType.Float)
            await plant.write("GoodCount", 12, ua.VariantType.UInt32)
            await until(lambda: events.value("filler", "Speed") == 2.5, what="Speed still subscribed")
            await until(lambda: events.value("filler", "GoodCount") == 12, what="GoodCount still polled")
            assert source.stats.revoked == (node_id("Pressure"), node_id("Temperature"))
            assert source.stats.losses == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for name in ("Temperature", "Pressure"):
        assert [m for m in warnings if node_id(name) in m and "unknown to the server" in m], name
    assert len([m for m in warnings if node_id("Pressure") in m]) == 1  # once, not every poll


async def test_node_missing_after_restart_is_bad_and_the_rest_continue(
    plant: PlantServer, caplog: pytest.LogCaptureFixture
) -> None:
    source = OpcUaSource(config=config(plant.endpoint, [{"id": "filler", "nodes": _nodes(["Temperature", "Speed"])}]))
    with caplog.at_level(logging.WARNING, logger="bridges.opcua"):
        async with running(source) as events:
            await until(lambda: events.latest("filler", "Speed"), what="data")
            await plant.stop()
            await until(lambda: events.downs(), what="DeviceDown")
            await plant.start(without=frozenset({"Temperature"}))
            mark = events.mark()
            await until(lambda: events.since(mark).latest("filler", "Temperature"), what="Temperature after restart")
            assert events.since(mark).get("filler", "Temperature").quality is Quality.bad
            await plant.write("Speed", 4.5, ua.VariantType.Float)
            await until(lambda: events.since(mark).value("filler", "Speed") == 4.5, what="Speed after restart")
    assert any(node_id("Temperature") in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


async def test_write_while_disconnected_is_device_unreachable(plant: PlantServer) -> None:
    source = OpcUaSource(config=config(plant.endpoint, [{"id": "filler", "nodes": _nodes(["Mode"], writable=True)}]))
    async with running(source) as events:
        await plant.stop()
        await until(lambda: events.downs(), what="DeviceDown")
        with pytest.raises(DeviceUnreachable, match=node_id("Mode")):
            await source.write("filler", "Mode", 1)


async def test_server_down_at_start(plant: PlantServer) -> None:
    endpoint = plant.endpoint
    await plant.stop()
    browse = config(endpoint, [{"id": "capper", "browse": [{"root": "ns=2;s=Plant.Capper"}]}])
    with pytest.raises(DeviceUnreachable, match="must answer at start"):
        async with OpcUaSource(config=browse):
            pass

    # Every node typed in the config: the tags are known, the device starts down and comes up later.
    typed = config(endpoint, [{"id": "filler", "nodes": _nodes(["Temperature"], datatype="Double")}])
    source = OpcUaSource(config=typed)
    async with running(source) as events:
        assert [spec.name for spec in source.tags()] == ["Temperature"]
        await until(lambda: events.downs(), what="DeviceDown at start")
        await plant.start()
        await until(lambda: events.value("filler", "Temperature") == 21.5, what="data once the server is up")

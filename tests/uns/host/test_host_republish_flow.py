"""The host's QoS 1 republish path over a real socket: a window in flight, and lag/stall in its health."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging

import orjson
import pytest

from model.config import HostSection
from tests.fixtures.hub import plant_for
from tests.fixtures.mosquitto import Mosquitto, run_mosquitto
from tests.fixtures.relay import OneWayRelay, ddata, host_behind_relay, temps
from tests.fixtures.waiting import until
from uns.connect import network_clients
from uns.host.counters import RepublishLag
from uns.host.service import SparkplugHost
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl, Message

_ids = itertools.count()


async def _hold_and_send_five(relay: OneWayRelay, edge: MqttClient, topic: str) -> None:
    """Hold the host's writes (no republish is acknowledged), then DDATA with Temp 1.0 to 5.0."""
    relay.flowing.clear()
    await edge.publish_many([Message(topic, ddata(2 + i, float(i + 1))) for i in range(5)])


async def test_host_reads_on_while_its_republishes_wait_for_pubacks(mosquitto: Mosquitto) -> None:
    async with host_behind_relay(mosquitto) as (host, relay, edge, watched, topic):
        received = watched.messages
        handled = host.core.counters.messages
        await _hold_and_send_five(relay, edge, topic)
        # it took all five while the first one's PUBACK was still awaited (before: one, then wait)
        await until(lambda: host.core.counters.messages == handled + 5, what="all five DDATA handled")
        relay.flowing.set()
        await until(lambda: temps(received)[-1:] == [5.0], what="the fifth value republished")
        assert temps(received)[-5:] == [1.0, 2.0, 3.0, 4.0, 5.0]  # in order


async def test_health_reports_a_stalled_republish_path_once_and_its_recovery(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="uns.host.service")
    lag = RepublishLag(lag_backlog=1_000, lag_unacked_s=0.2, stall_s=0.6)
    async with host_behind_relay(mosquitto, lag) as (host, relay, edge, watched, topic):
        health_topic = host.health_topic
        received = watched.messages
        relay.flowing.clear()
        await edge.publish(topic, ddata(2, 42.0))
        await until(lambda: host.lag.state.value == "stalled", what="the host judging itself stalled")
        relay.flowing.set()
        await until(lambda: host.lag.state.value == "ok", what="the host keeping up again")
        await until(lambda: temps(received)[-1:] == [42.0], what="the held republish delivered")

        def states() -> list[str]:
            return [orjson.loads(m.payload)["republish"]["state"] for m in received if m.topic == health_topic]

        await until(lambda: states()[-1:] == ["ok"], what="health saying ok again")
        seen = states()
        assert "lagging" in seen
        assert "stalled" in seen  # published on the health topic, not just judged
        assert seen.index("lagging") < seen.index("stalled") < len(seen) - 1
        stalled = next(orjson.loads(m.payload) for m in received if b'"stalled"' in m.payload)
        assert stalled["republish"]["inflight"] == 1
        assert stalled["republish"]["oldest_unacked_s"] >= 0.6
        lines = [r.getMessage() for r in caplog.records if "republishing is" in r.getMessage()]
        assert [line.split("republishing is ")[1].split(":")[0] for line in lines] == ["lagging", "stalled", "ok"]


async def test_health_reports_what_mosquitto_dropped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="uns.host.service")
    with run_mosquitto("sys_interval 1\nmax_queued_messages 5") as broker:  # its own: a tiny queue
        url = BrokerUrl.from_str(broker.url)
        n = next(_ids)
        settings = HostSection(host_id=f"drophost{n}", groups=[f"dg{n}"], health_interval_s=0.1)
        clients = network_clients(url)
        plant = plant_for(f"drop{n}", f"dg{n}", "edge1")
        async with SparkplugHost(settings=settings, plant=plant, clients=clients) as host:
            runner = asyncio.create_task(host.run())
            try:
                await until(lambda: host.broker_dropped == 0, what="the broker's first drop count")
                # a persistent session away while 50 QoS 1 messages come: the broker keeps 5, drops 45
                async with MqttClient(url=url, client_id=f"away-{n}", clean_session=False) as away:
                    await away.subscribe([f"drop{n}/away"], qos=1)
                async with MqttClient(url=url, client_id=f"pub-{n}") as pub:
                    await pub.publish_many([Message(f"drop{n}/away", b"x", qos=1) for _ in range(50)])
                await until(lambda: host.broker_dropped == 45, within_s=5, what="45 drops counted")
                async with MqttClient(url=url, client_id=f"health-{n}") as watcher:
                    await watcher.subscribe([host.health_topic], qos=0)
                    async for m in watcher.messages():
                        if orjson.loads(m.payload)["broker_dropped"] == 45:
                            break  # on the health topic (the test's timeout bounds this)
                assert any("the broker dropped 45 publishes" in r.getMessage() for r in caplog.records)
            finally:
                runner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await runner


@pytest.mark.parametrize(
    ("readings", "states"),
    [
        # (seconds, processed, backlog, oldest unacknowledged s) at each tick -> the change reported, if any
        ([(0, 1, 0, 0.0), (1, 2, 0, 0.5)], [None, None]),
        ([(0, 1, 0, 0.0), (1, 2, 1000, 0.0), (2, 3, 10, 0.0)], [None, "lagging", "ok"]),
        ([(0, 1, 0, 1.5), (1, 1, 0, 10.0)], ["lagging", "stalled"]),
        # a backlog with nothing processed for stall_s is stalled, however small
        ([(0, 5, 3, 0.0), (5, 5, 3, 0.0), (10, 5, 3, 0.0), (11, 6, 2, 0.0)], [None, None, "stalled", "ok"]),
        # idle with nothing waiting is fine
        ([(0, 5, 0, 0.0), (60, 5, 0, 0.0)], [None, None]),
    ],
)
def test_lag_states_and_their_transitions(
    readings: list[tuple[float, int, int, float]], states: list[str | None]
) -> None:
    lag = RepublishLag(lag_backlog=1_000, lag_unacked_s=1.0, stall_s=10.0)
    got = [
        lag.update(now_s=now, messages=done, backlog=backlog, oldest_unacked_s=oldest)
        for now, done, backlog, oldest in readings
    ]
    assert [None if s is None else s.value for s in got] == states


async def test_health_judges_a_stall_even_when_the_broker_stops_reading(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    # The held relay stops reading: the host's write buffer fills and its writes wait to drain. The
    # health loop must still judge and log the stall, not wait behind its own health publish.
    caplog.set_level(logging.WARNING, logger="uns.host.service")
    lag = RepublishLag(lag_backlog=1_000_000, lag_unacked_s=1_000.0, stall_s=2.0)  # only the stall matters
    async with host_behind_relay(mosquitto, lag) as (host, relay, edge, _watched, topic):
        relay.flowing.clear()
        note = "x" * 20_000
        await edge.publish_many([Message(topic, ddata(2 + i, float(i), note)) for i in range(800)])  # ~16 MB
        await until(lambda: host.lag.state.value == "stalled", within_s=15, what="the stall judged")
        assert any("republishing is stalled" in r.getMessage() for r in caplog.records)


async def test_republishes_in_flight_go_again_after_a_reconnect_in_order(mosquitto: Mosquitto) -> None:
    async with host_behind_relay(mosquitto) as (host, relay, edge, watched, topic):
        received = watched.messages
        handled = host.core.counters.messages
        await _hold_and_send_five(relay, edge, topic)
        await until(lambda: host.core.counters.messages == handled + 5, what="all five DDATA handled")
        assert host.republish_health()["inflight"] == 5
        relay.cut()  # none of the five reached the broker
        relay.flowing.set()
        await until(lambda: temps(received)[-1:] == [5.0], within_s=15, what="the five sent again")
        assert temps(received)[-5:] == [1.0, 2.0, 3.0, 4.0, 5.0]


async def test_the_republish_window_bounds_what_waits_for_pubacks(mosquitto: Mosquitto) -> None:
    async with host_behind_relay(mosquitto, window=3) as (host, relay, edge, watched, topic):
        received = watched.messages
        handled = host.core.counters.messages
        await _hold_and_send_five(relay, edge, topic)
        # three republishes in flight, the fourth DDATA handled and its republish waiting for a slot
        await until(
            lambda: host.core.counters.messages == handled + 4 and host.republish_health()["inflight"] == 3,
            what="a full window of 3",
        )
        relay.flowing.set()
        await until(lambda: temps(received)[-1:] == [5.0], what="all five republished")
        assert temps(received)[-5:] == [1.0, 2.0, 3.0, 4.0, 5.0]

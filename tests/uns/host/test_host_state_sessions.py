"""The host's STATE timestamps across MQTT sessions, over a real socket to Mosquitto.

Sparkplug 3.0: the will of every CONNECT carries the UTC time of that CONNECT
(tck-id-host-topic-phid-death-payload-connect; the TCK checks it is within a minute of the
CONNECT), the online STATE after it the same time (tck-id-host-topic-phid-birth-payload-timestamp),
and a clean stop's offline STATE the time of the stop
(tck-id-host-topic-phid-death-payload-disconnect-clean). The online STATE is the first message of
every MQTT session (tck-id-operational-behavior-primary-application-state-with-multiple-servers-state).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from typing import Any

import orjson

from model.config import HostSection
from tests.fixtures.hub import plant_for
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.recording import recorder_on
from tests.fixtures.relay import OneWayRelay, ddata, host_behind_relay, temps
from tests.fixtures.waiting import until
from uns.clock import now_ms
from uns.connect import network_clients
from uns.host.service import SparkplugHost
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl, Message, PubSub
from uns.sparkplug import encode_state

_ids = itertools.count()


def _states(received: list[Message]) -> list[tuple[bool, int]]:
    return [(s["online"], s["timestamp"]) for s in (orjson.loads(m.payload) for m in received)]


@contextlib.asynccontextmanager
async def _watching(url: BrokerUrl, topic: str) -> AsyncIterator[list[Message]]:
    async with recorder_on(url, [topic], client_id=f"state-watch-{next(_ids)}") as got:
        yield got.messages


@contextlib.asynccontextmanager
async def _host_on_relay(
    mosquitto: Mosquitto, name: str
) -> AsyncIterator[tuple[SparkplugHost, OneWayRelay, list[Message], list[MqttClient]]]:
    """A host (not entered) whose connections go through a relay, the STATEs on its topic as they come, and the
    client it opens once entered (to read its stats)."""
    n = next(_ids)
    settings = HostSection(host_id=f"{name}host{n}", groups=[f"{name}g{n}"], health_interval_s=10.0)
    url = BrokerUrl.from_str(mosquitto.url)
    async with OneWayRelay(mosquitto.port) as relay, _watching(url, f"spBv1.0/STATE/{settings.host_id}") as received:
        opened: list[MqttClient] = []
        clients = network_clients(BrokerUrl(host="127.0.0.1", port=relay.port))

        @contextlib.asynccontextmanager
        async def kept(**options: Any) -> AsyncIterator[PubSub]:
            async with clients(**options) as client:
                assert isinstance(client, MqttClient)
                opened.append(client)
                yield client

        yield (
            SparkplugHost(settings=settings, plant=plant_for(f"{name}{n}", f"{name}g{n}", "edge1"), clients=kept),
            relay,
            received,
            opened,
        )


async def _first_online(received: list[Message]) -> int:
    """The timestamp of the host's first online STATE, once it came (and nothing before it)."""
    await until(lambda: _states(received)[-1:] and _states(received)[-1][0], what="first online STATE")
    [(_, first)] = _states(received)
    return first


async def test_each_connect_stamps_its_will_and_birth_afresh_and_a_stop_stamps_its_death(
    mosquitto: Mosquitto,
) -> None:
    async with _host_on_relay(mosquitto, "stamp") as (host, relay, received, _clients):
        async with host:
            runner = asyncio.create_task(host.run())
            first = await _first_online(received)
            await asyncio.sleep(0.05)  # so a fresh stamp differs from the first session's

            cut_at = now_ms()
            relay.cut()  # no DISCONNECT: the broker publishes the will, the host reconnects
            await until(lambda: len(_states(received)) >= 3 and _states(received)[-1][0], what="online again")
            will, online = _states(received)[1], _states(received)[-1]
            assert will == (False, first)  # the first CONNECT's will
            assert online[1] >= cut_at > first  # the reconnect's time, not the first session's

            relay.cut()
            await until(lambda: len(_states(received)) >= 5 and _states(received)[-1][0], what="online a third time")
            # the second CONNECT registered a will stamped as its birth
            assert (False, online[1]) in _states(received)[3:]
            third = _states(received)[-1][1]
            assert third > online[1]

            await asyncio.sleep(0.05)
            stop_at = now_ms()
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        await until(lambda: not _states(received)[-1][0], what="the offline STATE of the stop")
        assert _states(received)[-1][1] >= stop_at > third


async def test_a_reconnect_publishes_the_online_state_before_what_it_re_sends(mosquitto: Mosquitto) -> None:
    async with host_behind_relay(mosquitto) as (host, relay, edge, watched, ddata_topic):
        topic = host.state_topic
        await watched.client.subscribe([topic], qos=1)
        received = watched.messages
        await until(lambda: any(m.topic == topic for m in received), what="the retained online STATE")
        handled = host.core.counters.messages
        relay.flowing.clear()  # the republish of Temp 42.0 stays in flight, unacknowledged
        await edge.publish(ddata_topic, ddata(2, 42.0))
        await until(lambda: host.core.counters.messages == handled + 1, what="the DDATA handled")
        relay.cut()  # the will fires; the host reconnects and re-sends the republish
        relay.flowing.set()
        await until(lambda: 42.0 in temps(received), what="Temp 42.0 re-sent")
        order = [
            "offline"
            if m.topic == topic and b'"online":false' in m.payload
            else "online"
            if m.topic == topic
            else "temp"
            for m in received
            if m.topic == topic or m.topic.endswith("/filler/data/Temp")
        ]
        after_will = order[order.index("offline") + 1 :]
        assert after_will[:2] == ["online", "temp"]  # the new session's first message is its birth


async def test_an_online_state_left_unacknowledged_is_not_re_sent_after_the_next_session_s_birth(
    mosquitto: Mosquitto,
) -> None:
    async with _host_on_relay(mosquitto, "supersede") as (host, relay, received, _clients):
        topic = host.state_topic
        async with host:
            runner = asyncio.create_task(host.run())
            try:
                first = await _first_online(received)
                relay.flowing.clear()  # what the host writes now stays unacknowledged
                async with MqttClient(
                    url=BrokerUrl.from_str(mosquitto.url), client_id=f"forger-{next(_ids)}"
                ) as forger:
                    # a newer online STATE not ours: the host answers with an online STATE stamped first + 1
                    await forger.publish(topic, encode_state(True, first + 1), qos=1, retain=True)
                await until(lambda: host.core.counters.rejected["foreign_state"] == 1, what="the forgery answered")
                await asyncio.sleep(0.05)  # so the next session's stamp differs
                relay.cut()  # the answer is lost unacknowledged; the will fires and the host reconnects
                relay.flowing.set()

                def after_will() -> list[tuple[bool, int]]:
                    states = _states(received)
                    return states[states.index((False, first)) + 1 :] if (False, first) in states else []

                await until(lambda: len(after_will()) >= 2, what="the new session's online STATEs")
                birth = after_will()[0]
                assert birth[0]
                assert birth[1] > first + 1
                # every online STATE of the new session carries its will's time (the birth's,
                # tck-id-host-topic-phid-birth-payload-timestamp): the old session's answer is not re-sent after it
                assert after_will()[:2] == [birth, birth]
            finally:
                runner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await runner


async def test_a_reconnect_while_the_stop_s_offline_state_is_unacknowledged_leaves_the_host_offline(
    mosquitto: Mosquitto,
) -> None:
    # the stop publishes offline (QoS 1, retained) while the connection is gone, and the client reconnects before
    # its PUBACK: that new session must not assert online, or the broker keeps an online STATE retained for a host
    # that then disconnects cleanly (no will) and edge nodes go on publishing to nobody. Each step waits on what
    # it needs, not on time: the stop waits at most 1 s for its PUBACK, and after it starts only the held CONNECT's
    # and the resubscription's round trips to the broker remain before the reconnect's birth
    async with _host_on_relay(mosquitto, "stop") as (host, relay, received, clients):
        topic = host.state_topic
        await host.__aenter__()
        [client] = clients
        runner = asyncio.create_task(host.run())
        try:
            first = await _first_online(received)
            await host.wait_ready()  # its PUBACK read too (the watcher may see it first): nothing left in flight
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
            relay.flowing.clear()  # what the host writes from now on is held, its reconnect's CONNECT first
            relay.cut()  # the will fires; the client reconnects
            await until(lambda: relay.held == 1, what="the reconnect's CONNECT held by the relay")
            stopping = asyncio.create_task(host.__aexit__(None, None, None))
            await until(lambda: client.stats.inflight == 1, what="the stop's offline STATE awaiting its PUBACK")
            relay.flowing.set()  # the reconnect completes while the stop still waits
            await stopping
            await until(lambda: len(_states(received)) >= 3, what="the will and the reconnect's STATE")
            will, *after = _states(received)[1:]
            assert will == (False, first)
            # the reconnect during the stop says offline, stamped after the will; no online STATE follows
            assert [online for online, _ in after] == [False]
            assert after[0][1] > first
        finally:
            relay.flowing.set()
            if not runner.done():
                runner.cancel()
    async with _watching(BrokerUrl.from_str(mosquitto.url), topic) as retained:
        await until(lambda: len(retained) == 1, what="the retained STATE")
        online, stamp = _states(retained)[0]
        assert (online, stamp > first) == (False, True)

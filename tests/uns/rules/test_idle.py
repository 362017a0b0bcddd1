"""An idle engine sleeps: its check wakes at the next minimum duration due, not 20 times a second nor once a second."""

from __future__ import annotations

import asyncio
import time

import orjson

from tests.fixtures.timers import timers_by_task
from tests.fixtures.waiting import until
from tests.uns.rules.harness import engine_on
from uns.broker.embedded import EmbeddedBroker
from uns.connect import network_clients

FILLER = "acme/dallas/bottling/line1/filler"


async def test_an_idle_engine_does_not_wake_and_a_minimum_duration_fires_on_time(
    broker: EmbeddedBroker,
) -> None:
    rules: list[object] = [
        {
            "name": "hot",
            "trigger": {"kind": "value", "topic": f"{FILLER}/data/Temp", "above": 80, "for_s": 0.5},
            "actions": [{"kind": "alarm", "path": "${path}", "name": "hot", "message": "hot"}],
        }
    ]
    async with engine_on(broker.url, rules) as engine:
        with timers_by_task() as timers:
            await asyncio.sleep(1.5)
        assert timers["uns.rules.tick"] == 0, timers  # was 30 (a 50 ms tick), then 1-2 (at most 1 s with nothing due)
        async with network_clients(broker.url)(client_id="rules-idle-publisher") as client:
            sent = time.monotonic()  # before: the engine may have it before the PUBACK comes back
            await client.publish(f"{FILLER}/data/Temp", orjson.dumps({"value": 90, "timestamp_ms": 1}), qos=1)
            await until(lambda: engine.alarms.listed(), what="the alarm after its 0.5 s")
        assert time.monotonic() - sent >= 0.5  # held for its minimum duration, woken by the message, not 1 s later


async def test_messages_while_a_minimum_duration_is_pending_do_not_wake_the_check(broker: EmbeddedBroker) -> None:
    """Only a message that brings a due time nearer wakes it: not every value that keeps one pending."""
    rules: list[object] = [
        {
            "name": "hot",
            "trigger": {"kind": "value", "topic": f"{FILLER}/data/Temp", "above": 80, "for_s": 30},
            "actions": [{"kind": "alarm", "path": "${path}", "name": "hot", "message": "hot"}],
        }
    ]
    async with (
        engine_on(broker.url, rules) as engine,
        network_clients(broker.url)(client_id="rules-idle-publisher") as client,
    ):
        topic = f"{FILLER}/data/Temp"
        await client.publish(topic, orjson.dumps({"value": 90, "timestamp_ms": 1}), qos=1)
        running = engine._rules["hot"]  # the rule's trigger state: what the check waits on
        await until(lambda: running.watch.next_due_s() is not None, what="the minimum duration pending")
        # the check woke once for it and sleeps until it is due (its timer set before _wake_at is read here)
        await until(lambda: engine._wake_at == running.watch.next_due_s(), what="the check asleep until it is due")
        with timers_by_task() as timers:
            for value in range(91, 111):
                await client.publish(topic, orjson.dumps({"value": value, "timestamp_ms": 2}), qos=1)
            await until(lambda: running.watch._last.get(topic) == 110, what="the 20 values dispatched")
        assert timers["uns.rules.tick"] == 0, timers  # was one a message: 20


async def test_a_nearer_minimum_duration_wakes_the_check_while_a_longer_one_is_pending(
    broker: EmbeddedBroker,
) -> None:
    """The check asleep for a 30 s minimum duration wakes for a 0.3 s one that a later message starts."""
    rules: list[object] = [
        {
            "name": name,
            "trigger": {"kind": "value", "topic": f"{FILLER}/data/{tag}", "above": 80, "for_s": for_s},
            "actions": [{"kind": "alarm", "path": "${path}", "name": name, "message": name}],
        }
        for name, tag, for_s in (("slow", "Temp", 30), ("quick", "Pressure", 0.3))
    ]
    async with (
        engine_on(broker.url, rules) as engine,
        network_clients(broker.url)(client_id="rules-idle-publisher") as client,
    ):
        slow = engine._rules["slow"].watch
        await client.publish(f"{FILLER}/data/Temp", orjson.dumps({"value": 90, "timestamp_ms": 1}), qos=1)
        await until(lambda: slow.next_due_s() is not None, what="the slow one pending")
        await until(lambda: engine._wake_at == slow.next_due_s(), what="the check asleep for its 30 s")
        sent = time.monotonic()
        await client.publish(f"{FILLER}/data/Pressure", orjson.dumps({"value": 90, "timestamp_ms": 2}), qos=1)
        await until(lambda: engine.alarms.listed(), within_s=20, what="the quick alarm")
        late_s = time.monotonic() - sent
        assert [alarm.name for alarm in engine.alarms.listed()] == ["quick"]
        assert 0.3 <= late_s < 15, late_s  # woken for it, not at the slow one's 30 s

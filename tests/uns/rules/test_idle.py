"""An idle engine sleeps: its check wakes at the next minimum duration due, not 20 times a second."""

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


async def test_an_idle_engine_wakes_about_once_a_second_and_a_minimum_duration_fires_on_time(
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
        assert timers["uns.rules.tick"] <= 3, timers  # was 30: a 50 ms tick
        async with network_clients(broker.url)(client_id="rules-idle-publisher") as client:
            sent = time.monotonic()  # before: the engine may have it before the PUBACK comes back
            await client.publish(f"{FILLER}/data/Temp", orjson.dumps({"value": 90, "timestamp_ms": 1}), qos=1)
            await until(lambda: engine.alarms.listed(), what="the alarm after its 0.5 s")
        assert time.monotonic() - sent >= 0.5  # held for its minimum duration, woken by the message, not 1 s later

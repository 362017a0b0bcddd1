"""Transient samples (``"transient": true``, Sparkplug is_transient) at the sinks: stores skip them, forwarders not.

A REST sink through a real broker to a real HTTP target (uvicorn), once as a forwarder (its kind's default) and
once told to skip them, as the time-series stores do by default.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from pydantic import BaseModel

from model.sinks import AmqpSinkConfig, InfluxSinkConfig, PostgresSinkConfig, RestSinkConfig, SqlInsertSinkConfig
from tests.fixtures.asgi import serve
from tests.fixtures.broker import publisher, start_broker
from tests.fixtures.running import running
from tests.fixtures.waiting import until
from tests.uns.sinks.rest_target import Erp
from tests.uns.sinks.test_postgres_sink import envelope
from tests.uns.sinks.test_rest_sink import config, sink_of
from uns.clock import now_ms
from uns.mqtt.types import Message

TEMP = "acme/dallas/bottling/line1/filler/data/Temp"
VIBRATION = "acme/dallas/bottling/line1/filler/data/Vibration"


@pytest.mark.parametrize(
    ("kind", "skips"),
    [
        (PostgresSinkConfig, True),
        (InfluxSinkConfig, True),
        (RestSinkConfig, False),
        (SqlInsertSinkConfig, False),
        (AmqpSinkConfig, False),
    ],
)
def test_the_time_series_stores_skip_transient_samples_and_the_forwarders_pass_them_on(
    kind: type[BaseModel], skips: bool
) -> None:
    assert kind.model_fields["skip_transient"].default is skips


def _route(base: str) -> list[dict[str, object]]:
    body = {"topic": "${topic}", "n": "${body.value}", "transient": "${body.transient?}"}
    return [{"match": "+/+/+/+/+/data/#", "url": base + "/api/counts", "body": body}]


@pytest.mark.parametrize("skip", [False, True], ids=["forwarder", "told-to-skip"])
async def test_a_rest_sink_forwards_or_skips_a_transient_sample(tmp_path: Path, skip: bool) -> None:
    erp = Erp()
    ts = now_ms() - 1000
    async with serve(erp.app()) as base, start_broker(tmp_path) as broker:
        overrides: dict[str, object] = {"routes": _route(base)}
        if skip:
            overrides["skip_transient"] = True
        cfg = config(base, tmp_path, **overrides)
        async with running(sink_of(cfg, str(broker.url))) as sink, publisher(broker.url) as pub:
            await pub.publish_many(
                [
                    Message(VIBRATION, envelope(0.75, ts, "Double", transient=True), qos=1),
                    Message(TEMP, envelope(25.0, ts, "Double"), qos=1),
                ]
            )
            # published in this order: once Temp is posted, Vibration was read before it
            await until(lambda: any(b.get("topic") == TEMP for b in erp.stored.values()), what="Temp posted")
            await until(lambda: sink.stats.stored == (1 if skip else 2), what=f"stored: {sink.health()}")
            health = sink.health()
    posted = {str(b["topic"]): b for b in erp.stored.values()}
    assert posted[TEMP] == {"topic": TEMP, "n": 25.0, "transient": None}
    if skip:
        assert VIBRATION not in posted
        assert (health["transient_skipped"], health["stored"], health["rejected"]) == (1, 1, 0)
    else:
        assert posted[VIBRATION] == {"topic": VIBRATION, "n": 0.75, "transient": True}  # the flag goes with it
        assert (health["transient_skipped"], health["stored"], health["rejected"]) == (0, 2, 0)
    assert orjson.loads(orjson.dumps(health))  # JSON-ready as published

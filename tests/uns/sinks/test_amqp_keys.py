"""The AMQP sink's pure parts: UNS topics as routing keys and back, waiting for confirms, its config, its exports."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import TypeAdapter, ValidationError

from model.sinks import AmqpSinkConfig, SinkConfig
from tests.exports import assert_all_is_honest
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl
from uns.sinks.amqp import wait_confirms
from uns.sinks.amqp_keys import MAX_KEY_BYTES, routing_key, topic_of
from uns.sinks.registry import KINDS, build_sink


@pytest.mark.parametrize(
    ("topic", "key"),
    [
        ("acme/dallas/bottling/line1/filler/data/Production/GoodCount",
         "acme.dallas.bottling.line1.filler.data.Production.GoodCount"),
        ("acme/dallas/lab/data/Temp.1", "acme.dallas.lab.data.Temp%2E1"),  # a '.' would split the level
        ("acme/dallas/lab/data/a*b", "acme.dallas.lab.data.a%2Ab"),  # '*' and '#' are binding wildcards
        ("acme/dallas/lab/data/50%", "acme.dallas.lab.data.50%25"),  # '%' first, so decoding is exact
        ("acme/dallas/lab/data/%2E", "acme.dallas.lab.data.%252E"),
        ("acme/dallas/lab/data/Zähler °C", "acme.dallas.lab.data.Zähler °C"),  # UTF-8 stays as it is
        ("acme//x", "acme..x"),  # an empty level is an empty word
    ],
)  # fmt: skip
def test_a_topic_becomes_a_routing_key_and_back(topic: str, key: str) -> None:
    assert routing_key(topic) == key
    assert topic_of(key) == topic


def test_a_topic_whose_key_exceeds_255_bytes_is_refused_naming_the_length() -> None:
    fits = "a/" + "b" * (MAX_KEY_BYTES - 2)
    assert len(routing_key(fits).encode()) == MAX_KEY_BYTES
    with pytest.raises(ValueError, match="256 bytes; AMQP allows 255"):
        routing_key(fits + "c")
    with pytest.raises(ValueError, match="AMQP allows 255"):
        routing_key("a/" + "." * 90)  # each escaped '.' takes three bytes


def test_the_config_is_a_registered_kind_with_every_field_described_and_no_password_shown() -> None:
    config = TypeAdapter(SinkConfig).validate_python(
        {"kind": "amqp", "name": "rabbit", "url": "amqp://uns:s3cret@rabbit:5672/plant"}
    )
    assert isinstance(config, AmqpSinkConfig)
    assert "amqp" in KINDS
    sink = build_sink(config, enterprise="acme", clients=network_clients(BrokerUrl(port=1)))
    assert sink.writer.target == "amqp://uns:***@rabbit:5672/plant exchange uns"
    assert "s3cret" not in repr(config) + config.model_dump_json()
    schema = AmqpSinkConfig.model_json_schema()
    for field, spec in schema["properties"].items():
        assert spec.get("description"), f"AmqpSinkConfig.{field} has no description"


@pytest.mark.parametrize(
    ("change", "field"),
    [({"url": "postgresql://x"}, "url"), ({"exchange": "a b"}, "exchange"), ({"confirm_timeout_s": 0}, "confirm")],
)
def test_a_bad_config_is_refused_naming_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        AmqpSinkConfig.model_validate({"kind": "amqp", "name": "rabbit", "url": "amqp://rabbit", **change})
    assert field in str(caught.value)


@pytest.mark.parametrize("name", ["uns.sinks.amqp", "uns.sinks.amqp_keys"])
def test_exports_are_honest(name: str) -> None:
    assert_all_is_honest(name)


async def test_a_batch_fails_only_when_no_confirm_came_for_the_quiet_time_not_on_a_deadline() -> None:
    loop = asyncio.get_running_loop()
    slow = [loop.create_future() for _ in range(10)]

    async def confirm_one_by_one() -> None:
        for future in slow:
            await asyncio.sleep(0.05)
            future.set_result(None)

    feeder = asyncio.create_task(confirm_one_by_one(), name="test.confirms")
    await wait_confirms(slow, quiet_s=0.3)  # 0.5 s in all, but never 0.3 s without one: done
    await feeder
    silent = [loop.create_future() for _ in range(3)]
    silent[0].set_result(None)
    with pytest.raises(TimeoutError, match=r"no confirm for 0\.1 s"):
        await wait_confirms(silent, quiet_s=0.1)
    assert all(future.done() for future in silent)  # cancelled: nothing left waiting

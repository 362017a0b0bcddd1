"""The AMQP source's pure parts: routing-key patterns, its config (refusals naming the field), its registration."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from bridges.amqp import AmqpSource
from bridges.amqp.keys import key_matches
from bridges.registry import KINDS, build_source
from bridges.source import DeviceDown, SourceEvent
from model.bridges import BridgeConfig
from model.bridges.amqp import AmqpBridgeConfig
from tests.exports import assert_all_is_honest
from tests.fixtures.mosquitto import free_port
from tests.fixtures.waiting import until
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl

_CONFIG: dict[str, object] = {
    "kind": "amqp",
    "name": "lims",
    "edge": {"group": "lab"},
    "url": "amqp://uns:s3cret@rabbit:5672/plant",
    "exchange": "lab",
    "queue": "uns-lims",
    "routes": [{"devices": [{"id": "oven", "metrics": [{"path": "$.t", "name": "T"}]}]}],
}


@pytest.mark.parametrize(
    ("key", "pattern", "fits"),
    [
        ("lab.oven.1", "#", True),
        ("lab.oven.1", "lab.#", True),
        ("lab", "lab.#", True),  # '#' takes zero words too
        ("lab.oven.1", "lab.*.1", True),
        ("lab.oven.1", "lab.*", False),  # '*' is exactly one word
        ("lab.oven.1", "*.oven.*", True),
        ("lab.oven.1.temp", "lab.#.temp", True),
        ("lab.temp", "lab.#.temp", True),
        ("lab.oven.1.temp", "lab.#.hum", False),
        ("lab.oven", "lab.oven", True),
        ("lab.ovens", "lab.oven", False),
        ("lab.oven", "lab.oven.#", True),
        ("lab..x", "lab.*.x", True),  # an empty word is a word
        ("a.b.c.d", "#.c.#", True),
        ("a.b.d", "#.c.#", False),
    ],
)
def test_routing_keys_fit_patterns_as_a_topic_exchange_binds(key: str, pattern: str, fits: bool) -> None:
    assert key_matches(key, pattern) is fits


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"url": "http://rabbit"}, "url"),
        ({"exchange": "bad name"}, "exchange"),
        ({"queue": ""}, "queue"),
        ({"binding_keys": ["lab.o*"]}, "binding_keys.0"),
        ({"prefetch": 0}, "prefetch"),
        ({"routes": [{"routing_key": "a.#b", "devices": [{"id": "d", "metrics": [{"path": "$", "name": "x"}]}]}]},
         "routes.0.routing_key"),
        ({"routes": [{"routing_key": "a"}]}, "routes.0"),
        ({"routes": [{"devices": [{"id": "amqp", "metrics": [{"path": "$", "name": "x"}]}]}]}, "status device"),
        ({"routes": [{"devices": [{"id": "d", "metrics": [{"path": "$", "name": "x"}]}]},
                     {"devices": [{"id": "d", "metrics": [{"path": "$.y", "name": "x"}]}]}]}, "two routes"),
    ],
)  # fmt: skip
def test_a_bad_config_is_refused_naming_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        AmqpBridgeConfig.model_validate({**_CONFIG, **change})
    assert field in str(caught.value)


def test_amqp_is_a_registered_kind_and_the_password_never_shows(tmp_path: Path) -> None:
    config = TypeAdapter(BridgeConfig).validate_python(_CONFIG)
    assert isinstance(config, AmqpBridgeConfig)
    assert "amqp" in KINDS
    source = build_source(config, network_clients(BrokerUrl(port=1)), tmp_path)
    assert isinstance(source, AmqpSource)
    assert "s3cret" not in repr(config) + config.model_dump_json()
    assert source.link.target == "amqp://uns:***@rabbit:5672/plant queue uns-lims"
    assert config.dead_letters_to == "uns-lims.dead-letter"


def test_every_field_is_described() -> None:
    schema = AmqpBridgeConfig.model_json_schema()
    for model in [schema, *schema["$defs"].values()]:
        for field, spec in model.get("properties", {}).items():
            assert spec.get("description"), f"{model.get('title')}.{field} has no description"


@pytest.mark.parametrize(
    "name", ["bridges.amqp", "bridges.amqp.keys", "bridges.amqp.link", "bridges.amqp.source", "model.bridges.amqp"]
)
def test_exports_are_honest(name: str) -> None:
    assert_all_is_honest(name)


async def test_rabbitmq_unreachable_at_start_is_one_device_death_and_retried_with_backoff(tmp_path: Path) -> None:
    config = AmqpBridgeConfig.model_validate(
        {
            **_CONFIG,
            "url": f"amqp://guest:pw@127.0.0.1:{free_port()}/",
            "reconnect_min_s": 0.02,
            "reconnect_max_s": 0.05,
        }
    )
    source = AmqpSource(config=config, clients=network_clients(BrokerUrl(port=1)), data_dir=tmp_path)
    seen: list[SourceEvent] = []

    async def consume() -> None:
        async for event in source.events():
            seen.append(event)

    async with source:
        task = asyncio.create_task(consume(), name="test.amqp-unreachable")
        try:
            await until(lambda: source.link.failed_attempts >= 5, what="five failed attempts")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert [type(event) for event in seen] == [DeviceDown]  # once, not per attempt; no status while down
    down = seen[0]
    assert isinstance(down, DeviceDown)
    assert down.device == "amqp"
    assert "amqp://guest:***@127.0.0.1" in down.reason
    assert "pw" not in down.reason

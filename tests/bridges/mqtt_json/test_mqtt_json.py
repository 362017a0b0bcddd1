"""The MQTT-JSON bridge: JSON paths, type conversion, and the source against a real broker."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from bridges.mqtt_json import MISSING, JsonPath, MqttJsonSource, convert
from bridges.source import Samples
from model.bridges import MqttJsonBridgeConfig
from model.envelope import Quality
from tests.fixtures.mosquitto import Mosquitto
from uns.connect import network_clients
from uns.errors import BridgeError
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl
from uns.sparkplug import DataType


@pytest.mark.parametrize(
    ("path", "document", "found"),
    [
        ("$", {"a": 1}, {"a": 1}),
        ("$.a", {"a": 1}, 1),
        ("$.a.b", {"a": {"b": [1, 2]}}, [1, 2]),
        ("$.a.b[1]", {"a": {"b": [1, 2]}}, 2),
        ("$[0].t", [{"t": 21.5}], 21.5),
        ("$.sensor data.value", {"sensor data": {"value": True}}, True),
    ],
)
def test_json_path_finds(path: str, document: object, found: object) -> None:
    assert JsonPath.from_str(path).find(document) == found


@pytest.mark.parametrize(("path", "document"), [("$.x", {"a": 1}), ("$.a[3]", {"a": [1]}), ("$.a.b", {"a": 5})])
def test_json_path_missing(path: str, document: object) -> None:
    assert JsonPath.from_str(path).find(document) is MISSING


@pytest.mark.parametrize("path", ["a.b", "$.", "$..a", "$[x]", "$.a["])
def test_bad_json_paths_are_refused_naming_the_offset_or_rule(path: str) -> None:
    with pytest.raises(ValueError, match="JSON path"):
        JsonPath.from_str(path)


@pytest.mark.parametrize(
    ("value", "datatype", "expected"),
    [
        (21.5, DataType.Double, 21.5),
        (3, DataType.Float, 3.0),
        (7, DataType.Int16, 7),
        (7.0, DataType.UInt32, 7),
        (-128, DataType.Int8, -128),
        (True, DataType.Boolean, True),
        ("ok", DataType.String, "ok"),
        ({"a": 1}, DataType.String, '{"a":1}'),
    ],
)
def test_convert(value: object, datatype: DataType, expected: object) -> None:
    assert convert(value, datatype) == expected


@pytest.mark.parametrize(
    ("value", "datatype", "reason"),
    [
        ("hot", DataType.Double, "not a number"),
        (True, DataType.Int32, "not a number"),
        (1, DataType.Boolean, "not a boolean"),
        (2.5, DataType.Int32, "not an integer"),
        (300, DataType.UInt8, "outside UInt8"),
        (-1, DataType.UInt16, "outside UInt16"),
    ],
)
def test_convert_refuses_with_a_reason(value: object, datatype: DataType, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        convert(value, datatype)


def _config(topic: str) -> MqttJsonBridgeConfig:
    return MqttJsonBridgeConfig.model_validate(
        {
            "name": "json-test",
            "edge": {"group": "g"},
            "devices": [
                {
                    "id": "mixer",
                    "mappings": [
                        {"topic": f"{topic}/+/status", "path": "$.temp", "name": "Temperature", "unit": "degC"},
                        {"topic": f"{topic}/+/status", "path": "$.state.running", "name": "Running", "type": "Boolean"},
                        {"topic": f"{topic}/count", "name": "Count", "type": "UInt32"},
                    ],
                }
            ],
        }
    )


def test_config_refuses_a_bad_json_path() -> None:
    data = _config("t").model_dump()
    data["devices"][0]["mappings"][0]["path"] = "temp"
    with pytest.raises(ValidationError, match="path"):
        MqttJsonBridgeConfig.model_validate(data)


async def test_source_maps_json_messages_to_samples(mosquitto: Mosquitto, unique_topic: str) -> None:
    url = BrokerUrl.from_str(mosquitto.url)
    source = MqttJsonSource(config=_config(unique_topic), clients=network_clients(url))
    assert [(t.name, t.datatype, t.unit) for t in source.tags()] == [
        ("Temperature", DataType.Double, "degC"),
        ("Running", DataType.Boolean, None),
        ("Count", DataType.UInt32, None),
    ]
    async with source, MqttClient(url=url, client_id=f"{unique_topic}-dev") as device:
        events = source.events()
        await device.publish(f"{unique_topic}/m1/status", b'{"temp": 41.5, "state": {"running": true}}', qos=1)
        await device.publish(f"{unique_topic}/m1/status", b"{not json", qos=1)
        await device.publish(f"{unique_topic}/count", b'"many"', qos=1)
        await device.publish(f"{unique_topic}/count", b"12", qos=1)
        async with asyncio.timeout(5):
            first = await anext(events)
            bad = await anext(events)
            good = await anext(events)
        assert isinstance(first, Samples)
        assert first.device == "mixer"
        assert [(s.name, s.value, s.quality) for s in first.samples] == [
            ("Temperature", 41.5, Quality.good),
            ("Running", True, Quality.good),
        ]
        assert isinstance(bad, Samples)
        assert [(s.name, s.value, s.quality) for s in bad.samples] == [("Count", None, Quality.bad)]
        assert isinstance(good, Samples)
        assert [(s.name, s.value) for s in good.samples] == [("Count", 12)]
        assert source.rejected == 2  # the broken JSON and the string count
        with pytest.raises(BridgeError, match="read-only"):
            await source.write("mixer", "Count", 1)

"""The FINS config model: addresses checked where they are written, every field described in the JSON Schema."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from model.bridges import BridgeConfig
from model.bridges.fins import FinsBridgeConfig


def _config(*tags: dict[str, Any], **device: Any) -> dict[str, Any]:
    return {
        "kind": "fins",
        "name": "omron",
        "edge": {"group": "g"},
        "devices": [{"id": "pump", "host": "127.0.0.1", "tags": list(tags), **device}],
    }


def test_a_valid_config_loads_through_the_bridge_union() -> None:
    from pydantic import TypeAdapter

    config = TypeAdapter(BridgeConfig).validate_python(
        _config({"name": "Flow", "address": "DM100", "type": "float32", "unit": "m3/h", "writable": True})
    )
    assert isinstance(config, FinsBridgeConfig)
    device = config.devices[0]
    assert (device.port, device.transport, device.node, device.max_words) == (9600, "udp", None, 999)
    assert str(device.tags[0].location) == "D100"


@pytest.mark.parametrize(
    ("tag", "words"),
    [
        ({"name": "x", "address": "D40000"}, "devices.0.tags.0.address"),
        ({"name": "x", "address": "D40000"}, "'D40000': word 40000 is past the D area's last word 32767"),
        ({"name": "x", "address": "W1.03", "type": "int16"}, "bit address W1.03 needs type bool"),
        ({"name": "x", "address": "D0", "type": "string"}, "a string needs length"),
        ({"name": "x", "address": "D32767", "type": "int32"}, "D32767 + 2 words runs past the D area"),
        ({"name": "x", "address": "A10", "writable": True}, "A0..A447 are read-only"),
        ({"name": "x", "address": "D0", "poll": "fast"}, "poll group 'fast' not in poll_groups"),
    ],
)
def test_bad_tags_are_refused_naming_the_tag_and_address(tag: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        FinsBridgeConfig.model_validate(_config(tag))
    assert words in str(caught.value)


def test_duplicate_names_and_oversized_strings() -> None:
    with pytest.raises(ValidationError, match="name used twice"):
        FinsBridgeConfig.model_validate(_config({"name": "a", "address": "D0"}, {"name": "a", "address": "D1"}))
    with pytest.raises(ValidationError, match="exceed max_words 10"):
        FinsBridgeConfig.model_validate(
            _config({"name": "s", "address": "D0", "type": "string", "length": 20}, max_words=10)
        )


def test_every_schema_field_is_described() -> None:
    schema = FinsBridgeConfig.model_json_schema()
    missing = [
        f"{name}.{field}"
        for name, model in schema["$defs"].items()
        for field, spec in model.get("properties", {}).items()
        if "description" not in spec
    ]
    assert missing == []

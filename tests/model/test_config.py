"""The Settings model and the exported JSON Schemas."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import model
from model.config import Settings
from model.schema import all_schemas, settings_json_schema
from tests.exports import assert_all_is_honest

LINE1, LINE2 = "acme/dallas/bottling/line1", "acme/dallas/bottling/line2"


def test_defaults_are_safe():
    settings = Settings()
    assert settings.plant is None
    assert settings.data_dir == Path("data")
    assert settings.demo is True
    assert settings.log_level == "INFO"
    assert settings.broker.url is None
    assert settings.broker.config == Path("broker.yaml")
    assert (settings.broker.mqtt_port, settings.broker.ws_port, settings.broker.tls_port) == (None, None, None)
    assert settings.host.host_id == "uns-hub"
    assert settings.host.groups == ["+"]
    assert settings.host.republish_qos == 0
    assert (settings.web.bind, settings.web.http_port) == ("127.0.0.1", 8080)


def test_constructing_settings_reads_no_environment(monkeypatch):
    monkeypatch.setenv("UNS_DEMO", "false")
    monkeypatch.setenv("UNS_WEB__HTTP_PORT", "1")
    monkeypatch.setenv("UNS_BROKER", "not json")
    settings = Settings()
    assert settings.demo is True
    assert settings.web.http_port == 8080


@pytest.mark.parametrize(
    ("data", "attr", "expected"),
    [
        ({"log_level": "debug"}, "log_level", "DEBUG"),
        ({"broker": {"url": "mqtt://user:pass@broker.local:1884"}}, "broker.url", "mqtt://user:pass@broker.local:1884"),
        ({"broker": {"url": "wss://h"}}, "broker.url", "wss://h"),
        ({"broker": {"mqtt_port": 0}}, "broker.mqtt_port", 0),
        ({"broker": {"tls_port": 65535}}, "broker.tls_port", 65535),
        ({"host": {"groups": ["acme-dallas", "+"]}}, "host.groups", ["acme-dallas", "+"]),
        ({"host": {"republish_qos": 1}}, "host.republish_qos", 1),
        ({"web": {"http_port": "0"}}, "web.http_port", 0),
        ({"demo": "no"}, "demo", False),
        ({"mes": {"output_cells": {LINE1: f"{LINE1}/filler"}}}, "mes.output_cells", {LINE1: f"{LINE1}/filler"}),
        ({"mes": {"output_cells": {LINE1: LINE1}}}, "mes.output_cells", {LINE1: LINE1}),  # the line's own counts
        ({"mes": {"output_only_lines": [LINE1]}}, "mes.output_only_lines", [LINE1]),
    ],
)
def test_accepts(data, attr, expected):
    value: object = Settings.model_validate(data)
    for part in attr.split("."):
        value = getattr(value, part)
    assert value == expected


@pytest.mark.parametrize(
    ("data", "loc", "message"),
    [
        ({"log_level": "loud"}, ("log_level",), "'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL'"),
        ({"broker": {"url": "http://h:1"}}, ("broker", "url"), "scheme must be one of mqtt, mqtts, ws, wss"),
        ({"broker": {"url": "mqtt://:1883"}}, ("broker", "url"), "broker url has no host"),
        ({"broker": {"url": "mqtt://h:99999"}}, ("broker", "url"), "broker url port: Port out of range"),
        ({"broker": {"url": "mqtt://h:x"}}, ("broker", "url"), "broker url port"),
        ({"broker": {"url": "mqtt://h/topic"}}, ("broker", "url"), "takes no path"),
        ({"broker": {"mqtt_port": 70000}}, ("broker", "mqtt_port"), "less than or equal to 65535"),
        ({"broker": {"ws_port": -1}}, ("broker", "ws_port"), "greater than or equal to 0"),
        ({"broker": {"max_payload_bytes": 0}}, ("broker", "max_payload_bytes"), "greater than or equal to 1"),
        ({"broker": {"port": 1}}, ("broker", "port"), "Extra inputs are not permitted"),
        ({"host": {"host_id": "a/b"}}, ("host", "host_id"), "Sparkplug id 'a/b' may not contain '/'"),
        ({"host": {"host_id": ""}}, ("host", "host_id"), "a Sparkplug id may not be empty"),
        ({"host": {"groups": []}}, ("host", "groups"), "at least 1 item"),
        ({"host": {"groups": ["a", "#"]}}, ("host", "groups", 1), "Sparkplug id '#' may not contain '#'"),
        ({"host": {"groups": ["a+"]}}, ("host", "groups", 0), "Sparkplug id 'a+' may not contain '+'"),
        ({"host": {"republish_qos": 2}}, ("host", "republish_qos"), "less than or equal to 1"),
        ({"host": {"health_interval_s": 0}}, ("host", "health_interval_s"), "greater than 0"),
        ({"web": {"http_port": 65536}}, ("web", "http_port"), "less than or equal to 65535"),
        ({"historian": {"bogus": 1}}, ("historian", "bogus"), "Extra inputs are not permitted"),
        # a line's output cell: not empty (it was read as "not configured"), a cell of that line, keyed by a line
        ({"mes": {"output_cells": {LINE1: ""}}}, ("mes", "output_cells"), f"{LINE1}: empty; name a cell of the line"),
        (
            {"mes": {"output_cells": {LINE1: f"{LINE2}/filler2"}}},
            ("mes", "output_cells"),
            f"{LINE1}: '{LINE2}/filler2' is not a cell of this line",
        ),
        (
            {"mes": {"output_cells": {LINE1: f"{LINE1}/filler/valve"}}},
            ("mes", "output_cells"),
            f"{LINE1}: '{LINE1}/filler/valve' is not a cell of this line",
        ),
        (
            {"mes": {"output_cells": {f"{LINE1}/filler": f"{LINE1}/filler"}}},
            ("mes", "output_cells", f"{LINE1}/filler", "[key]"),
            f"'{LINE1}/filler' is not a line path: four ids enterprise/site/area/line",
        ),
        ({"mes": {"output_only_lines": ["acme/dallas/Bottling/line1"]}}, ("mes", "output_only_lines", 0), "not a line"),
        ({"mes": {"output_only_lines": [""]}}, ("mes", "output_only_lines", 0), "'' is not a line path"),
    ],
)
def test_rejects(data, loc, message):
    with pytest.raises(ValidationError) as info:
        Settings.model_validate(data)
    errors = info.value.errors()
    assert [e["loc"] for e in errors] == [loc]
    assert message in errors[0]["msg"]


def _properties(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every property of every object in a schema, with its name."""
    out = []
    objects = [schema, *schema.get("$defs", {}).values()]
    for obj in objects:
        for name, prop in obj.get("properties", {}).items():
            out.append((f"{obj.get('title')}.{name}", prop))
    return out


@pytest.mark.parametrize("name", sorted(all_schemas()))
def test_every_field_is_described(name):
    schema = all_schemas()[name]
    missing = [name for name, prop in _properties(schema) if not prop.get("description")]
    assert missing == []


def test_settings_schema_forbids_extra_and_shows_defaults():
    schema: dict[str, Any] = settings_json_schema()
    assert schema["additionalProperties"] is False
    assert schema["properties"]["demo"]["default"] is True
    assert schema["$defs"]["WebSection"]["properties"]["http_port"]["default"] == 8080
    assert schema["$defs"]["BrokerSection"]["additionalProperties"] is False


def test_plant_schema_carries_the_slug_rule():
    plant: dict[str, Any] = all_schemas()["plant"]
    cell_id = plant["$defs"]["Cell"]["properties"]["id"]
    assert cell_id["pattern"] == model.SLUG_PATTERN
    assert cell_id["not"] == {"enum": ["alarm", "cmd", "data", "kpi", "mes"]}


def test_settings_schema_carries_the_line_and_cell_path_rules():
    schema: dict[str, Any] = settings_json_schema()
    mes = schema["$defs"]["MesSection"]["properties"]
    slug = model.SLUG_PATTERN.strip("^$")
    line, cell = f"^{slug}(/{slug}){{3}}$", f"^{slug}(/{slug}){{3,4}}$"  # an output: a cell of the line, or itself
    assert mes["output_cells"]["patternProperties"] == {line: {"type": "string", "pattern": cell}}
    assert mes["output_only_lines"]["items"] == {"type": "string", "pattern": line}


@pytest.mark.parametrize(
    "module",
    [
        "model",
        "model.config",
        "model.envelope",
        "model.equipment",
        "model.lazy",
        "model.mes",
        "model.schema",
        "model.topic",
    ],
)
def test_all_is_honest(module):
    assert_all_is_honest(module)


def test_package_reexports_every_module_name():
    exported = set(model.__all__)
    for module in ("model.config", "model.envelope", "model.equipment", "model.schema", "model.topic"):
        assert set(importlib.import_module(module).__all__) <= exported, module

"""The HTTP source's config: a registered kind, every field described, secrets never shown."""

from __future__ import annotations

from pathlib import Path

from pydantic import TypeAdapter

from bridges.http import HttpSource
from bridges.registry import KINDS, build_source
from model.bridges import BridgeConfig
from model.bridges.http import HttpBridgeConfig
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl

_CONFIG = {
    "kind": "http",
    "name": "erp",
    "edge": {"group": "biz"},
    "poll": {
        "url": "https://erp.local/api",
        "auth": {"kind": "oauth2", "token_url": "https://erp.local/t", "client_id": "u", "client_secret": "s3cret"},
    },
    "webhook": {"secret": "h00k"},
    "devices": [{"id": "d", "metrics": [{"path": "$.v", "name": "V"}]}],
}


def test_http_is_a_registered_kind(tmp_path: Path) -> None:
    config = TypeAdapter(BridgeConfig).validate_python(_CONFIG)
    assert isinstance(config, HttpBridgeConfig)
    assert "http" in KINDS
    assert isinstance(build_source(config, network_clients(BrokerUrl(port=1)), tmp_path), HttpSource)


def test_every_field_is_described() -> None:
    schema = HttpBridgeConfig.model_json_schema()
    for model in [schema, *schema["$defs"].values()]:
        for field, spec in model.get("properties", {}).items():
            assert spec.get("description"), f"{model.get('title')}.{field} has no description"


def test_secrets_never_show() -> None:
    text = repr(HttpBridgeConfig.model_validate(_CONFIG)) + HttpBridgeConfig.model_validate(_CONFIG).model_dump_json()
    assert "s3cret" not in text
    assert "h00k" not in text

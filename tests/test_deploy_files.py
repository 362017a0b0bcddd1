"""The deployment examples the docs point at must stay valid."""

from pathlib import Path

import yaml

from model.config import Settings
from uns.broker import load_broker_config

ROOT = Path(__file__).parent.parent


def test_bridges_example_is_valid_settings() -> None:
    settings = Settings.model_validate(yaml.safe_load((ROOT / "deploy/bridges.example.yaml").read_text()))
    kinds = [bridge.kind for bridge in settings.bridges]
    assert kinds[:2] == ["modbus", "opcua"]
    assert len(kinds) == len(set(kinds)), "one example per kind"


def test_shipped_broker_yaml_is_valid_and_loopback_only() -> None:
    config = load_broker_config(ROOT / "broker.yaml")
    assert config.listeners.tcp.bind == "127.0.0.1"


def test_web_users_example_is_valid_and_closed() -> None:
    config = load_broker_config(ROOT / "deploy/web-users.yaml")
    assert (config.allow_anonymous, dict(config.users)) == (False, {})


def test_sinks_example_is_valid_settings() -> None:
    settings = Settings.model_validate(yaml.safe_load((ROOT / "deploy/sinks.example.yaml").read_text()))
    kinds = {(sink.kind, sink.name, sink.shared_group) for sink in settings.sinks}
    assert {("postgres", "pg", "pg"), ("rest", "erp", None), ("sql_insert", "erp-staging", None)} <= kinds
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert compose["services"]["pg-sink"]["command"] == ["sink", "pg", "--config", "/config/sinks.yaml"]

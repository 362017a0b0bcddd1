"""A settings file without ``rules:`` runs the built-in (demo) rules and ``rules: []`` none, at start as on reload."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.rules import Rule
from uns.broker.acl import AclPolicy
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl
from uns.rules.demo import builtin_rules, demo_rules
from uns.rules.service import RuleService, read_rules, starting_rules
from uns.settings import load_plant, load_settings

PLANT = load_plant(None)
HOT = """rules:
  - name: hot
    trigger: {kind: value, topic: acme/dallas/bottling/line1/filler/data/Temp, above: 80}
    actions: [{kind: alarm, path: "${path}", name: too-hot}]
"""


def _previewing(*, rules: list[Rule], builtin: list[Rule]) -> RuleService:
    clients = network_clients(BrokerUrl.from_str("mqtt://127.0.0.1:1"))  # never connected: preview only
    return RuleService(rules=rules, builtin=builtin, plant=PLANT, clients=clients, acl=AclPolicy())


def test_a_file_without_rules_keeps_the_demo_rules_and_one_with_rules_replaces_them(tmp_path: Path) -> None:
    demo = demo_rules(PLANT)
    service = _previewing(rules=demo, builtin=demo)
    file = tmp_path / "hub.yaml"
    file.write_text("# transforms only\ntransforms: []\n")
    assert service.preview_file(file).lines() == ["no change"]
    file.write_text(HOT)
    assert service.preview_file(file).lines() == ["+ hot", "- machine-faulted", "- order-completed-webhook"]
    file.write_text("rules: []\n")  # an explicit empty list: no rules at all
    assert service.preview_file(file).lines() == ["- machine-faulted", "- order-completed-webhook"]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("demo: true\n", ["machine-faulted", "order-completed-webhook"]),  # no rules: key: the demo's
        ("demo: true\nrules: []\n", []),  # was the demo's at start, none on reload
        ("demo: false\n", []),
    ],
)
def test_start_up_and_reload_read_the_rules_key_alike(tmp_path: Path, text: str, names: list[str]) -> None:
    file = tmp_path / "hub.yaml"
    file.write_text(text)
    settings = load_settings(config_file=file, overrides={"data_dir": tmp_path}, environ={})
    builtin = builtin_rules(settings, PLANT)  # as uns up and uns rules check take them
    started = starting_rules(settings, builtin)
    assert [rule.name for rule in started] == names
    assert [rule.name for rule in read_rules(file, builtin=builtin)] == names
    # a reload of the file it started from changes nothing
    assert _previewing(rules=started, builtin=builtin).preview_file(file).lines() == ["no change"]

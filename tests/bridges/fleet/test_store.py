"""The hub's version store: numbers, hashes, refusals naming the field, rollback as a new version, diff."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bridges.fleet.rig import json_bridge
from uns.errors import ConfigError
from uns.fleet import FleetStore, config_hash, validate_agent_config


def test_versions_grow_and_rollback_is_a_new_version_with_old_content(tmp_path: Path) -> None:
    store = FleetStore(directory=tmp_path)
    v1 = store.deploy("line1", {"bridges": [json_bridge("n1", "g", "t/a")]}, author="ann", note="first")
    v2 = store.deploy("line1", {"bridges": [json_bridge("n1", "g", "t/a", unit="degF")]}, author="bob")
    assert (v1.version, v2.version) == (1, 2)
    assert v1.hash == config_hash(v1.config) != v2.hash
    assert (v1.author, v1.note) == ("ann", "first")
    back = store.rollback("line1", 1, author="cy")
    assert (back.version, back.hash, back.note) == (3, v1.hash, "rollback to 1")
    assert [v.version for v in store.versions("line1")] == [1, 2, 3]
    assert store.latest("line1") == back
    assert store.agents() == ["line1"]
    diff = store.diff("line1", 1, 2)
    assert "-      unit: degC" in diff
    assert "+      unit: degF" in diff


def test_an_invalid_config_is_refused_naming_the_field_and_not_stored(tmp_path: Path) -> None:
    store = FleetStore(directory=tmp_path)
    bad = json_bridge("n1", "g", "t/a")
    bad["devices"] = []
    with pytest.raises(ConfigError, match=r"fleet/line1: bridges\[0\]\.mqtt_json\.devices: List should have"):
        store.deploy("line1", {"bridges": [bad]}, author="ann")
    assert store.versions("line1") == []
    with pytest.raises(ConfigError, match="no such version"):
        store.get("line1", 7)


def test_a_field_the_agent_s_models_do_not_know_is_refused_naming_it() -> None:
    # what an agent older than the hub says of a version with a field it does not know (it validates a version
    # with this function, its own models): the dotted path of the field, the version, and the value
    config = {"bridges": [json_bridge("press1", "g", "t/mixer", not_known_here=["press/*"])]}
    with pytest.raises(ConfigError) as caught:
        validate_agent_config(config, "version 3")
    assert str(caught.value) == (
        "version 3: bridges[0].mqtt_json.edge.not_known_here: Extra inputs are not permitted (got ['press/*'])"
    )


def test_a_new_version_names_its_bridges_and_an_old_one_without_them_still_rolls_back(tmp_path: Path) -> None:
    store = FleetStore(directory=tmp_path)
    for empty in ({}, {"note": "x"}):  # an empty file, or one that forgot the list: it would stop every bridge
        with pytest.raises(ConfigError, match=r"fleet/line1: bridges: missing: list the agent's bridges"):
            store.deploy("line1", empty, author="ann")
        with pytest.raises(ConfigError, match=r"fleet/line1: bridges: missing"):
            store.preview("line1", empty)
    assert store.versions("line1") == []
    assert store.deploy("line1", {"bridges": []}, author="ann").config == {"bridges": []}  # clearing, on purpose
    old = store.deploy("line1", {}, author="ann", validate=False)  # as a hub before the check stored it
    store.deploy("line1", {"bridges": [json_bridge("n1", "g", "t/a")]}, author="bob")
    assert store.rollback("line1", old.version, author="cy").config == {}


def test_labels_select_agents_and_agent_resolves_per_agent(tmp_path: Path) -> None:
    store = FleetStore(directory=tmp_path)
    store.set_labels("a", {"site": "dallas", "line": "l1"})
    store.set_labels("b", {"site": "dallas", "line": "l2"})
    store.set_labels("b", {"line": ""})  # an empty value removes the label
    assert store.labels("b") == {"site": "dallas"}
    assert store.select({"site": "dallas"}) == ["a", "b"]
    assert store.select({"site": "dallas", "line": "l1"}) == ["a"]
    version = store.deploy("a", {"bridges": [json_bridge("press-${agent}", "g", "t/${agent}")]}, author="x")
    bridge = version.config["bridges"][0]  # type: ignore[index]
    assert (bridge["name"], bridge["devices"][0]["mappings"][0]["topic"]) == ("press-a", "t/a")

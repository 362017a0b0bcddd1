"""``uns up --hand-off NODE=AGENT``: the bridge leaves the hub's list and lands in the agent's desired config."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import TypeAdapter

from model.bridges import BridgeConfig
from model.schema import all_schemas
from tests.exports import assert_all_is_honest
from uns.errors import ConfigError
from uns.fleet import FleetStore, validate_agent_config
from uns.handoff import hand_off, parse_hand_offs

_BRIDGES: TypeAdapter[BridgeConfig] = TypeAdapter(BridgeConfig)


def _json_bridge(name: str, unit: str = "degC") -> BridgeConfig:
    return _BRIDGES.validate_python(
        {
            "kind": "mqtt_json",
            "name": name,
            "edge": {"group": "demo", "primary_host_id": "uns-hub"},
            "devices": [{"id": "mixer", "mappings": [{"topic": "a/b", "path": "$.t", "name": "T", "unit": unit}]}],
        }
    )


def test_a_handed_off_bridge_moves_into_the_agents_desired_config_once(tmp_path: Path) -> None:
    store = FleetStore(directory=tmp_path / "fleet")
    configs = [_json_bridge("press1"), _json_bridge("press2")]
    kept, versions = hand_off(configs, {"press2": "line1"}, store)
    assert [c.node_id for c in kept] == ["press1"]
    (v1,) = versions
    assert (v1.agent, v1.version, v1.author) == ("line1", 1, "uns up")
    assert v1.note == "handed off by uns up: press2"
    assert validate_agent_config(v1.config, "v1").bridges == [configs[1]]  # the same bridge, through JSON
    # the same hand-off again (a restart) adds no version; a changed bridge replaces its old self
    assert hand_off(configs, {"press2": "line1"}, store)[1] == [v1]
    _kept, (v2,) = hand_off([_json_bridge("press2", unit="degF")], {"press2": "line1"}, store)
    assert v2.version == 2
    assert [b.node_id for b in validate_agent_config(v2.config, "v2").bridges] == ["press2"]
    # another bridge for the same agent joins the one it has
    _kept, (v3,) = hand_off(configs, {"press1": "line1"}, store)
    assert [b.node_id for b in validate_agent_config(v3.config, "v3").bridges] == ["press2", "press1"]


def test_an_unknown_edge_node_is_refused_naming_the_bridges(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--hand-off") as caught:
        hand_off([_json_bridge("press1")], {"press9": "line1"}, FleetStore(directory=tmp_path))
    assert "press1" in str(caught.value)
    assert "press9" in str(caught.value)


@pytest.mark.parametrize("item", ["press1", "press1=Line 1", "=line1"])
def test_bad_hand_off_flags_name_the_item(item: str) -> None:
    with pytest.raises(ConfigError, match="NODE=AGENT"):
        parse_hand_offs([item])


def test_flags_parse_and_the_agent_schema_is_exported() -> None:
    assert parse_hand_offs(["fins-utilities=utilities", "s7=line2"]) == {"fins-utilities": "utilities", "s7": "line2"}
    schema = all_schemas()["fleet.agent"]
    assert "bridges" in schema["properties"]  # type: ignore[operator]
    assert_all_is_honest("uns.handoff")

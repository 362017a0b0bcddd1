from __future__ import annotations

import pytest

from uns.errors import SparkplugError
from uns.sparkplug import MessageType, SparkplugTopic

_VALID = [
    ("spBv1.0/Plant1/NBIRTH/edge1", "Plant1", MessageType.NBIRTH, "edge1", None),
    ("spBv1.0/Plant1/NDATA/edge1", "Plant1", MessageType.NDATA, "edge1", None),
    ("spBv1.0/Plant1/NDEATH/edge1", "Plant1", MessageType.NDEATH, "edge1", None),
    ("spBv1.0/Plant1/NCMD/edge1", "Plant1", MessageType.NCMD, "edge1", None),
    ("spBv1.0/Plant1/DBIRTH/edge1/filler", "Plant1", MessageType.DBIRTH, "edge1", "filler"),
    ("spBv1.0/Plant1/DDATA/edge1/filler", "Plant1", MessageType.DDATA, "edge1", "filler"),
    ("spBv1.0/Plant1/DDEATH/edge1/filler", "Plant1", MessageType.DDEATH, "edge1", "filler"),
    ("spBv1.0/Plant1/DCMD/edge1/filler", "Plant1", MessageType.DCMD, "edge1", "filler"),
    (
        "spBv1.0/Sparkplug B Devices/DDATA/Raspberry Pi/Pibrella",
        "Sparkplug B Devices",
        MessageType.DDATA,
        "Raspberry Pi",
        "Pibrella",
    ),
    ("spBv1.0/grüppe/NDATA/ノード", "grüppe", MessageType.NDATA, "ノード", None),
    ("spBv1.0/STATE/scada-host", "", MessageType.STATE, "scada-host", None),
]


@pytest.mark.parametrize(("text", "group", "kind", "node", "device"), _VALID, ids=[v[0] for v in _VALID])
def test_valid_topics_parse_and_round_trip(
    text: str, group: str, kind: MessageType, node: str, device: str | None
) -> None:
    topic = SparkplugTopic.from_str(text)
    assert (topic.group_id, topic.message_type, topic.edge_node_id, topic.device_id) == (group, kind, node, device)
    assert topic.message_type is kind
    assert str(topic) == text
    assert SparkplugTopic(group_id=group, message_type=kind, edge_node_id=node, device_id=device) == topic


_INVALID = [
    ("spAv1.0/g/NDATA/n", "first level must be 'spBv1.0'"),
    ("STATE/host", "first level must be 'spBv1.0'"),
    ("", "first level must be 'spBv1.0'"),
    ("spBv1.0", "got 1 levels"),
    ("spBv1.0/g/NDATA", "got 3 levels"),
    ("spBv1.0/g/NDATUM/n", "unknown message type 'NDATUM'"),
    ("spBv1.0/g/ndata/n", "unknown message type 'ndata'"),
    ("spBv1.0/g/DDATA/n", "DDATA needs a device id"),
    ("spBv1.0/g/DBIRTH/n", "DBIRTH needs a device id"),
    ("spBv1.0/g/NDATA/n/d", "NDATA takes no device id"),
    ("spBv1.0/g/NBIRTH/n/d", "NBIRTH takes no device id"),
    ("spBv1.0/g/DDATA/n/d/extra", "extra levels after the device id"),
    ("spBv1.0/STATE/host/extra", "a STATE topic is spBv1.0/STATE/<host_id>"),
    ("spBv1.0/STATE", "got 2 levels"),
    ("spBv1.0/STATE/", "host id is empty"),
    ("spBv1.0//NDATA/n", "group id is empty"),
    ("spBv1.0/g/NDATA/", "edge node id is empty"),
    ("spBv1.0/g/DDATA/n/", "device id is empty"),
    ("spBv1.0/g+/NDATA/n", "group id 'g+' contains '+'"),
    ("spBv1.0/g/NDATA/#", "edge node id '#' contains '#'"),
    ("spBv1.0/g/DCMD/n/dev+1", "device id 'dev+1' contains '+'"),
    ("spBv1.0/STATE/h#", "host id 'h#' contains '#'"),
]


@pytest.mark.parametrize(("text", "reason"), _INVALID, ids=[v[0] or "empty" for v in _INVALID])
def test_invalid_topics_name_the_reason(text: str, reason: str) -> None:
    with pytest.raises(SparkplugError) as info:
        SparkplugTopic.from_str(text)
    assert info.value.topic == text
    assert reason in info.value.reason


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"group_id": "g", "message_type": MessageType.DDATA, "edge_node_id": "n"}, "DDATA needs a device id"),
        (
            {"group_id": "g", "message_type": MessageType.NDATA, "edge_node_id": "n", "device_id": "d"},
            "takes no device id",
        ),
        ({"group_id": "a/b", "message_type": MessageType.NDATA, "edge_node_id": "n"}, "group id 'a/b' contains '/'"),
        ({"group_id": "STATE", "message_type": MessageType.NDATA, "edge_node_id": "n"}, "'STATE' is reserved"),
        ({"group_id": "g", "message_type": MessageType.STATE, "edge_node_id": "h"}, "a STATE topic has no group id"),
        ({"group_id": "g", "message_type": "NOPE", "edge_node_id": "n"}, "unknown message type"),
    ],
)
def test_constructing_an_invalid_topic_fails(fields: dict[str, object], reason: str) -> None:
    with pytest.raises(SparkplugError, match=reason):
        SparkplugTopic(**fields)  # type: ignore[arg-type]


def test_plain_string_message_type_is_stored_as_the_enum() -> None:
    topic = SparkplugTopic(group_id="g", message_type="NBIRTH", edge_node_id="n")  # type: ignore[arg-type]
    assert topic.message_type is MessageType.NBIRTH


def test_state_topic_helpers() -> None:
    topic = SparkplugTopic.state("uns-hub")
    assert str(topic) == "spBv1.0/STATE/uns-hub"
    assert topic.host_id == "uns-hub"
    assert SparkplugTopic.from_str("spBv1.0/g/NDATA/n").host_id is None


_KINDS = {
    MessageType.NBIRTH: {"is_birth"},
    MessageType.DBIRTH: {"is_birth", "is_device"},
    MessageType.NDEATH: {"is_death"},
    MessageType.DDEATH: {"is_death", "is_device"},
    MessageType.NDATA: {"is_data"},
    MessageType.DDATA: {"is_data", "is_device"},
    MessageType.NCMD: {"is_command"},
    MessageType.DCMD: {"is_command", "is_device"},
    MessageType.STATE: set(),
}


@pytest.mark.parametrize(("kind", "true_flags"), _KINDS.items(), ids=[k.value for k in _KINDS])
def test_kind_properties(kind: MessageType, true_flags: set[str]) -> None:
    if kind is MessageType.STATE:
        topic = SparkplugTopic.state("h")
    else:
        device = "d" if "is_device" in true_flags else None
        topic = SparkplugTopic(group_id="g", message_type=kind, edge_node_id="n", device_id=device)
    flags = {f for f in ("is_device", "is_birth", "is_death", "is_data", "is_command") if getattr(topic, f)}
    assert flags == true_flags


def test_topics_are_frozen_and_hashable() -> None:
    topic = SparkplugTopic.from_str("spBv1.0/g/DDATA/n/d")
    assert {topic: 1}[SparkplugTopic.from_str("spBv1.0/g/DDATA/n/d")] == 1
    with pytest.raises(AttributeError):
        topic.group_id = "other"  # type: ignore[misc]

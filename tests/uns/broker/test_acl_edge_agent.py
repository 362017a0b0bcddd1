"""The bridge role of an `uns edge` agent's account (``edge_agent``): its own config and status topics only."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.fixtures.broker import broker_test_config
from uns.broker.acl import AclPolicy

_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"

# action, topic, allowed for the agent "line1" with edge node "fleet/press1"
CASES = [
    ("subscribe", "acme/hub/edge/line1/config", True),
    ("receive", "acme/hub/edge/line1/config", True),
    ("publish", "acme/hub/edge/line1/status", True),
    ("publish", "spBv1.0/fleet/NBIRTH/press1", True),
    ("subscribe", "acme/hub/edge/line2/config", False),  # another agent's config
    ("receive", "acme/hub/edge/+/config", False),
    ("publish", "acme/hub/edge/line2/status", False),  # another agent's status
    ("publish", "acme/hub/edge/line1/config", False),  # only the hub deploys
    ("publish", "acme/hub/host/health", False),
    ("subscribe", "acme/hub/edge/line1/status", False),
]


def _policy(**account: object) -> AclPolicy:
    user = {"password_hash": _HASH, "role": "bridge", "edge_nodes": ["fleet/press1"], **account}
    return AclPolicy(config=broker_test_config(users={"agent": user, "plain": {**user, "edge_agent": None}}))


@pytest.mark.parametrize(("action", "topic", "allowed"), CASES)
def test_an_agent_account_reaches_only_its_own_fleet_topics(action: str, topic: str, allowed: bool) -> None:
    policy = _policy(edge_agent="line1")
    principal = policy.principal("agent")
    assert principal is not None
    assert policy.decide(principal, action, topic).allowed is allowed


def test_a_bridge_account_without_an_agent_gets_no_fleet_topic() -> None:
    policy = _policy(edge_agent="line1")
    plain = policy.principal("plain")
    assert plain is not None
    assert not policy.decide(plain, "subscribe", "acme/hub/edge/line1/config").allowed
    assert not policy.decide(plain, "publish", "acme/hub/edge/line1/status").allowed


@pytest.mark.parametrize(("role", "agent", "error"), [("app", "line1", "only applies to role bridge"),
                                                      ("bridge", "Line 1", "String should match pattern")])  # fmt: skip
def test_edge_agent_is_refused_off_the_bridge_role_or_when_not_a_slug(role: str, agent: str, error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        broker_test_config(users={"a": {"password_hash": _HASH, "role": role, "edge_agent": agent}})


@pytest.mark.parametrize(
    ("role", "read_sparkplug"), [("app", False), ("app", True), ("viewer", False), ("viewer", True)]
)
def test_apps_and_viewers_read_an_agents_status_but_never_its_config(role: str, read_sparkplug: bool) -> None:
    # a desired config carries the agent's connector credentials (a SQL password, an AMQP URL with its user)
    user = {"password_hash": _HASH, "role": role, "read_sparkplug": read_sparkplug}
    policy = AclPolicy(config=broker_test_config(users={"reader": user}))
    reader = policy.principal("reader")
    assert reader is not None
    config = "acme/hub/edge/line1/config"
    assert policy.decide(reader, "subscribe", config) == policy.decide(reader, "receive", config)
    assert policy.decide(reader, "receive", config).reason == "fleet-config"
    assert not policy.decide(reader, "subscribe", "+/hub/edge/+/config").allowed
    assert policy.decide(reader, "subscribe", "#").allowed  # granted, the config is then refused on delivery
    assert policy.decide(reader, "receive", "acme/hub/edge/line1/status").allowed
    assert policy.decide(reader, "receive", "acme/hub/host/health").allowed


def test_the_host_reads_every_agents_config() -> None:
    policy = AclPolicy(config=broker_test_config(users={"hub": {"password_hash": _HASH, "role": "host"}}))
    host = policy.principal("hub")
    assert host is not None
    assert policy.decide(host, "receive", "acme/hub/edge/line1/config").allowed

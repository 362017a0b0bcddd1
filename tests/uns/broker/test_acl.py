import pytest

from model.broker_config import BrokerFileConfig
from uns.broker.acl import AclGuard, AclPolicy, Principal
from uns.broker.config import validate_broker_config
from uns.broker.stats import Counters
from uns.errors import ConfigError

_HASH = "$argon2id$v=19$m=65536,t=3,p=4$placeholder"
CONFIG = BrokerFileConfig.model_validate(
    {
        "listeners": {"tcp": {"port": 0}},
        "users": {
            "adm": {"password_hash": _HASH, "role": "admin"},
            "hub": {"password_hash": _HASH, "role": "host"},
            "plc": {"password_hash": _HASH, "role": "bridge", "edge_nodes": ["acme/line1", "+/shared"]},
            "mes": {"password_hash": _HASH, "role": "app"},
            "eye": {"password_hash": _HASH, "role": "viewer"},
            "spk": {"password_hash": _HASH, "role": "app", "read_sparkplug": True},
            "hub1": {"password_hash": _HASH, "role": "host", "host_ids": ["uns-hub"]},
        },
        "app_cmd_topics": ["acme/+/+/+/+/cmd/#"],
    }
)

CASES = [
    # user, action, topic, allowed, reason
    ("adm", "publish", "anything/at/all", True, ""),
    ("adm", "subscribe", "$SYS/#", True, ""),
    ("hub", "publish", "acme/dallas/pack/l1/filler/data/temp", True, ""),
    ("hub", "subscribe", "#", True, ""),
    ("hub", "subscribe", "$SYS/#", True, ""),  # the host reports the broker's drop count
    ("hub", "receive", "spBv1.0/acme/NCMD/line1", True, ""),
    ("plc", "publish", "spBv1.0/acme/NBIRTH/line1", True, ""),
    ("plc", "publish", "spBv1.0/acme/NDATA/line1", True, ""),
    ("plc", "publish", "spBv1.0/acme/DDATA/line1/pump", True, ""),
    ("plc", "publish", "spBv1.0/other/NDATA/shared", True, ""),  # "+/shared": any group
    ("plc", "publish", "spBv1.0/acme/NDATA/line2", False, "not-own-edge-node"),
    ("plc", "publish", "spBv1.0/acme/NCMD/line1", False, "not-own-edge-node"),
    ("plc", "publish", "spBv1.0/acme/DDATA/line1", False, "not-own-edge-node"),  # device topics need a device
    ("plc", "publish", "acme/dallas/mes/count", False, "not-own-edge-node"),
    ("plc", "subscribe", "spBv1.0/acme/NCMD/line1", True, ""),
    ("plc", "subscribe", "spBv1.0/acme/DCMD/line1/+", True, ""),
    ("plc", "subscribe", "spBv1.0/STATE/+", True, ""),
    ("plc", "subscribe", "spBv1.0/acme/DCMD/line1/#", False, "not-own-edge-node"),
    ("plc", "subscribe", "spBv1.0/#", False, "not-own-edge-node"),
    ("plc", "receive", "spBv1.0/STATE/hub", True, ""),
    ("plc", "receive", "spBv1.0/acme/NCMD/line2", False, "not-own-edge-node"),
    ("mes", "publish", "acme/mes/workorder", True, ""),
    ("mes", "publish", "acme/dallas/pack/line1/filler/mes/count", True, ""),  # depth 5
    ("mes", "publish", "a/b/c/d/e/f/mes/count", False, "app-publish"),  # depth 6: not equipment
    ("mes", "publish", "acme/dallas/pack/line1/filler/cmd/speed", True, ""),  # app_cmd_topics
    ("mes", "publish", "acme/dallas/pack/line1/filler/data/temp", False, "app-publish"),
    ("mes", "publish", "spBv1.0/acme/NCMD/line1", False, "app-publish"),
    ("mes", "subscribe", "#", True, ""),
    ("mes", "subscribe", "spBv1.0/acme/NCMD/#", False, "command-topic"),
    ("mes", "receive", "acme/dallas/pack/line1/filler/data/temp", True, ""),
    ("mes", "receive", "spBv1.0/acme/DCMD/line1/pump", False, "command-topic"),
    ("mes", "receive", "spBv1.0/acme/DDATA/line1/pump", False, "sparkplug-topic"),  # raw Sparkplug: opt in
    ("mes", "receive", "spBv1.0/STATE/uns-hub", False, "sparkplug-topic"),
    ("mes", "subscribe", "spBv1.0/#", False, "sparkplug-topic"),
    ("mes", "subscribe", "+/#", True, ""),  # granted: each delivery is judged
    ("mes", "receive", "acme/hub/host/health", True, ""),  # the hub's status is readable
    ("mes", "publish", "acme/hub/mes/errors", False, "hub-topic"),  # matches +/+/mes/#, yet the hub's own
    ("mes", "publish", "acme/unbound/grp/node/mes/count", False, "hub-topic"),
    ("mes", "publish", "spBv1.0/STATE/uns-hub", False, "host-state"),
    ("mes", "publish", "$SYS/broker/uptime", False, "dollar-topic"),
    # the mes filters' `+` and `#` also match other classes' and Sparkplug's topics with a level named mes
    ("mes", "publish", "acme/dallas/pack/line1/data/mes", False, "app-publish"),  # a data topic, tag "mes"
    ("mes", "publish", "acme/dallas/data/temp/mes/x", False, "app-publish"),
    ("mes", "publish", "acme/dallas/pack/line1/kpi/mes", False, "app-publish"),
    ("mes", "publish", "acme/dallas/pack/line1/cmd/mes", False, "app-publish"),  # cmd outside app_cmd_topics
    ("mes", "publish", "spBv1.0/acme/NBIRTH/mes", False, "app-publish"),  # a birth of node "mes"
    ("mes", "publish", "spBv1.0/acme/NCMD/mes", False, "app-publish"),
    ("mes", "publish", "spBv1.0/acme/DCMD/line1/mes", False, "app-publish"),  # a command to device "mes"
    ("mes", "publish", "acme/line1/mes", False, "app-publish"),  # no event name
    ("mes", "publish", "acme/dallas/pack/line1/filler/cmd/data", True, ""),  # app_cmd_topics, a cmd named data
    ("mes", "publish", "acme/dallas/pack/line1/filler/data/cmd", False, "app-publish"),  # matches the cmd filter
    ("mes", "publish", "spBv1.0/acme/DCMD/line1/cmd", False, "app-publish"),
    ("spk", "receive", "spBv1.0/acme/DDATA/line1/pump", True, ""),  # read_sparkplug: true
    ("spk", "subscribe", "spBv1.0/#", True, ""),
    ("spk", "receive", "spBv1.0/STATE/uns-hub", True, ""),
    ("spk", "receive", "spBv1.0/acme/NCMD/line1", False, "command-topic"),  # never commands
    ("spk", "subscribe", "spBv1.0/+/DCMD/#", False, "command-topic"),
    ("spk", "publish", "spBv1.0/acme/NCMD/line1", False, "app-publish"),
    ("plc", "publish", "spBv1.0/STATE/uns-hub", False, "host-state"),  # only the host speaks for the host
    ("plc", "publish", "acme/hub/host/health", False, "not-own-edge-node"),
    ("hub", "publish", "spBv1.0/STATE/uns-hub", True, ""),
    ("hub", "publish", "spBv1.0/STATE/other-host", True, ""),  # no host_ids: any host's STATE
    ("hub1", "publish", "spBv1.0/STATE/uns-hub", True, ""),  # host_ids: its own STATE only
    ("hub1", "publish", "spBv1.0/STATE/other-host", False, "host-state"),
    ("hub1", "publish", "spBv1.0/acme/NCMD/line1", True, ""),
    ("hub1", "subscribe", "spBv1.0/STATE/+", True, ""),
    ("hub", "publish", "acme/hub/mes/errors", True, ""),
    ("hub", "publish", "$SYS/broker/uptime", False, "dollar-topic"),
    ("adm", "publish", "$SYS/broker/uptime", False, "dollar-topic"),  # nobody publishes $-topics
    ("adm", "receive", "$SYS/broker/uptime", True, ""),
    ("eye", "publish", "acme/mes/workorder", False, "read-only"),
    ("eye", "subscribe", "acme/#", True, ""),
    ("eye", "receive", "spBv1.0/acme/NCMD/line1", False, "command-topic"),
    ("eye", "receive", "$SYS/broker/uptime", False, "dollar-topic"),
    ("eye", "receive", "spBv1.0/acme/NDATA/line1", False, "sparkplug-topic"),
    ("eye", "receive", "acme/hub/mes/errors", True, ""),
    ("eye", "publish", "spBv1.0/STATE/uns-hub", False, "read-only"),
]


@pytest.mark.parametrize(("user", "action", "topic", "allowed", "reason"), CASES)
def test_policy(user: str, action: str, topic: str, allowed: bool, reason: str) -> None:
    policy = AclPolicy(config=CONFIG)
    principal = policy.principal(user)
    assert principal is not None
    decision = policy.decide(principal, action, topic)
    assert (decision.allowed, decision.reason) == (allowed, reason)


def test_anonymous_gets_the_configured_role() -> None:
    policy = AclPolicy(config=CONFIG)
    assert policy.principal(None) == Principal(user=None, role="viewer")
    assert policy.principal("nobody") is None


def test_guard_counts_denials_per_action_and_reason() -> None:
    counters = Counters()
    guard = AclGuard(policy=AclPolicy(config=CONFIG), counters=counters)
    for _ in range(3):
        assert not guard.allowed(client_id="c1", user="eye", action="publish", topic="acme/mes/x")
    assert guard.allowed(client_id="c1", user="eye", action="subscribe", topic="acme/#")
    assert not guard.allowed(client_id="c2", user="ghost", action="subscribe", topic="a")
    stats = counters.snapshot()
    assert stats.acl_denials == {"publish": 3, "subscribe": 1, "receive": 0}
    assert stats.acl_denial_reasons == {"read-only": 3, "unknown-user": 1}


@pytest.mark.parametrize("role", ["admin", "host", "bridge"])
def test_read_sparkplug_is_for_apps_and_viewers_only(role: str) -> None:
    user = {"password_hash": _HASH, "role": role, "read_sparkplug": True}
    with pytest.raises(ConfigError) as caught:
        validate_broker_config({"listeners": {"tcp": {"port": 0}}, "users": {"u": user}})
    assert caught.value.path == "users.u.read_sparkplug"
    assert "app and viewer" in str(caught.value)


@pytest.mark.parametrize(
    ("user", "path"),
    [
        ({"role": "app", "host_ids": ["uns-hub"]}, "users.u.host_ids"),
        ({"role": "host", "host_ids": ["a/b"]}, "users.u.host_ids"),
        ({"role": "host", "host_ids": ["+"]}, "users.u.host_ids"),
    ],
)
def test_host_ids_are_for_hosts_and_one_level(user: dict[str, object], path: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_broker_config({"listeners": {"tcp": {"port": 0}}, "users": {"u": {"password_hash": _HASH, **user}}})
    assert caught.value.path == path

"""Each role against the real broker: allowed and denied publish, subscribe and receive."""

import asyncio
from pathlib import Path

import pytest

from tests.fixtures.broker import broker_test_config, start_broker
from tests.fixtures.waiting import until
from tests.uns.broker.paho_client import Paho
from uns.broker import EmbeddedBroker, LocalClient, hash_password
from uns.mqtt.types import Message

PASSWORD = "pw"  # noqa: S105  (a test account)

# role, action, topic (a filter for subscribe), allowed
CASES = [
    ("host", "publish", "acme/dallas/pack/l1/data/temp", True),
    ("host", "subscribe", "#", True),
    ("host", "subscribe", "$SYS/#", True),  # reads the broker's drop count, never publishes $-topics
    ("host", "receive", "spBv1.0/acme/NCMD/line1", True),
    ("bridge", "publish", "spBv1.0/acme/NBIRTH/line1", True),
    ("bridge", "publish", "spBv1.0/acme/DDATA/line1/pump", True),
    ("bridge", "publish", "spBv1.0/acme/NDATA/line2", False),
    ("bridge", "publish", "acme/mes/count", False),
    ("bridge", "subscribe", "spBv1.0/acme/NCMD/line1", True),
    ("bridge", "subscribe", "spBv1.0/STATE/+", True),
    ("bridge", "subscribe", "spBv1.0/#", False),
    ("bridge", "receive", "spBv1.0/acme/DCMD/line1/pump", True),
    ("bridge", "receive", "spBv1.0/STATE/hub", True),
    ("app", "publish", "acme/dallas/mes/workorder", True),
    ("app", "publish", "acme/dallas/pack/l1/cmd/speed", True),
    ("app", "publish", "acme/dallas/pack/l1/data/temp", False),
    ("app", "subscribe", "acme/#", True),
    ("app", "subscribe", "spBv1.0/acme/DCMD/#", False),
    ("app", "receive", "acme/dallas/pack/l1/data/temp", True),
    ("app", "receive", "spBv1.0/acme/NCMD/line1", False),
    ("viewer", "publish", "acme/dallas/mes/workorder", False),
    ("viewer", "subscribe", "acme/#", True),
    ("viewer", "receive", "acme/dallas/pack/l1/kpi/oee", True),
    ("viewer", "receive", "spBv1.0/acme/DCMD/line1/pump", False),
]
ROLES = sorted({case[0] for case in CASES})
RECEIVE_FILTERS = {
    "host": ["#"],
    "bridge": ["spBv1.0/acme/DCMD/line1/+", "spBv1.0/STATE/+"],
    "app": ["#"],
    "viewer": ["#"],
}


@pytest.fixture(scope="module")
def password_hash() -> str:
    return hash_password(PASSWORD)


def _config(password_hash: str) -> object:
    users: dict[str, dict[str, object]] = {role: {"password_hash": password_hash, "role": role} for role in ROLES}
    users["bridge"]["edge_nodes"] = ["acme/line1"]
    return broker_test_config(allow_anonymous=False, users=users, app_cmd_topics=["acme/+/+/+/cmd/#"])


async def _next(client: LocalClient) -> Message:
    return await asyncio.wait_for(anext(aiter(client.messages())), 5)


async def _check(broker: EmbeddedBroker, paho: Paho, admin: LocalClient, action: str, topic: str) -> bool:
    denied_before = broker.stats.acl_denials[action]
    if action == "subscribe":
        return await paho.subscribe(topic, qos=1) != 0x80
    if action == "publish":
        paho.client.publish(topic, b"p", qos=0)
        await until(
            lambda: admin.pending > 0 or broker.stats.acl_denials["publish"] > denied_before,
            what=f"publish on {topic} to be delivered or denied",
        )
        if admin.pending:
            assert (await _next(admin)).topic == topic
            return True
        return False
    count = len(paho.received)
    await admin.publish(topic, b"r", qos=0)
    await until(
        lambda: topic in paho.topics()[count:] or broker.stats.acl_denials["receive"] > denied_before,
        what=f"message on {topic} to be received or denied",
    )
    return topic in paho.topics()[count:]


@pytest.mark.parametrize("role", ROLES)
async def test_role(tmp_path: Path, password_hash: str, role: str) -> None:
    async with start_broker(tmp_path, _config(password_hash)) as broker:  # type: ignore[arg-type]
        admin = broker.local_client("admin")
        await admin.subscribe(["#"], qos=0)
        paho = Paho(broker.url, f"{role}-client", username=role, password=PASSWORD)
        try:
            await paho.connect()
            for topic_filter in RECEIVE_FILTERS[role]:  # the widest subscriptions the role may hold
                assert await paho.subscribe(topic_filter, qos=0) == 0
            results = {}
            for case_role, action, topic, _allowed in CASES:
                if case_role == role:
                    results[(action, topic)] = await _check(broker, paho, admin, action, topic)
                    while admin.pending:  # the admin sees its own receive-probe publishes too
                        await _next(admin)
        finally:
            paho.close()
        expected = {(action, topic): allowed for r, action, topic, allowed in CASES if r == role}
        assert results == expected
        denials = sum(1 for allowed in expected.values() if not allowed)
        assert sum(broker.stats.acl_denials.values()) == denials


async def test_anonymous_gets_its_role(tmp_path: Path) -> None:
    config = broker_test_config(anonymous_role="viewer")
    async with start_broker(tmp_path, config) as broker:
        admin = broker.local_client("admin")
        await admin.subscribe(["#"])
        paho = Paho(broker.url, "anon")
        try:
            await paho.connect()
            paho.client.publish("acme/mes/x", b"no", qos=0)
            await until(lambda: broker.stats.acl_denials["publish"] == 1, what="the viewer publish to be denied")
        finally:
            paho.close()
        assert broker.stats.acl_denial_reasons == {"read-only": 1}
        assert admin.pending == 0

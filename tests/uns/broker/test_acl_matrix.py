"""docs/security.md's role matrix, cell by cell, against the embedded broker and Mosquitto with real clients.

The table in the docs is the test's input, so the promise and the check cannot drift apart. Mosquitto
runs with ``deploy/mosquitto/acl`` (its placeholders filled in as the matrix's accounts say).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import subprocess
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.fixtures.broker import broker_test_config, start_broker
from tests.fixtures.mosquitto import run_mosquitto
from tests.fixtures.passwords import quick_hash
from tests.fixtures.requires import require
from tests.fixtures.waiting import until
from tests.uns.broker.paho_client import Paho
from uns.mqtt.types import BrokerUrl

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "pw"  # noqa: S105  (test accounts)
COLUMNS = {  # matrix column -> the account that plays it (its user name in deploy/mosquitto/acl too)
    "admin": "admin",
    "host": "host",
    "bridge": "bridge",
    "app": "app",
    "viewer": "viewer",
    "app with `read_sparkplug`": "app-sparkplug",
}
# Mosquitto's `deny` also refuses reading: the app accounts do not read what they must not write there
MOSQUITTO_DIFFERS = {
    ("app", "hub errors", "sub"),
    ("app", "unbound device", "sub"),
    ("app-sparkplug", "hub errors", "sub"),
    ("app-sparkplug", "unbound device", "sub"),
}


def parse_matrix(text: str) -> list[tuple[str, str, dict[str, set[str]]]]:
    """``(topic class, example topic, {user: {"pub", "sub"}})`` for each row between the matrix markers."""
    block = text.split("<!-- role-matrix:begin -->", 1)[1].split("<!-- role-matrix:end -->", 1)[0]
    lines = [line.strip() for line in block.strip().splitlines()]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header[:2] == ["topic class", "example topic"], header
    users = [COLUMNS[name] for name in header[2:]]
    rows = []
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        topic = re.fullmatch(r"`([^`]+)`", cells[1])
        assert topic is not None, line
        rights = {}
        for user, cell in zip(users, cells[2:], strict=True):
            rights[user] = set() if cell == "-" else {part.strip() for part in cell.split(",")}
            assert rights[user] <= {"pub", "sub"}, line
        rows.append((cells[0], topic.group(1), rights))
    return rows


MATRIX = parse_matrix((ROOT / "docs" / "security.md").read_text(encoding="utf-8"))


def test_matrix_covers_every_role_and_topic_class() -> None:
    classes = {row[0] for row in MATRIX}
    for needed in ("data", "kpi", "mes event", "hub health", "hub errors", "host STATE", "`$` topic"):
        assert needed in classes
    assert all(set(rights) == set(COLUMNS.values()) for _, _, rights in MATRIX)


def _users(password_hash: str) -> dict[str, dict[str, object]]:
    users: dict[str, dict[str, object]] = {}
    for user in COLUMNS.values():
        role = "app" if user == "app-sparkplug" else user
        users[user] = {"password_hash": password_hash, "role": role}
    users["bridge"]["edge_nodes"] = ["acme/line1"]
    users["app-sparkplug"]["read_sparkplug"] = True
    return users


class _Target:
    """One broker under test: its URL and how to tell that a probe publish was dropped."""

    def __init__(
        self,
        url: BrokerUrl,
        denials: Callable[[], int] | None,
        inject: Callable[[str, bytes], Awaitable[None]] | None,
    ) -> None:
        self.url = url
        self.denials = denials  # the embedded broker counts denials; Mosquitto needs a marker message
        self.inject = inject  # how a $-topic message appears: no client may publish one


@asynccontextmanager
async def _embedded(tmp_path: Path) -> AsyncIterator[_Target]:
    config = broker_test_config(
        allow_anonymous=False, users=_users(quick_hash(PASSWORD)), app_cmd_topics=["acme/+/+/+/+/cmd/#"]
    )
    async with start_broker(tmp_path, config) as broker:
        local = broker.local_client("matrix-injector")

        async def inject(topic: str, payload: bytes) -> None:
            await local.publish(topic, payload, qos=1)

        yield _Target(broker.url, lambda: sum(broker.stats.acl_denials.values()), inject)


def mosquitto_acl() -> str:
    """deploy/mosquitto/acl with its placeholders filled in for the matrix's accounts."""
    text = (ROOT / "deploy" / "mosquitto" / "acl").read_text(encoding="utf-8")
    return text.replace("<group>", "acme").replace("<node>", "line1").replace("<enterprise>", "acme")


def _mosquitto_config(folder: Path) -> str:
    """Write the accounts and the ACL into ``folder`` (readable once Mosquitto drops root); its config lines."""
    folder.chmod(0o755)
    passwd = folder / "passwd"
    passwd.write_text("".join(f"{user}:{PASSWORD}\n" for user in COLUMNS.values()), encoding="utf-8")
    # -U hashes every plain-text line in place: one run instead of one per account
    subprocess.run([require("mosquitto_passwd"), "-U", str(passwd)], check=True, capture_output=True)
    passwd.chmod(0o644)
    acl = folder / "acl"
    acl.write_text(mosquitto_acl(), encoding="utf-8")
    # sys_interval 1: Mosquitto's own $SYS/broker/uptime comes every second
    return f"allow_anonymous false\npassword_file {passwd}\nacl_file {acl}\nsys_interval 1"


@asynccontextmanager
async def _mosquitto(tmp_path: Path) -> AsyncIterator[_Target]:
    with tempfile.TemporaryDirectory(prefix="uns-acl-") as folder:
        config = await asyncio.to_thread(_mosquitto_config, Path(folder))
        with run_mosquitto(config) as mosquitto:
            yield _Target(BrokerUrl.from_str(mosquitto.url), None, None)


_count = itertools.count()


async def _published(target: _Target, client: Paho, observer: Paho, topic: str) -> bool:
    """Publish on ``topic`` as ``client``: did the admin observer get it?"""
    payload = f"probe-{next(_count)}".encode()
    before = target.denials() if target.denials is not None else 0
    await client.publish(topic, payload, qos=1)

    def seen() -> bool:
        return any(message.payload == payload for message in list(observer.received))

    if target.denials is not None:
        denials = target.denials
        await until(lambda: seen() or denials() > before, what=f"publish on {topic} delivered or denied")
        return seen()
    # Mosquitto: one thread; once the probe is acknowledged, a later marker reaches the observer after it
    marker = f"marker-{next(_count)}".encode()
    await observer.publish("matrix/marker", marker, qos=1)
    await until(lambda: any(m.payload == marker for m in list(observer.received)), what="the marker")
    return seen()


async def _subscribed(
    target: _Target, client: Paho, admin: Paho, topic: str, *, wide: bool, marker_topic: str
) -> set[str]:
    """Subscribe to ``topic`` as ``client``: {"sub"} when granted and a message on it is delivered."""
    granted = await client.subscribe(topic, qos=1) != 0x80
    if target.denials is None:  # Mosquitto 2.0.11 grants every SUBACK and judges each delivery
        return await _delivered_by_mosquitto(client, admin, topic, marker_topic)
    payload = f"deliver-{next(_count)}".encode()
    before = target.denials() if target.denials is not None else 0
    if not topic.startswith("$"):
        await admin.publish(topic, payload, qos=1)
    elif target.inject is not None:
        await target.inject(topic, payload)
    else:
        payload = b""  # Mosquitto's own $SYS message: any one will do

    def got() -> bool:
        return any(m.topic == topic and payload in m.payload for m in list(client.received))

    if granted:
        await until(got, what=f"delivery on {topic}")
    elif wide and target.denials is not None and not topic.startswith("$"):  # "#" matches: delivery is judged
        denials = target.denials
        await until(lambda: got() or denials() > before, what=f"message on {topic} received or denied")
    if granted != got():
        return {"sub-but-not-delivered" if granted else "delivered-without-sub"}
    return {"sub"} if granted else set()


async def _delivered_by_mosquitto(client: Paho, admin: Paho, topic: str, marker_topic: str) -> set[str]:
    def on_topic(paho: Paho) -> int:
        return sum(1 for name in paho.topics() if name == topic)

    before = on_topic(client)
    if topic.startswith("$"):  # Mosquitto's own $SYS message, every second
        await _sys_message_after_suback(admin, topic)
    else:
        await admin.publish(topic, f"deliver-{next(_count)}".encode(), qos=1)
    # one thread: a marker sent after the probe was acknowledged reaches the client after the probe
    marker = f"marker-{next(_count)}".encode()
    await admin.publish(marker_topic, marker, qos=1)
    await until(lambda: any(m.payload == marker for m in list(client.received)), what=f"marker on {marker_topic}")
    markers = 1 if topic == marker_topic else 0
    return {"sub"} if on_topic(client) > before + markers else set()


async def _sys_message_after_suback(admin: Paho, topic: str) -> None:
    """Wait until the admin gets a message on ``topic`` that Mosquitto published after the client's SUBACK.

    The admin's own marker, sent after that SUBACK, orders it: what reaches the admin after its marker left the
    broker after the client's subscription took effect (one thread, one ordered connection).
    """
    anchor = f"anchor-{next(_count)}".encode()
    await admin.publish("matrix/marker", anchor, qos=1)

    def after_anchor() -> bool:
        received = list(admin.received)
        index = next((i for i, message in enumerate(received) if message.payload == anchor), None)
        return index is not None and any(message.topic == topic for message in received[index + 1 :])

    await until(after_anchor, what=f"a message on {topic} at the admin after its marker")


@pytest.mark.parametrize("user", list(COLUMNS.values()))
@pytest.mark.parametrize("broker", ["embedded", "mosquitto"])
async def test_role_matrix(tmp_path: Path, broker: str, user: str) -> None:
    start = _embedded if broker == "embedded" else _mosquitto
    async with start(tmp_path) as target:
        observer = Paho(target.url, f"observer-{user}", username="admin", password=PASSWORD)
        client = Paho(target.url, f"matrix-{user}", username=user, password=PASSWORD)
        try:
            await observer.connect()
            await client.connect()
            assert await observer.subscribe("#", qos=1) == 1
            assert await observer.subscribe("$SYS/#", qos=1) == 1
            marker_topic = next(topic for _, topic, rights in MATRIX if "sub" in rights[user] and topic[0] != "$")
            assert await client.subscribe(marker_topic, qos=1) == 1
            wide = target.denials is not None and user != "bridge"
            if wide:  # the widest filter the role may hold: each delivery is judged too
                assert await client.subscribe("#", qos=1) == 1
            found: dict[tuple[str, str], set[str]] = {}
            for topic_class, topic, _rights in MATRIX:
                rights = set()
                if await _published(target, client, observer, topic):
                    rights.add("pub")
                rights |= await _subscribed(target, client, observer, topic, wide=wide, marker_topic=marker_topic)
                found[(topic_class, topic)] = rights
        finally:
            client.close()
            observer.close()
    expected = {(topic_class, topic): set(rights[user]) for topic_class, topic, rights in MATRIX}
    if broker == "mosquitto":
        for user_, topic_class, right in MOSQUITTO_DIFFERS:
            for key in expected:
                if user_ == user and key[0] == topic_class:
                    expected[key].discard(right)
    assert found == expected


async def test_a_host_with_host_ids_publishes_only_its_own_state(tmp_path: Path) -> None:
    users = _users(quick_hash(PASSWORD))
    users["host"]["host_ids"] = ["uns-hub"]
    async with start_broker(tmp_path, broker_test_config(allow_anonymous=False, users=users)) as broker:
        target = _Target(broker.url, lambda: sum(broker.stats.acl_denials.values()), None)
        observer = Paho(broker.url, "observer", username="admin", password=PASSWORD)
        host = Paho(broker.url, "host", username="host", password=PASSWORD)
        try:
            await observer.connect()
            await host.connect()
            assert await observer.subscribe("#", qos=1) == 1
            assert await _published(target, host, observer, "spBv1.0/STATE/uns-hub")
            assert not await _published(target, host, observer, "spBv1.0/STATE/other-host")
            assert await _published(target, host, observer, "acme/hub/host/health")
        finally:
            host.close()
            observer.close()
        assert broker.stats.acl_denial_reasons == {"host-state": 1}

"""An edge agent's account on an external broker: Mosquitto 2.0.11 with the lines ``uns`` generates.

The same account enrolled on the embedded broker must behave the same: its own status and edge node
published, another agent's refused, its own desired config read and no other's.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from model.fleet import enrolment_password
from tests.fixtures.broker import broker_test_config, start_broker
from tests.fixtures.mosquitto import readable_by_mosquitto, run_mosquitto
from tests.fixtures.waiting import until
from uns.broker.passwords import hash_password
from uns.errors import BrokerError
from uns.fleet.enrolment import agent_password, enrol, mosquitto_acl, mosquitto_password_line
from uns.fleet.store import FleetStore
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl, Message

_ADMIN_PASSWORD = "admin-pw"  # noqa: S105  (a test account)
# topic, whether line1 (edge node fleet/press1) may publish it
PUBLISH = [
    ("acme/hub/edge/line1/status", True),
    ("acme/hub/edge/line2/status", False),
    ("spBv1.0/fleet/NBIRTH/press1", True),
    ("spBv1.0/fleet/DDATA/press1/mixer", True),
    ("spBv1.0/fleet/NBIRTH/press2", False),
    ("acme/hub/edge/line1/config", False),
]
# retained config topic, whether line1 receives it
READ = [("acme/hub/edge/line1/config", True), ("acme/hub/edge/line2/config", False)]


async def _behaviour(url: BrokerUrl, agent: MqttClient) -> dict[str, bool]:
    """What the agent's account could do: each topic of PUBLISH and READ, delivered or not."""
    seen: dict[str, bool] = {}
    async with MqttClient(url=url.with_credentials("admin", _ADMIN_PASSWORD), client_id="parity-admin") as admin:
        for topic, _ in READ:
            await admin.publish(topic, b"desired", qos=1, retain=True)
        await admin.subscribe(["#"], qos=1)
        got: list[Message] = []

        async def collect() -> None:
            async for message in admin.messages():
                got.append(message)

        collector = asyncio.create_task(collect(), name="test.collect")
        async with agent:
            for topic, _ in PUBLISH:
                await agent.publish(topic, b"from-agent", qos=1)
            await agent.publish("acme/hub/edge/line1/status", b"marker", qos=1)  # allowed: after all the others
            await until(lambda: any(m.payload == b"marker" for m in got), what="the marker")
            for topic, _ in PUBLISH:
                seen[f"publish {topic}"] = any(m.topic == topic and m.payload == b"from-agent" for m in got)
            for topic, _ in reversed(READ):  # the other agent's first: its retained copy would come first
                with contextlib.suppress(BrokerError):  # Mosquitto grants and sends nothing; ours refuses
                    await agent.subscribe([topic], qos=1)
            reads: list[str] = []

            async def read() -> None:
                async for message in agent.messages():
                    reads.append(message.topic)

            reader = asyncio.create_task(read(), name="test.read")
            await until(lambda: READ[0][0] in reads, what="the agent's own desired config")
            reader.cancel()
            for topic, _ in READ:
                seen[f"read {topic}"] = topic in reads
        collector.cancel()
    return seen


WANTED = {f"publish {topic}": ok for topic, ok in PUBLISH} | {f"read {topic}": ok for topic, ok in READ}


async def test_the_generated_mosquitto_lines_give_the_agent_what_the_embedded_broker_gives(tmp_path: Path) -> None:
    password = agent_password(tmp_path / "agent")
    with tempfile.TemporaryDirectory(prefix="uns-fleet-mosquitto-") as folder:
        work = Path(folder)
        passwd, acl = work / "passwd", work / "acl"
        admin_line = mosquitto_password_line("admin", _ADMIN_PASSWORD)
        passwd.write_text(admin_line + "\n" + mosquitto_password_line("line1", password) + "\n")
        acl.write_text("user admin\ntopic readwrite #\n\n" + mosquitto_acl("line1", ["fleet/press1"]))
        readable_by_mosquitto(work, passwd, acl)
        config = f"allow_anonymous false\npassword_file {passwd}\nacl_file {acl}"
        with run_mosquitto(config) as mosquitto:
            url = BrokerUrl.from_str(mosquitto.url)
            with pytest.raises(BrokerError, match="not authorized"):  # the line is really checked
                async with MqttClient(url=url.with_credentials("line1", "guess"), client_id="g", reconnect=False):
                    pass
            agent = MqttClient(url=url.with_credentials("line1", password), client_id="line1-agent")
            assert await _behaviour(url, agent) == WANTED

    # the same account enrolled on the embedded broker
    async with _embedded(tmp_path) as (url, store):
        token = enrol(store, "line1", edge_nodes=["fleet/press1"])
        enrolling = url.with_credentials("line1", enrolment_password(token, password))
        async with MqttClient(url=enrolling, client_id="line1-enrol", reconnect=False):
            pass
        agent = MqttClient(url=url.with_credentials("line1", password), client_id="line1-agent")
        assert await _behaviour(url, agent) == WANTED


@contextlib.asynccontextmanager
async def _embedded(tmp_path: Path) -> AsyncIterator[tuple[BrokerUrl, FleetStore]]:
    admin = {"password_hash": hash_password(_ADMIN_PASSWORD), "role": "admin"}
    config = broker_test_config(allow_anonymous=False, users={"admin": admin})
    async with start_broker(tmp_path, config) as broker:
        yield broker.url, FleetStore(directory=broker.data_dir / "fleet")


def test_the_generated_acl_block_is_the_shipped_example_filled_in() -> None:
    shipped = (Path(__file__).resolve().parents[3] / "deploy" / "mosquitto" / "acl").read_text(encoding="utf-8")
    block = shipped[shipped.index("user <agent>\n") :].split("\n\n")[0] + "\n"
    filled = block.replace("<agent>", "line1").replace("<group>", "fleet").replace("<node>", "press1")
    assert mosquitto_acl("line1", ["fleet/press1"]) == filled

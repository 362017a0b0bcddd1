"""The hub's side of the fleet tests: deploy versions retained and watch an agent's status topic."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from model.fleet import DesiredVersion
from tests.bridges.edge.spb_host import SpbHost
from tests.fixtures.processes import stop_process
from uns.fleet import FleetStore, config_topic, status_topic
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl

__all__ = ["ENTERPRISE", "FleetHub", "checked_host", "edge_process", "json_bridge", "open_hub"]

ENTERPRISE = "acme"


def json_bridge(node: str, group: str, topic: str, *, unit: object = "degC", **edge: object) -> dict[str, object]:
    """An MQTT-JSON bridge reading ``{"t": ...}`` on ``topic`` into metric ``Temperature`` of device ``mixer``."""
    return {
        "kind": "mqtt_json",
        "name": node,
        "edge": {"group": group, "primary_host_id": f"{group}-host", "first_reading_wait_s": 0.1, **edge},
        "devices": [
            {"id": "mixer", "mappings": [{"topic": topic, "path": "$.t", "name": "Temperature", "unit": unit}]}
        ],
    }


class FleetHub:
    """A version store plus an MQTT client publishing its versions and keeping each agent's last status."""

    def __init__(self, client: MqttClient, store: FleetStore) -> None:
        self.client = client
        self.store = store
        self.status: dict[str, dict[str, object]] = {}

    async def deploy(self, agent: str, config: Mapping[str, object], *, validate: bool = True) -> DesiredVersion:
        version = self.store.deploy(agent, config, author="test", note="test deploy", validate=validate)
        await self.publish(version)
        return version

    async def publish(self, version: DesiredVersion) -> None:
        topic = config_topic(ENTERPRISE, version.agent)
        await self.client.publish(topic, version.model_dump_json().encode(), qos=1, retain=True)

    def reports(self, agent: str, *, version: int, status: str) -> bool:
        got = self.status.get(agent, {})
        return got.get("version") == version and got.get("status") == status

    async def _watch(self) -> None:
        async for message in self.client.messages():
            agent = message.topic.split("/")[-2]
            self.status[agent] = json.loads(message.payload)


@contextlib.asynccontextmanager
async def open_hub(url: BrokerUrl, directory: Path) -> AsyncIterator[FleetHub]:
    """A FleetHub on ``url`` watching every agent's status topic."""
    async with MqttClient(url=url, client_id="fleet-test-hub") as client:
        hub = FleetHub(client, FleetStore(directory=directory))
        await client.subscribe([status_topic(ENTERPRISE, "+")], qos=1)
        watcher = asyncio.create_task(hub._watch(), name="fleet-test.status")
        try:
            yield hub
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)


@contextlib.asynccontextmanager
async def checked_host(port: int, group: str) -> AsyncIterator[SpbHost]:
    """The independent Sparkplug host of ``group`` (host id ``<group>-host``), online; no violation at the end."""
    host = SpbHost(port, group, f"{group}-host")
    await host.start(online=True)
    try:
        yield host
    finally:
        host.stop()
    assert host.violations == []


@contextlib.asynccontextmanager
async def edge_process(
    url: BrokerUrl, data_dir: Path, agent: str, *extra: str, version: str = ""
) -> AsyncIterator[subprocess.Popen[str]]:
    """``uns edge --id agent`` as a process, once its ready line is out (its version there, when given)."""
    # the broker runs in the caller's event loop: every wait on the process goes to a thread
    proc = _spawn(
        "edge", "--id", agent, "--broker", str(url), "--enterprise", ENTERPRISE, "--data-dir", str(data_dir),
        "--status-interval", "0.3", "--birth-wait", "5", *extra,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        ready = await asyncio.to_thread(proc.stdout.readline)
        assert ready.startswith(f"uns-edge ready: agent={agent} "), ready or (proc.stderr and proc.stderr.read())
        assert f" version={version} " in ready if version else True, ready
        yield proc
    finally:
        await asyncio.to_thread(stop_process, proc, 20)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hub.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "UNS_LOG_LEVEL": "WARNING"},
    )

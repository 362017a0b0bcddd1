"""The LwM2M server against someone else's client: npm lwm2m-node-lib 1.4 (LwM2M 1.0, plain text) as a subprocess.

It registers, is read and observed, written and executed from DCMD, updates and de-registers; the
independent test host checks the edge node's Sparkplug on the way (births, deaths, seq, aliases).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

from tests.bridges.edge.spb_host import BOOLEAN, STRING, until
from tests.bridges.lwm2m.rig import config, last, running
from tests.fixtures.requires import PEER_PACKAGES, require
from tests.peers.node_peer import NodePeer
from uns.broker import EmbeddedBroker

_SCRIPT = "lwm2m_device.js"


@contextlib.asynccontextmanager
async def _device(port: int, endpoint: str, lifetime_s: int) -> AsyncIterator[tuple[NodePeer, asyncio.StreamWriter]]:
    """The node client, and its stdin for commands (``node_peer`` gives none)."""
    node = require("node")
    require("peer-packages")
    process = await asyncio.create_subprocess_exec(
        node,
        str(Path(PEER_PACKAGES) / _SCRIPT),
        "127.0.0.1",
        str(port),
        endpoint,
        str(lifetime_s),
        cwd=PEER_PACKAGES,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    peer = NodePeer(process, _SCRIPT)
    try:
        yield peer, process.stdin
    finally:
        peer.kill()
        async with asyncio.timeout(5):
            await process.wait()


async def _send(stdin: asyncio.StreamWriter, **command: str) -> None:
    stdin.write(json.dumps(command).encode() + b"\n")
    await stdin.drain()


async def test_lwm2m_node_lib_client_registers_is_observed_written_executed_and_leaves(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    async with running(broker.url.port, config(), tmp_path) as rig, _device(rig.source.port, "th-1", 60) as (peer, cmd):
        await peer.next_event("registered", "error")
        assert peer.events[-1]["event"] == "registered", peer.events
        await until(lambda: rig.host.of("DBIRTH", "th1") != [], what="th1 DBIRTH on the node client's Register")
        await rig.wait_value("Temperature/0/SensorValue", 21.5)  # plain text reads, as LwM2M 1.0 clients answer
        await rig.wait_value("Humidity/0/SensorValue", 40.0)
        await rig.wait_value("Location", "cold store")

        await _send(cmd, cmd="set", uri="/3303/0", res="5700", value="23.75")
        await rig.wait_value("Temperature/0/SensorValue", 23.75)  # a notification of the observation

        rig.dcmd("Location", "dock 7", STRING)
        write = await peer.next_event("write", "error")
        assert write == {"event": "write", "uri": "/3303/0/5750", "value": "dock 7"}
        await rig.wait_value("Location", "dock 7")

        rig.dcmd("Device/0/Reboot", True, BOOLEAN)
        assert await peer.next_event("execute", "error") == {"event": "execute", "uri": "/3/0/4"}

        await _send(cmd, cmd="update")
        assert (await peer.next_event("updated", "error"))["event"] == "updated"
        await until(lambda: last(rig, "Updates") == 1, what="the node client's Update counted")
        await _send(cmd, cmd="set", uri="/3304/0", res="5700", value="61.5")
        await rig.wait_value("Humidity/0/SensorValue", 61.5)  # still observed after the Update

        await _send(cmd, cmd="unregister")
        await peer.next_event("unregistered", "error")
        await until(lambda: rig.host.of("DDEATH", "th1") != [], what="th1 DDEATH on the node client's De-register")
    assert rig.host.violations == []

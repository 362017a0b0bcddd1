"""Under ``uns up`` the web's Sparkplug status is the host's: the web cache decodes no Sparkplug payload again."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from tests.peers.hub_rig import running_peer_hub
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl
from uns.sparkplug import DataType, Metric, Payload, encode_payload


def _spb(seq: int, *metrics: Metric) -> bytes:
    return encode_payload(Payload(seq=seq, metrics=list(metrics)))


async def test_the_status_page_reads_the_in_process_host(tmp_path: Path) -> None:
    async with running_peer_hub(tmp_path) as hub:
        bd_seq = Metric(name="bdSeq", datatype=DataType.Int64, value=3)
        async with (
            MqttClient(url=BrokerUrl.from_str(hub.mqtt), client_id="test-edge") as edge,
            httpx.AsyncClient(base_url=hub.http, timeout=5) as http,
        ):
            await edge.publish("spBv1.0/gx/NBIRTH/e1", _spb(0, bd_seq), qos=1)
            birth = Metric(name="Temp", alias=4, datatype=DataType.Float, value=1.5)
            await edge.publish("spBv1.0/gx/DBIRTH/e1/d1", _spb(1, birth), qos=1)
            await edge.publish("spBv1.0/gx/DDATA/e1/d1", _spb(2, Metric(alias=4, datatype=DataType.Float, value=2.5)))
            await edge.publish("spBv1.0/gx/NDATA/e1", b"\x0a\xff", qos=1)  # does not decode

            async def node() -> dict[str, Any] | None:
                nodes = (await http.get("/api/sparkplug/nodes")).json()["nodes"]
                found = [n for n in nodes if (n["group_id"], n["edge_node_id"]) == ("gx", "e1")]
                return found[0] if found else None

            async def settled() -> bool:
                got = await node()
                return got is not None and got["bad_payloads"] == 1

            for _ in range(200):  # 10 s at most: the host takes the messages in its own task
                if await settled():
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the host never counted the undecodable NDATA")
            got = await node()
            assert got is not None
            assert (got["online"], got["bd_seq"], got["births"], got["last_seq"]) == (True, 3, 1, 2)
            assert [(d["device_id"], d["online"], d["births"]) for d in got["devices"]] == [("d1", True, 1)]
            assert "spBv1.0/gx/NDATA/e1" in str(got["last_error"])
            health = (await http.get("/api/health")).json()
            # the host counted the bad payload; the web cache did not decode it (it did before: 1 error)
            assert health["web-cache"]["sparkplug_errors"] == 0
            assert health["web-cache"]["edge_nodes"] >= 1

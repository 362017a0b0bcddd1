"""Load generator for the host benchmark: N Sparkplug edge nodes publishing DDATA at a target rate.

Runs in its own process (its own core and GIL) so the hub under test is measured, not the load.
"""

from __future__ import annotations

import asyncio
import multiprocessing.connection
import time

from uns.clock import now_ms
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl, Message
from uns.sparkplug import DataType, Metric, Payload, encode_payload
from uns.sparkplug.node_control import BD_SEQ, next_seq

__all__ = ["birth_messages", "run_load"]

GROUP = "bench"


def birth_messages(nodes: int, metrics: int) -> list[Message]:
    """NBIRTH + DBIRTH for every node: one device per node with ``metrics`` Double metrics, aliased."""
    out: list[Message] = []
    now = now_ms()
    for n in range(nodes):
        node = f"node{n}"
        nbirth = Payload(timestamp=now, seq=0, metrics=[Metric(name=BD_SEQ, datatype=DataType.Int64, value=0)])
        out.append(Message(f"spBv1.0/{GROUP}/NBIRTH/{node}", encode_payload(nbirth), 0, False))
        dbirth = Payload(
            timestamp=now,
            seq=1,
            metrics=[Metric(name=f"M{i}", alias=i + 1, datatype=DataType.Double, value=0.0) for i in range(metrics)],
        )
        out.append(Message(f"spBv1.0/{GROUP}/DBIRTH/{node}/dev", encode_payload(dbirth), 0, False))
    return out


async def _load(
    url: str, nodes: int, metrics: int, rate: float, seconds: float, conn: multiprocessing.connection.Connection
) -> None:
    async with MqttClient(
        url=BrokerUrl.from_str(url), client_id=f"bench-load-{rate:.0f}", max_queued=1_000_000
    ) as client:
        await client.publish_many(birth_messages(nodes, metrics))
        seqs = [2] * nodes
        payloads_per_s = rate / metrics
        tick = 0.01
        per_tick = payloads_per_s * tick
        sent = 0
        carry = 0.0
        start = time.monotonic()
        next_tick = start
        node = 0
        value = 0.0
        while time.monotonic() - start < seconds:
            carry += per_tick
            batch: list[Message] = []
            now = now_ms()
            while carry >= 1.0:
                carry -= 1.0
                value += 1.0
                payload = Payload(
                    timestamp=now,
                    seq=seqs[node],
                    metrics=[
                        Metric(alias=i + 1, timestamp=now, value=value, datatype=DataType.Double)
                        for i in range(metrics)
                    ],
                )
                batch.append(Message(f"spBv1.0/{GROUP}/DDATA/node{node}/dev", encode_payload(payload), 0, False))
                seqs[node] = next_seq(seqs[node])
                node = (node + 1) % nodes
            if batch:
                await client.publish_many(batch)
                sent += len(batch)
            next_tick += tick
            delay = next_tick - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        conn.send(
            {"payloads": sent, "metrics": sent * metrics, "seconds": time.monotonic() - start, "last_value": value}
        )


def run_load(
    url: str, nodes: int, metrics: int, rate: float, seconds: float, conn: multiprocessing.connection.Connection
) -> None:
    """Process entry point: publish for ``seconds`` at ``rate`` metrics/s, then report counts on ``conn``."""
    asyncio.run(_load(url, nodes, metrics, rate, seconds, conn))

"""Benchmark: the web topic cache's Sparkplug work per DDATA, decoding it again vs reading the host's state.

50 edge nodes x 1 device x 10 Double metrics, DDATA by alias only (as the edge nodes send them).
The web topic cache (``TopicCache.observe``, everything it does per message) with its Sparkplug
view decoding each payload (``uns web`` alone; ``uns up`` before issue 16) against the same cache
with the view reading the in-process host's state (``uns up`` now); the host's own decode is
outside both. Alternating rounds in one process, CPU time of this thread per message.

    uv run python -m bench.web_sparkplug [--messages 50000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

from tests.fixtures.hub import plant_for
from uns.host.core import HostCore
from uns.mqtt.types import Message
from uns.sparkplug import DataType, Metric, Payload, encode_payload
from uns.sparkplug.node_control import BD_SEQ
from uns.web.cache import TopicCache
from uns.web.sparkplug_view import SparkplugView

__all__ = ["main"]

_NODES = 50
_METRICS = 10
_T0 = 1_764_000_000_000


def _births() -> list[tuple[str, bytes]]:
    out = []
    for n in range(_NODES):
        bd_seq = Metric(name=BD_SEQ, datatype=DataType.Int64, value=0)
        out.append((f"spBv1.0/g/NBIRTH/e{n}", encode_payload(Payload(seq=0, metrics=[bd_seq]))))
        metrics = [Metric(name=f"m{i}", alias=i, datatype=DataType.Double, value=0.0) for i in range(_METRICS)]
        out.append((f"spBv1.0/g/DBIRTH/e{n}/d", encode_payload(Payload(seq=1, metrics=metrics))))
    return out


def _data(count: int) -> list[tuple[str, bytes]]:
    out = []
    for k in range(count):
        values = [Metric(alias=i, datatype=DataType.Double, value=k + i / 10) for i in range(_METRICS)]
        seq = (2 + k // _NODES) % 256
        out.append((f"spBv1.0/g/DDATA/e{k % _NODES}/d", encode_payload(Payload(seq=seq, metrics=values))))
    return out


def _cache(view: SparkplugView) -> TopicCache:
    return TopicCache(clients=None, sparkplug=view, clock=lambda: _T0 / 1000)  # type: ignore[arg-type]  # never entered


def _per_message_us(cache: TopicCache, messages: list[tuple[str, bytes]]) -> float:
    start = time.thread_time()
    for topic, payload in messages:
        cache.observe(Message(topic, payload), now_ms=_T0)
    return (time.thread_time() - start) / len(messages) * 1e6


def main() -> None:
    """Time both caches in alternating rounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=50_000, help="DDATA per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each, alternating")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the host's "unbound Sparkplug" line per node
    host = HostCore(plant=plant_for("acme", "g", "e0"))
    births, data = _births(), _data(args.messages)
    for topic, payload in births:
        host.handle(topic, payload, _T0)
    caches = {"decoding again": _cache(SparkplugView()), "host's state": _cache(SparkplugView(sessions=host))}
    for cache in caches.values():
        for topic, payload in births:
            cache.observe(Message(topic, payload), now_ms=_T0)
    times: dict[str, list[float]] = {name: [] for name in caches}
    for round_ in range(args.rounds):
        for name in list(caches) if round_ % 2 == 0 else list(reversed(caches)):
            times[name].append(_per_message_us(caches[name], data))
    print(f"web topic cache, {args.messages:,} DDATA of {_METRICS} Doubles per round, {args.rounds} rounds")
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        shown = ", ".join(f"{v:.2f}" for v in values)
        print(f"  {name:<16} median {medians[name]:6.2f} us CPU per DDATA   ({shown})")
    ratio = medians["host's state"] / medians["decoding again"]
    print(f"  host's state / decoding again = {ratio:.3f}")


if __name__ == "__main__":
    main()

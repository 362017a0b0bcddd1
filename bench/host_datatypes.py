"""Wrong datatypes through the Sparkplug host, in process: what it refuses, what it republishes, and the cost.

Feeds the fuzz bench's wrong-datatype DDATA (``bench.fuzz_inputs``, same seed) to a ``HostCore``
after the fuzz nodes' births, and counts per kind of input the ``bad_value`` refusals and the
metrics republished anyway. Then times decoding a 10-metric DDATA whose metrics carry their
datatype (the birth lookup now runs for each) against the same payload decoded without a lookup
(the baseline: what the codec did for such metrics before), and the usual alias-only DDATA.

    uv run python -m bench.host_datatypes [--inputs 20000] [--seed 13]
"""

from __future__ import annotations

import argparse
import collections
import logging
import random
import time

from bench.fuzz_inputs import fuzz_births, sparkplug_input
from model.equipment import Plant
from uns.clock import now_ms
from uns.host.core import HostCore
from uns.sparkplug import DataType, Metric, Payload, decode_payload, encode_payload
from uns.sparkplug.sparkplug_b_pb2 import Payload as PbPayload

__all__ = ["main"]


def _kind(data: bytes) -> str:
    metric = PbPayload.FromString(data).metrics[0]
    field = metric.WhichOneof("value")
    if field is None:
        return "no value"
    if metric.datatype not in (0, DataType.Double):
        return f"declared {'a non-Sparkplug number' if metric.datatype > 34 else DataType(metric.datatype).name}"
    return f"{field} without a datatype" if metric.datatype == 0 else f"{field} declared Double"


def _wrong_datatypes(count: int, seed: int) -> None:
    rng = random.Random(seed)
    start_ms = now_ms()
    tree = {"id": "bench", "sites": [{"id": "s", "areas": [{"id": "a", "lines": [{"id": "l"}]}]}]}
    core = HostCore(plant=Plant.model_validate({"enterprise": tree}))
    for topic, body in fuzz_births(start_ms):
        core.handle(topic, body, start_ms)
    sent: collections.Counter[str] = collections.Counter()
    refused: collections.Counter[str] = collections.Counter()
    republished: collections.Counter[str] = collections.Counter()
    while sum(sent.values()) < count:
        item = sparkplug_input(rng, start_ms)
        if item.kind != "wrong_datatype":
            continue
        kind = _kind(item.payload)
        before = core.counters.rejected["bad_value"]
        out = core.handle(item.topic, item.payload, start_ms)
        sent[kind] += 1
        refused[kind] += core.counters.rejected["bad_value"] - before
        republished[kind] += sum(1 for m in out if not m.topic.startswith(("spBv1.0/", "bench/hub/")))
    print(f"wrong-datatype DDATA (seed {seed}) into HostCore: input kind, sent, bad_value, republished")
    for kind in sorted(sent):
        print(f"  {kind:<34} {sent[kind]:>7,} {refused[kind]:>7,} {republished[kind]:>7,}")
    total = sum(sent.values())
    print(f"  {'all':<34} {total:>7,} {sum(refused.values()):>7,} {sum(republished.values()):>7,}")
    print(f"  rebirths requested {core.counters.rebirths_requested:,} (seq 0 in every input: seq gaps)")


def _per_metric_us(data: bytes, lookup: object, rounds: int) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(rounds):
            decode_payload(data, lookup=lookup)  # type: ignore[arg-type]
        best = min(best, time.perf_counter() - started)
    return best / rounds / 10 * 1e6


def _decode_cost(rounds: int) -> None:
    birth = {i: (f"M{i}", DataType.Double) for i in range(10)}
    by_name = {name: (name, datatype) for name, datatype in birth.values()}

    def lookup(name: str | None, alias: int | None) -> tuple[str, DataType] | None:
        return by_name.get(name) if name is not None else birth.get(alias or 0)

    typed = encode_payload(
        Payload(seq=1, metrics=[Metric(alias=i, timestamp=1, datatype=DataType.Double, value=1.5) for i in range(10)])
    )
    named = encode_payload(
        Payload(
            seq=1, metrics=[Metric(name=f"M{i}", timestamp=1, datatype=DataType.Double, value=1.5) for i in range(10)]
        )
    )
    bare = PbPayload(seq=1)
    for i in range(10):
        bare.metrics.add(alias=i, timestamp=1, double_value=1.5)
    alias_only = bare.SerializeToString()
    base = _per_metric_us(named, None, rounds)
    checked = _per_metric_us(named, lookup, rounds)
    print(f"decode, us per metric (10-metric DDATA, best of 5 x {rounds:,}):")
    print(f"  named + datatype, no lookup (baseline)   {base:.3f}")
    print(f"  named + datatype, checked against birth  {checked:.3f}  ({checked / base:.2f}x)")
    print(f"  alias + datatype, checked against birth  {_per_metric_us(typed, lookup, rounds):.3f}")
    print(f"  alias only (the usual DDATA)             {_per_metric_us(alias_only, lookup, rounds):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--inputs", type=int, default=20_000, help="wrong-datatype inputs to send")
    parser.add_argument("--seed", type=int, default=13, help="random seed of bench.fuzz_inputs")
    parser.add_argument("--rounds", type=int, default=20_000, help="decodes per timing round")
    args = parser.parse_args()
    logging.getLogger("uns").setLevel(logging.ERROR)  # one warning per refusal would drown the figures
    _wrong_datatypes(args.inputs, args.seed)
    _decode_cost(args.rounds)


if __name__ == "__main__":
    main()

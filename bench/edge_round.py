"""The edge engine's cost per poll round and per message, in isolation (issue 16 point 6: the idle demo's event loop).

`uv run python -m bench.edge_round [--before REV] [--runs 3] [--rounds 3000] [--tags 12] [--changed 3]`

One round is one ``Samples`` of ``--tags`` tags of which ``--changed`` moved (the demo's machines: a few counters and
analogs move, setpoints and states do not). Two parts, each the loop thread's CPU (``time.thread_time``), the
least of 5 (core) and 3 (node) in each child process:

- core: ``EdgeSession.accept`` + ``data`` (report by exception, the DDATA's encode) per round, no I/O;
- node: an ``EdgeNode`` on an embedded broker (port 0, an in-process client as under ``uns up``, a subscriber on
  ``spBv1.0/#`` so the broker routes each message), its source handing it rounds back to back; per round this is the
  node's lock, accept, health, encode, publish, the replay journal on disk, and the broker's routing.

``--before REV`` runs the same measurement with the modules of commit REV (``git archive``) in a child process,
turn about with this tree, and prints the ratio of the medians. The box is shared: the 1-minute load is printed
beside each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Self

from bridges.edge import EdgeNode
from bridges.edge.session import EdgeSession
from bridges.source import Sample, Samples, SourceEvent, TagSpec
from model.bridges.common import EdgeNodeConfig
from uns.broker import EmbeddedBroker
from uns.clock import now_ms
from uns.connect import local_clients
from uns.sparkplug import DataType, MetricValue

_DEVICE = "machine"


def _tags(count: int) -> list[TagSpec]:
    return [
        TagSpec(device=_DEVICE, name=f"Group/Tag{i}", datatype=DataType.Double if i % 2 else DataType.Int32)
        for i in range(count)
    ]


def _round(tags: Sequence[TagSpec], changed: int, index: int, now_ms: int) -> Samples:
    samples = []
    for i, spec in enumerate(tags):
        moved = index if i < changed else 7
        value: MetricValue = float(moved) * 0.5 if spec.datatype is DataType.Double else moved
        samples.append(Sample(spec.name, value, now_ms))
    return Samples(_DEVICE, samples)


def core_us(tags: int, changed: int, rounds: int) -> float:
    """Loop CPU per round of the pure core (accept + data)."""
    specs = _tags(tags)
    session = EdgeSession(group="bench", node_id="node", tags=specs, heartbeat_ms=0)
    session.births(bd_seq=0, now_ms=1, health={})
    batch = [_round(specs, changed, i, 1_000 + i) for i in range(rounds)]
    started = time.thread_time()
    for i, samples in enumerate(batch):
        accepted = session.accept(samples, now_ms=1_000 + i)
        session.data(_DEVICE, accepted.metrics, now_ms=1_000 + i)
    return (time.thread_time() - started) / rounds * 1e6


class _Rounds:
    """A source that hands the node ``rounds`` readings back to back once ``go`` is set."""

    name = "bench"

    def __init__(self, tags: int, changed: int, rounds: int) -> None:
        self._specs = _tags(tags)
        self._changed = changed
        self._rounds = rounds
        self.go = asyncio.Event()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    def tags(self) -> Sequence[TagSpec]:
        return self._specs

    async def events(self) -> AsyncIterator[SourceEvent]:
        yield _round(self._specs, self._changed, -1, now_ms())  # the births wait for a first reading
        await self.go.wait()
        for i in range(self._rounds):
            yield _round(self._specs, self._changed, i, now_ms())
            if i % 16 == 0:
                await asyncio.sleep(0)  # let the broker's subscriber drain, as between real rounds
        await asyncio.Event().wait()

    async def write(self, device: str, name: str, value: MetricValue) -> None:
        raise NotImplementedError


async def _node_us(tags: int, changed: int, rounds: int) -> float:
    from tests.fixtures.broker import broker_test_config  # the tree measured's own

    with tempfile.TemporaryDirectory() as tmp:
        async with EmbeddedBroker(config=broker_test_config(), data_dir=Path(tmp)) as broker:
            source = _Rounds(tags, changed, rounds)
            config = EdgeNodeConfig(group="bench", primary_host_id=None, health_interval_s=3600.0)
            received, target = 0, -1
            done = asyncio.Event()
            watcher = broker.local_client("bench-watch")
            await watcher.subscribe(["spBv1.0/#"], qos=0)

            async def count() -> None:
                nonlocal received
                async for _message in watcher.messages():
                    received += 1
                    if received == target:
                        done.set()

            tasks = [asyncio.create_task(broker.run()), asyncio.create_task(count())]
            async with EdgeNode(
                config=config, node_id="node", source=source, clients=local_clients(broker), data_dir=Path(tmp)
            ) as node:
                tasks.append(asyncio.create_task(node.run()))
                async with asyncio.timeout(30):
                    while not node.online:  # noqa: ASYNC110 - the node offers no event for its births
                        await asyncio.sleep(0.01)
                await asyncio.sleep(0.2)
                target = received + rounds
                started = time.thread_time()
                source.go.set()
                async with asyncio.timeout(120):
                    await done.wait()
                spent = time.thread_time() - started
                tasks[-1].cancel()
                await asyncio.gather(tasks[-1], return_exceptions=True)
            for task in tasks[:-1]:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await watcher.close()
            return spent / rounds * 1e6


def node_us(tags: int, changed: int, rounds: int) -> float:
    """Loop CPU per round of a whole EdgeNode on an embedded broker."""
    return asyncio.run(_node_us(tags, changed, rounds))


def _child(source: Path | None, args: argparse.Namespace) -> tuple[float, float]:
    from bench.hub_process import run_child  # the parent's only

    argv = ["--child", "--rounds", str(args.rounds), "--tags", str(args.tags), "--changed", str(args.changed)]
    core, node = run_child(__file__, source, argv)
    return float(core), float(node)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", help="also measure the modules of this commit, turn about with this tree")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3000)
    parser.add_argument("--tags", type=int, default=12)
    parser.add_argument("--changed", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        # the least disturbed of several: on the shared box a neighbour's burst only ever adds
        core = min(core_us(args.tags, args.changed, args.rounds) for _ in range(5))
        print(json.dumps([core, min(node_us(args.tags, args.changed, args.rounds) for _ in range(3))]))
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.hub_process import compared_trees, turn_about  # the parent's only

    figures: dict[str, list[tuple[float, float]]] = {}
    with compared_trees(args.before) as trees:
        for tree, source in turn_about(trees, args.runs):
            core, node = _child(source, args)
            figures.setdefault(tree, []).append((core, node))
            print(f"{tree}: core {core:.1f} us/round, node {node:.1f} us/round "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)  # fmt: skip
    medians = {
        tree: (statistics.median(c for c, _ in f), statistics.median(n for _, n in f)) for tree, f in figures.items()
    }
    for tree, f in figures.items():
        spread = f"node {min(n for _, n in f):.1f}-{max(n for _, n in f):.1f}"
        print(f"{tree}: median core {medians[tree][0]:.1f}, node {medians[tree][1]:.1f} us/round ({spread})")
    if args.before is not None:
        old, new = medians[trees[0][0]], medians["now"]
        print(f"now / before: core {new[0] / old[0]:.2f}x, node {new[1] / old[1]:.2f}x")


if __name__ == "__main__":
    main()

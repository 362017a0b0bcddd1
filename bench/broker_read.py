"""Benchmark: the embedded broker's PUBLISH reading, this tree against a baseline commit in the same run.

Each round runs ``bench.broker_packet_checks`` (a raw-socket publisher sends QoS 0 PUBLISHes as fast
as the socket takes them to an in-process subscriber) once from the baseline's source tree
(``git archive``) and once from this one, in alternating order, each in its own process. Printed:
msg/s with the checks on per round, the median of each, and the ratio.

    uv run python -m bench.broker_read [--baseline 0477d87] [--rounds 3] [--messages 50000]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

from bench.hub_process import compared_trees, turn_about

__all__ = ["main"]

_RESULT = re.compile(r"on ([\d,]+) msg/s")


def _once(source: Path | None, messages: int) -> float:
    argv = [sys.executable, "-m", "bench.broker_packet_checks", "--messages", str(messages), "--rounds", "1"]
    done = subprocess.run(argv, cwd=source, capture_output=True, text=True, check=True, timeout=600)
    found = _RESULT.search(done.stdout)
    if found is None:
        raise RuntimeError(f"no result in: {done.stdout[-500:]}")
    return float(found.group(1).replace(",", ""))


def main() -> None:
    """Run the rounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="0477d87", help="the commit to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--messages", type=int, default=50_000)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {"baseline": [], "this tree": []}
    with compared_trees(args.baseline, before_label="baseline", now_label="this tree") as trees:
        for turn, (name, source) in enumerate(turn_about(trees, args.rounds)):
            rate = _once(source, args.messages)
            rates[name].append(rate)
            print(f"round {turn // len(trees) + 1} {name:<10} {rate:>10,.0f} msg/s", flush=True)
    old, new = statistics.median(rates["baseline"]), statistics.median(rates["this tree"])
    print(f"QoS 0 PUBLISH, network -> in-process subscriber, median of {args.rounds}: baseline {args.baseline}"
          f" {old:,.0f} msg/s, this tree {new:,.0f} msg/s, ratio {new / old:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()

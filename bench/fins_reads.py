"""Benchmark: how fast the FINS driver reads a poll group from the simulated PLC in another process.

The PLC (``python -m bridges.sim.fins_server``, its own process) changes D0..D<words-1> every
100 ms. One FinsPlc reads, back to back for ``--seconds`` each:

- 1,000 contiguous uint16 tags (D0..D999) over UDP and over FINS/TCP: two Memory Area Reads a poll;
- 200 scattered tags (every 50th word) planned with Multiple Memory Area Read (``max_items`` 128)
  against the baseline of one Memory Area Read per block (``max_items`` 0), in the same run.

It prints polls/s, tags/s, requests a poll, the bridge process' CPU per 1k tags/s, and the ratio of
the scattered plans.

    uv run python -m bench.fins_reads [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from typing import Any

from bridges.fins import FinsPlc
from bridges.sim.fins_plant import bench_counterpart
from model.bridges.fins import FinsDevice


def _device(port: int, tags: list[dict[str, Any]], **fields: Any) -> FinsPlc:
    config = FinsDevice.model_validate({"id": "bench", "host": "127.0.0.1", "port": port, "tags": tags, **fields})
    return FinsPlc(bridge="bench", config=config)


async def _measure(plc: FinsPlc, seconds: float) -> dict[str, float]:
    await plc.connect()
    try:
        await plc.read("default")  # warm up
        cpu0, wall0, polls = time.process_time(), time.monotonic(), 0
        while time.monotonic() - wall0 < seconds:
            read = await plc.read("default")
            assert not read.problems, read.problems
            polls += 1
        wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    finally:
        await plc.close()
    tags = len(plc.tags())
    return {
        "polls_s": polls / wall,
        "tags_s": polls * tags / wall,
        "requests": len(plc.plan("default")),
        "cpu_pct": 100 * cpu / wall,
        "cpu_per_1k": 100 * cpu / wall / (polls * tags / wall / 1000),
    }


def _line(label: str, figures: dict[str, float]) -> str:
    return (
        f"{label:<34} {figures['polls_s']:8.1f} polls/s {figures['tags_s']:10.0f} tags/s "
        f"{figures['requests']:4.0f} req/poll  CPU {figures['cpu_pct']:5.1f} %  "
        f"{figures['cpu_per_1k']:5.2f} % CPU per 1k tags/s"
    )


async def _run(seconds: float) -> None:
    counterpart = bench_counterpart(1000)
    process = await asyncio.create_subprocess_exec(*counterpart.argv, stdout=asyncio.subprocess.PIPE)
    try:
        assert process.stdout is not None
        port = int((await process.stdout.readline()).split()[1])
        contiguous = [{"name": f"T{i:04d}", "address": f"D{i}"} for i in range(1000)]
        scattered = [{"name": f"S{i:03d}", "address": f"D{50 * i}"} for i in range(200)]
        results = {}
        for label, plc in (
            ("1000 contiguous, UDP", _device(port, contiguous)),
            ("1000 contiguous, FINS/TCP", _device(port, contiguous, transport="tcp")),
            ("200 scattered, 0104 (max_items 128)", _device(port, scattered)),
            ("200 scattered, 0101 only (baseline)", _device(port, scattered, max_items=0)),
        ):
            results[label] = await _measure(plc, seconds)
            print(_line(label, results[label]), flush=True)
        planned, baseline = (
            results["200 scattered, 0104 (max_items 128)"],
            results["200 scattered, 0101 only (baseline)"],
        )
        print(f"scattered: 0104 plan reads {planned['tags_s'] / baseline['tags_s']:.1f}x the tags/s of the baseline, "
              f"at {planned['cpu_per_1k'] / baseline['cpu_per_1k']:.2f}x its CPU per 1k tags/s")  # fmt: skip
    finally:
        process.terminate()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await process.wait()


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time of each case")
    asyncio.run(_run(parser.parse_args().seconds))


if __name__ == "__main__":
    main()

"""Soak: ``uns up`` under a steady Sparkplug load for an hour; is its memory flat?

The hub runs as users run it (``uns up``, demo plant on unless ``--no-demo``); simulated edge nodes
in another process (``bench.load``) publish DDATA at ``--rate`` metrics/s. Every ``--sample-s``
seconds the hub's RSS, the DuckDB file size and the historian's stored count are sampled; the
curve is printed every few minutes. The verdict compares the second half with its own start (the
baseline, measured in the same run): memory is flat when no sample of the second half is more
than 10 % above the RSS at half time. The first-half and second-half slopes are printed as well.

    uv run python -m bench.soak [--minutes 60] [--rate 3000] [--env UNS_HISTORIAN__MEMORY_LIMIT_MB=0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.hub_process import hub_process, rss_mib
from bench.load import run_load
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl

__all__ = ["Point", "main", "slope_mib_per_min", "verdict"]

HEALTH = "+/hub/historian/health"


@dataclass(frozen=True)
class Point:
    """One sample of the curve."""

    minute: float
    rss_mib: float
    db_mib: float
    stored: int


def slope_mib_per_min(points: list[Point]) -> float:
    """Least-squares slope of RSS over time, MiB per minute."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(p.minute for p in points) / n
    my = sum(p.rss_mib for p in points) / n
    var = sum((p.minute - mx) ** 2 for p in points)
    cov = sum((p.minute - mx) * (p.rss_mib - my) for p in points)
    return cov / var if var else 0.0


def verdict(points: list[Point], tolerance: float = 0.10) -> tuple[bool, float]:
    """Flat when the second half's highest RSS is within ``tolerance`` of the RSS at half time."""
    half = points[len(points) // 2 :]
    base = half[0].rss_mib
    growth = max(p.rss_mib for p in half) / base - 1.0
    return growth <= tolerance, growth


async def _follow_health(url: str, stored: list[int]) -> None:
    async with MqttClient(url=BrokerUrl.from_str(url), client_id="bench-soak-monitor") as client:
        await client.subscribe([HEALTH], qos=0)
        async for message in client.messages():
            with contextlib.suppress(orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                stored[0] = int(orjson.loads(message.payload)["stored"])


def _print_point(p: Point, start: Point) -> None:
    print(
        f"{p.minute:7.1f} min  RSS {p.rss_mib:7.1f} MiB ({p.rss_mib - start.rss_mib:+6.1f})"
        f"  DuckDB file {p.db_mib:7.1f} MiB  stored {p.stored:>11,}",
        flush=True,
    )


async def _soak(args: argparse.Namespace, data_dir: Path) -> list[Point]:
    env = dict(item.split("=", 1) for item in args.env)
    with hub_process(data_dir, demo=args.demo, env=env, stderr=data_dir / "hub.log") as hub:
        print(f"hub pid {hub.pid} at {hub.mqtt}; load {args.rate:.0f} metrics/s for {args.minutes} min", flush=True)
        stored = [0]
        monitor = asyncio.create_task(_follow_health(hub.mqtt, stored), name="bench.soak.health")
        seconds = args.minutes * 60.0
        parent, child = multiprocessing.Pipe()
        load = multiprocessing.Process(
            target=run_load, args=(hub.mqtt, args.nodes, args.metrics, args.rate, seconds, child), daemon=True
        )
        load.start()
        db = data_dir / "historian.duckdb"
        points: list[Point] = []
        start = time.monotonic()
        next_print = 0.0
        try:
            while True:
                elapsed = time.monotonic() - start
                size = db.stat().st_size / 2**20 if db.exists() else 0.0
                point = Point(elapsed / 60.0, rss_mib(hub.pid), size, stored[0])
                points.append(point)
                if elapsed >= next_print:
                    _print_point(point, points[0])
                    next_print += args.print_every_min * 60.0
                if elapsed >= seconds or hub.proc.poll() is not None:
                    break
                await asyncio.sleep(min(args.sample_s, max(0.1, seconds - elapsed)))
            await asyncio.to_thread(load.join, 30)
            report = parent.recv() if parent.poll(5) else {}
            await asyncio.sleep(3 * 5.0)  # the historian's last commits and health
            peak = rss_mib(hub.pid, "VmHWM")
            _print_point(Point((time.monotonic() - start) / 60.0, rss_mib(hub.pid), size, stored[0]), points[0])
            crashed = hub.proc.poll() is not None
        finally:
            monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await monitor
    sent = int(report.get("metrics", 0))
    print(f"load sent {sent:,} metrics ({sent / max(report.get('seconds', 1), 1):,.0f}/s); hub peak RSS {peak:.0f} MiB")
    print("hub CRASHED during the soak" if crashed else "hub alive at the end")
    return points


def _summary(points: list[Point]) -> None:
    half = len(points) // 2
    first, second = points[: half + 1], points[half:]
    s1, s2 = slope_mib_per_min(first), slope_mib_per_min(second)
    flat, growth = verdict(points)
    print("\n== memory curve summary")
    print(f"RSS start {points[0].rss_mib:.1f}  half {points[half].rss_mib:.1f}  end {points[-1].rss_mib:.1f} MiB")
    print(f"slope first half {s1:+.2f} MiB/min   second half {s2:+.2f} MiB/min   ratio {s2 / s1 if s1 else 0:.2f}")
    print(f"second half highest RSS vs half time: {growth * 100:+.1f} %  -> {'FLAT' if flat else 'GROWING'} (<= 10 %)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0, help="length of the soak")
    parser.add_argument("--rate", type=float, default=3_000.0, help="offered metrics/s")
    parser.add_argument("--nodes", type=int, default=10, help="simulated edge nodes (one device each)")
    parser.add_argument("--metrics", type=int, default=10, help="metrics per DDATA")
    parser.add_argument("--sample-s", type=float, default=10.0, help="seconds between RSS samples")
    parser.add_argument("--print-every-min", type=float, default=5.0, help="minutes between printed points")
    parser.add_argument("--no-demo", dest="demo", action="store_false", help="no simulated plant beside the load")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the hub (e.g. a setting)")
    parser.add_argument("--keep", type=Path, help="keep the data folder here instead of a temporary one")
    args = parser.parse_args()
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        points = asyncio.run(_soak(args, args.keep))
    else:
        with tempfile.TemporaryDirectory(prefix="uns-soak-") as tmp:
            points = asyncio.run(_soak(args, Path(tmp)))
    _summary(points)


if __name__ == "__main__":
    main()

"""The fuzz bench's closing report: crashes, good samples lost, rejections by reason, raw outcomes, RSS."""

from __future__ import annotations

import argparse
import collections
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from bench.fuzz_raw import RawOutcomes
from tests.e2e.crash_rig import COUNT_TOPIC

__all__ = ["Goods", "log_levels", "print_report"]

_LEVEL = re.compile(r"^\S+ \S+ (DEBUG|INFO|WARNING|ERROR|CRITICAL)\s")


@dataclass(frozen=True)
class Goods:
    """What the two good counters produced, and where to count what was stored."""

    edge_produced: int
    json_produced: int
    db: Path
    json_topic: str

    def stored(self) -> dict[str, tuple[int, int, int, int]]:
        """Per counter topic: (rows, distinct values, min, max) in the historian's file.

        The last value's ``stale`` copy (the edge node disconnects at the end) is not a sample.
        """
        out: dict[str, tuple[int, int, int, int]] = {}
        with duckdb.connect(str(self.db), read_only=True) as db:
            for topic in (COUNT_TOPIC, self.json_topic):
                row = db.execute(
                    "SELECT count(*), count(DISTINCT value), min(value)::BIGINT, max(value)::BIGINT FROM samples"
                    " JOIN series USING (series_id) WHERE topic = ? AND quality <> 'stale'",  # stale: the edge's end
                    [topic],
                ).fetchone()
                assert row is not None
                out[topic] = (int(row[0]), int(row[1]), int(row[2] or 0), int(row[3] or 0))
        return out


def log_levels(log: Path) -> tuple[collections.Counter[str], int]:
    """Lines per level in the hub's log, and how many tracebacks it holds."""
    levels: collections.Counter[str] = collections.Counter()
    tracebacks = 0
    with log.open(errors="replace") as lines:
        for line in lines:
            if match := _LEVEL.match(line):
                levels[match.group(1)] += 1
            elif line.startswith("Traceback (most recent call last)"):
                tracebacks += 1
    return levels, tracebacks


def _print_rejections(health: dict[str, dict[str, object]]) -> None:
    host = health.get("host", {})
    print("\n== rejections by reason (the hub's own counters)")
    print(
        f"host: messages {host.get('messages')}  rebirths requested {host.get('rebirths_requested')}"
        f"  suppressed {host.get('rebirths_suppressed')}  births {host.get('births')}"
    )
    rejected = host.get("rejected")
    for reason, n in sorted(rejected.items() if isinstance(rejected, dict) else [], key=lambda kv: -int(kv[1])):
        print(f"  host {reason:<28} {n:>10,}")
    historian = health.get("historian", {})
    print(
        f"historian: received {historian.get('received')}  stored {historian.get('stored')}"
        f"  duplicates {historian.get('duplicates')}  rejected {historian.get('rejected')}"
        f"  events {historian.get('events')}"
    )
    by_field = historian.get("rejected_by_field")
    for name, n in sorted(by_field.items() if isinstance(by_field, dict) else [], key=lambda kv: -int(kv[1])):
        print(f"  historian {name:<23} {n:>10,}")
    mes = health.get("mes", {})
    for name, n in sorted(mes.items()):
        print(f"  mes {name:<29} {n!s:>10}")


def print_report(
    *,
    args: argparse.Namespace,
    sent: collections.Counter[tuple[str, str]],
    raw: RawOutcomes,
    reconnects: int,
    health: dict[str, dict[str, object]],
    goods: Goods,
    alive: bool,
    exit_code: int | None,
    log: Path,
    rss: tuple[float, float],
    fuzz_s: float,
) -> None:
    """Print the whole report."""
    published = sum(sent.values())
    total = published + raw.sent
    print(f"\n== fuzz: {total:,} malformed inputs in {fuzz_s:.0f} s (seed {args.seed})")
    by_class: collections.Counter[str] = collections.Counter()
    for (cls, _), n in sent.items():
        by_class[cls] += n
    for cls, n in sorted(by_class.items()):
        kinds = ", ".join(f"{k} {v:,}" for (c, k), v in sorted(sent.items()) if c == cls)
        print(f"  {cls:<9} {n:>9,}  ({kinds})")
    print(f"  raw mqtt  {raw.sent:>9,}  (own TCP connection each; {raw.refused_connections} connections refused)")
    print(f"  publisher reconnects: {reconnects} (0: every published input reached the broker)")
    levels, tracebacks = log_levels(log)
    print("\n== crashes")
    stuck = " (did not stop within 20 s: killed)" if exit_code == -9 else ""
    print(f"hub alive after the fuzzing: {alive}; exit code on SIGTERM: {exit_code}{stuck}")
    print(f"hub log: {dict(sorted(levels.items()))}, tracebacks {tracebacks}")
    print("\n== good samples (each counter value must be stored exactly once)")
    lost_total = 0
    stored = goods.stored()
    for label, topic, produced in (
        ("edge node (Sparkplug)", COUNT_TOPIC, goods.edge_produced),
        ("JSON publisher", goods.json_topic, goods.json_produced),
    ):
        rows, distinct, low, high = stored[topic]
        lost = produced - distinct
        lost_total += max(lost, 0)
        print(
            f"  {label:<22} produced {produced:>7,}  rows {rows:>7,}  distinct {distinct:>7,}  "
            f"values {low}..{high}  lost {lost}  duplicated {rows - distinct}"
        )
    print(f"good samples lost: {lost_total}")
    _print_rejections(health)
    print("\n== raw MQTT packets: what the broker did")
    for (kind, outcome), n in sorted(raw.by_kind.items()):
        print(f"  {kind:<26} {outcome:<22} {n:>8,}")
    base, peak = rss
    print(f"\n== memory: RSS before fuzzing {base:.0f} MiB (baseline), peak {peak:.0f} MiB ({peak / base:.2f}x)")

"""Benchmark: what a made-up user name costs the web login tracker when it is full (issue 13 point 8).

``uns.web.throttle.FailureLimiter`` keeps at most ``max_keys`` user names; a new one past that
evicts the oldest unlocked name, and when all are locked it is refused. Prints the cost of one new
name (``admit`` + ``fail``) in three states: room left (the baseline, as before the bound), full
with every name but one locked (each new name evicts the oldest unlocked one; the locked names are
kept apart, so nothing walks past them), and full of locks (one sweep, then the remembered
refusal until the first lock ends). A real login adds an argon2 check of tens of milliseconds on
top, so the tracker must stay far below that.

    uv run python -m bench.web_login_tracker [--keys 10000] [--names 20000]
"""

from __future__ import annotations

import argparse
import time

from uns.web.throttle import FailureLimiter

__all__ = ["main"]

_LIMIT = 5
_WINDOW_S = 300.0


def _tracker(keys: int, locked: int, unlocked: int) -> FailureLimiter:
    tracker = FailureLimiter(limit=_LIMIT, window_s=_WINDOW_S, max_keys=keys)
    for index in range(locked):
        for _ in range(_LIMIT):
            tracker.fail(f"locked{index}", 0.0)
    for index in range(unlocked):
        tracker.fail(f"unlocked{index}", 0.0)
    return tracker


def _per_name_us(tracker: FailureLimiter, names: int, now: float) -> float:
    start = time.perf_counter()
    for index in range(names):
        name = f"fake{index}"
        if tracker.admit(name, now) == 0.0:
            tracker.fail(name, now)
    return (time.perf_counter() - start) / names * 1e6


def main() -> None:
    """Print the cost per made-up name in each state, with the room-left baseline and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10_000, help="tracker size (the web default is 10,000)")
    parser.add_argument("--names", type=int, default=20_000, help="made-up names sent in each state")
    args = parser.parse_args()
    keys, names = args.keys, args.names
    baseline = _per_name_us(_tracker(keys + names, locked=keys // 2, unlocked=0), names, 1.0)
    worst = _tracker(keys, locked=keys - 1, unlocked=1)
    evicting = _per_name_us(worst, names, 1.0)
    full = _tracker(keys, locked=keys, unlocked=0)
    start = time.perf_counter()
    wait = full.admit("first", 1.0)
    sweep_ms = (time.perf_counter() - start) * 1e3
    refused = _per_name_us(full, names, 2.0)
    print(f"tracker of {keys:,} names, {names:,} made-up names per state, limit {_LIMIT} in {_WINDOW_S:.0f} s")
    print(f"  baseline, room left:                  {baseline:6.2f} us per name")
    print(f"  full, all but one locked, evicting:   {evicting:6.2f} us per name ({evicting / baseline:.1f}x baseline)")
    print(f"  full of locks, refused (429):         {refused:6.2f} us per name ({refused / baseline:.1f}x baseline)")
    print(f"    first sweep: {sweep_ms:.2f} ms (once), refusals until {wait:.0f} s from now")
    print(f"  names tracked at the end: {len(worst):,} and {len(full):,} (bound {keys:,}); evicted {worst.evicted:,}")


if __name__ == "__main__":
    main()

"""Benchmark: the editor's replays (uns/rules/replay.py, uns/transforms/replay.py) against the bare engines.

A day of one reading a second (``--messages``, 86,400 by default) is replayed, pure, in one process:

- ``watch alone (baseline)``: the rule's trigger (``Watch.on_message``, the live engine's per-message
  work) over the messages, no clock of durations, no condition.
- ``replay_rule``: the same messages through the replay (minimum durations ticked at the messages'
  time, the condition evaluated per firing, the firings counted and listed).
- ``engine alone (baseline)``: the computed tag's ``Engine.on_message`` over the messages.
- ``replay_tag``: the same through the replay (its ``every`` ticks, each result decoded and summed up).

Printed: the time of each, messages per second, and each replay's ratio to its baseline.

    uv run python -m bench.automation_replay [--messages 86400] [--rounds 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import orjson

from model.rules import Rule
from model.transforms import ComputedTag
from uns.rules.replay import replay_rule
from uns.rules.triggers import Watch
from uns.settings import load_plant
from uns.transforms.engine import Engine
from uns.transforms.plan import plan_tags
from uns.transforms.replay import replay_tag

FILLER = "acme/dallas/bottling/line1/filler"
TOPIC = f"{FILLER}/data/Temperature"
T0 = 1_764_000_000_000


def _messages(count: int) -> list[tuple[int, str, bytes]]:
    # a saw tooth 60..99 degC: past 80 for a while, then back, 40 s a period
    out = []
    for i in range(count):
        stamp = T0 + i * 1000
        out.append((stamp, TOPIC, orjson.dumps({"value": 60 + i % 40, "timestamp_ms": stamp, "quality": "good"})))
    return out


def _best(work: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=86_400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    messages = _messages(args.messages)
    end = messages[-1][0] + 1000
    rule = Rule.model_validate(
        {
            "name": "hot",
            "trigger": {"kind": "value", "topic": TOPIC, "above": 80, "hysteresis": 5, "for_s": 5},
            "condition": "value < 200",
            "actions": [{"kind": "alarm", "path": FILLER, "name": "hot"}],
        }
    )
    plan = plan_tags(
        [
            ComputedTag.model_validate(
                {
                    "name": "Computed/Avg",
                    "path": FILLER,
                    "expression": 'round(avg(t, "5m"), 2)',
                    "inputs": {"t": TOPIC},
                    "every": "5s",
                }
            )
        ],
        plant=load_plant(None),
    )[0]

    def watch_alone() -> None:
        watch = Watch(rule.trigger)
        for stamp, topic, payload in messages:
            watch.on_message(topic, payload, now_s=(stamp - T0) / 1000, now_ms=stamp)

    def engine_alone() -> None:
        engine = Engine([plan])
        for stamp, topic, payload in messages:
            engine.on_message(topic, payload, now_ms=stamp)

    fired = replay_rule(rule, messages, start_ms=T0, end_ms=end, timezone="UTC").fired
    results = replay_tag(plan, messages, end_ms=end).results
    rows = [
        ("watch alone (baseline)", _best(watch_alone, args.rounds), None),
        (
            "replay_rule",
            _best(lambda: replay_rule(rule, messages, start_ms=T0, end_ms=end, timezone="UTC"), args.rounds),
            0,
        ),
        ("engine alone (baseline)", _best(engine_alone, args.rounds), None),
        ("replay_tag", _best(lambda: replay_tag(plan, messages, end_ms=end), args.rounds), 2),
    ]
    print(f"{len(messages):,} messages; the rule fires {fired:,} times, the tag publishes {results:,} results")
    print(f"{'case':<26}{'seconds':>10}{'msgs/s':>14}{'vs baseline':>14}")
    for name, seconds, base in rows:
        ratio = f"{seconds / rows[base][1]:.2f}x" if base is not None else ""
        print(f"{name:<26}{seconds:>10.3f}{len(messages) / seconds:>14,.0f}{ratio:>14}")


if __name__ == "__main__":
    main()

"""Benchmark: the one envelope reader (``model.envelope``) in its hot callers against a baseline commit.

The historian's ``RowParser.parse`` and the web cache's envelope read, each on the same UNS JSON
envelopes (10k topics, a mix of Double, Int32 and Boolean values), against the same functions of
commit ``--baseline`` (loaded with ``git show`` into temp modules, over that commit's
``model/envelope.py``), in alternating rounds in one process. Prints messages per CPU second of this
thread per round, the median of each and the ratio new/baseline.

    uv run python -m bench.envelope_read [--baseline <commit>] [--messages 200000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from uns.historian.rows import RowParser, SampleRow
from uns.web import cache

__all__ = ["main"]

_NOW = 1_764_000_000_000
_ENVELOPES = (
    b'{"value":%d.25,"timestamp_ms":%d,"quality":"good","datatype":"Double","unit":"degC"}',
    b'{"value":%d,"timestamp_ms":%d,"quality":"good","datatype":"Int32"}',
    b'{"value":true,"timestamp_ms":%d,"quality":"stale","datatype":"Boolean","source":"g/n/d"}',
)


def _baseline(commit: str, path: str, name: str, tmp: Path) -> ModuleType:
    text = subprocess.run(["git", "show", f"{commit}:{path}"], check=True, capture_output=True, text=True).stdout
    file = tmp / f"{name}.py"
    file.write_text(text)
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _messages(count: int) -> list[tuple[str, bytes]]:
    out = []
    for i in range(count):
        template = _ENVELOPES[i % 3]
        stamp = _NOW - count + i
        payload = template % ((i % 1000, stamp) if i % 3 != 2 else (stamp,))
        out.append((f"acme/s/a/l/c{i % 100}/data/m{i % 10_000 // 100}", payload))
    return out


def _rate(run: Callable[[], object], count: int) -> float:
    # CPU time of this thread: on a box shared with other work, wall time mostly measures the others
    start = time.thread_time()
    run()
    return count / (time.thread_time() - start)


def _cache_reader(module: ModuleType) -> Callable[[bytes], object]:
    """The baseline's web cache reader, whichever of its signatures that commit has."""
    wants = inspect.signature(module._read_envelope).parameters
    extra = ([None] if "decoded" in wants else []) + ([_NOW] if "now_ms" in wants else [])
    return lambda payload: module._read_envelope(payload, *extra)


def main() -> None:
    """Run both readers, new and baseline, in alternating rounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="HEAD~1", help="commit whose readers are the baseline")
    parser.add_argument("--messages", type=int, default=200_000, help="envelopes per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each, alternating")
    args = parser.parse_args()
    messages = _messages(args.messages)
    payloads = [payload for _, payload in messages]
    with tempfile.TemporaryDirectory() as tmp:
        # the baseline's callers over the baseline's reader: a reading's shape may differ between commits
        current = sys.modules["model.envelope"]
        sys.modules["model.envelope"] = _baseline(
            args.baseline, "model/envelope.py", "bench_envelope_baseline", Path(tmp)
        )
        try:
            old_rows = _baseline(args.baseline, "uns/historian/rows.py", "bench_rows_baseline", Path(tmp))
            old_cache = _baseline(args.baseline, "uns/web/cache.py", "bench_cache_baseline", Path(tmp))
        finally:
            sys.modules["model.envelope"] = current
    new_parser, old_parser = RowParser(max_future_ms=300_000), old_rows.RowParser(max_future_ms=300_000)
    old_read = _cache_reader(old_cache)
    cases: dict[str, Callable[[], object]] = {
        "historian parse, new": lambda: [new_parser.parse(t, p, now_ms=_NOW) for t, p in messages],
        "historian parse, baseline": lambda: [old_parser.parse(t, p, now_ms=_NOW) for t, p in messages],
        "web cache read, new": lambda: [cache._read_envelope(p, None, _NOW) for p in payloads],
        "web cache read, baseline": lambda: [old_read(p) for p in payloads],
    }
    for run in cases.values():
        run()  # warm the topic caches
    rates: dict[str, list[float]] = {name: [] for name in cases}
    for round_ in range(args.rounds):
        order = list(cases) if round_ % 2 == 0 else list(reversed(cases))
        for name in order:
            rates[name].append(_rate(cases[name], len(messages)))
    parsed = [new_parser.parse(t, p, now_ms=_NOW) for t, p in messages]
    assert all(isinstance(row, SampleRow) for row in parsed), "the bench's envelopes are all valid"
    print(f"{len(messages):,} envelopes per round, {args.rounds} rounds, baseline {args.baseline}")
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, values in rates.items():
        shown = ", ".join(f"{v / 1000:.0f}k" for v in values)
        print(f"  {name:<28} median {medians[name]:>10,.0f} msg/s   ({shown})")
    for what in ("historian parse", "web cache read"):
        print(f"  {what}: new / baseline = {medians[what + ', new'] / medians[what + ', baseline']:.3f}")


if __name__ == "__main__":
    main()

"""Benchmark: where each microsecond of a Sparkplug metric goes in ``uns up``, by component.

The hub runs as users run it (``uns up --no-demo``, its own process, ports 0) under a sampling
profiler started inside it: a thread reads ``sys._current_frames()`` every ``--interval-ms`` (the
interpreter's switch interval set to the same, so the event loop yields the GIL that often). The
load is ``bench.load`` (50 edge nodes x 10 aliased Doubles) at ``--rate`` metrics/s for ``--seconds``;
``--load historian`` is ``bench.historian``'s instead (one UNS JSON envelope per message from a network
client on 10k data topics, after one warm-up sample per topic), counted per row.
It prints each thread's CPU (``/proc/<pid>/task``), then the event loop's busy samples by component
with what that is per metric (the loop thread's CPU over the metrics sent). ``--baseline REV`` runs
the hub of that commit first (``git archive``), for the ratio per component in the same run. Shares
move ~15 % from run to run on a shared box; py-spy gives the same picture where it is installed.

    uv run python -m bench.hub_profile [--rate 40000] [--seconds 8] [--baseline REV] [--current REV]
        [--load sparkplug|historian]
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from bench.hub_idle import thread_cpu_seconds

__all__ = ["COMPONENTS", "HISTORIAN_COMPONENTS", "Profile", "component_of", "main"]

COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Sparkplug decode (uns/sparkplug/payload.py)", ("uns/host/core.py:handle", "decode_payload")),
    ("host: envelope, JSON bytes, reading, Message", ("uns/host/core.py:_republish",)),
    ("host: per payload (topic, session, seq, metric loop)", ("uns/host/core.py:handle",)),
    ("broker: in-process publish (retained, copy, offers)", ("publish_local",)),
    ("host shell: its queue, publish_many", ("uns/host/service.py:_message_loop",)),
    ("web topic cache and its Sparkplug view", ("uns/web/cache.py",)),
    ("historian reader on the loop", ("uns/historian/",)),
    ("broker: network PUBLISH in (framing, codec, route)", ("uns/broker/",)),
    ("broker: network PUBLISH in (framing, codec, route)", ("amqtt/",)),
    ("asyncio and the rest", ()),
)
"""Each busy sample goes to the first component all of whose markers are in its stack."""

HISTORIAN_COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("web topic cache", ("uns/web/cache.py",)),
    ("historian reader (parse, rows, pending batch)", ("uns/historian/",)),
    ("broker: per PUBLISH (checks, ACL, retained, route, offers)", ("uns/broker/core.py:_deliver",)),
    ("broker: client message loop (its queue, waiters)", ("uns/broker/core.py:_client_message_loop",)),
    ("broker: reader (framing, codec, queue put)", ("uns/broker/handler.py",)),
    ("broker: the rest", ("uns/broker/",)),
    ("amqtt", ("amqtt/",)),
    ("asyncio and the rest", ()),
)
"""The same for ``--load historian``: network JSON envelopes to the historian and the web cache."""

_IDLE = ":select"  # the loop waiting in its selector
_LOOP = "asyncio/events.py:_run"  # a callback or task step of the event loop (startup is left out)
_Stacks = dict[tuple[str, tuple[str, ...]], int]


def component_of(stack: Sequence[str], components: tuple[tuple[str, tuple[str, ...]], ...] = COMPONENTS) -> str:
    """The component a stack of ``file:function`` frames (outermost first) is counted in."""
    text = " ".join(stack)
    for name, markers in components:
        if all(marker in text for marker in markers):
            return name
    return components[-1][0]


def _frame_name(filename: str, function: str) -> str:
    for cut in ("site-packages/", "/lib/python3"):
        if cut in filename:
            return f"{filename.split(cut, 1)[1]}:{function}"
    for top in ("uns", "hub", "model", "bridges", "demo"):
        marker = f"/{top}/"
        if marker in filename:
            return f"{top}/{filename.rsplit(marker, 1)[1]}:{function}"
    return f"{filename}:{function}"


def _inside(out: str, interval_s: float, argv: list[str]) -> int:
    """In the hub's process: sample every thread until ``hub.cli.main`` returns, then write the stacks to ``out``."""
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        del sys.path[0]  # run as a script: bench/serial.py and the like must not shadow the hub's imports
    from hub.cli import main as hub_main  # the tree on PYTHONPATH: this one or the baseline's

    sys.setswitchinterval(interval_s)
    stacks: collections.Counter[tuple[str, tuple[str, ...]]] = collections.Counter()
    stop = threading.Event()
    main_id = threading.get_ident()

    def sample() -> None:
        me = threading.get_ident()
        while not stop.is_set():
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                names: list[str] = []
                current: FrameType | None = frame
                while current is not None:
                    names.append(_frame_name(current.f_code.co_filename, current.f_code.co_name))
                    current = current.f_back
                stacks["loop" if ident == main_id else "other", tuple(reversed(names))] += 1
            time.sleep(interval_s)

    sampler = threading.Thread(target=sample, name="bench.hub_profile", daemon=True)
    sampler.start()
    try:
        return hub_main(argv)
    finally:
        stop.set()
        sampler.join(1.0)
        Path(out).write_bytes(pickle.dumps(dict(stacks)))


class Profile:
    """One hub's run: its threads' CPU over the load and the event loop's busy samples by component."""

    def __init__(
        self,
        *,
        metrics: int,
        loop_s: float,
        other_s: float,
        stacks: _Stacks,
        components: tuple[tuple[str, tuple[str, ...]], ...] = COMPONENTS,
    ) -> None:
        self.metrics = metrics
        self.components = components
        self.loop_s = loop_s
        self.other_s = other_s
        busy = collections.Counter[str]()
        self.idle = 0
        for (thread, stack), count in stacks.items():
            if thread != "loop" or not stack:
                continue
            if stack[-1].endswith(_IDLE):
                self.idle += count
            elif any(_LOOP in frame for frame in stack):
                busy[component_of(stack, components)] += count
        self.busy = busy

    @property
    def loop_us(self) -> float:
        """The loop thread's CPU microseconds per metric."""
        return self.loop_s * 1e6 / self.metrics

    def share(self, component: str) -> float:
        """The component's fraction of the loop's busy samples."""
        total = sum(self.busy.values())
        return self.busy[component] / total if total else float("nan")


def _run(source: Path | None, args: argparse.Namespace, data_dir: Path) -> Profile:
    from bench.hub_process import hub_command, read_ready
    from bench.load import run_load
    from tests.fixtures.processes import stop_process

    out = data_dir / "stacks.pickle"
    argv = ["up", "--no-demo", "--mqtt-port", "0", "--ws-port", "0", "--http-port", "0", "--host-id", "bench"]
    env = {**os.environ, "UNS_LOG_LEVEL": "ERROR", "UNS_DATA_DIR": str(data_dir)}
    command, cwd = hub_command(argv, source, env)
    interval = str(args.interval_ms / 1000)
    command = [sys.executable, str(Path(__file__).resolve()), "--inside", str(out), interval, *command[3:]]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=cwd)
    try:
        url = read_ready(proc)["mqtt"]
        time.sleep(1.0)
        if args.load == "historian":
            _historian_load(url, args, args.topics, 1.0)  # one sample per topic: the series exist before we measure
            time.sleep(args.tail_s)
        before = thread_cpu_seconds(proc.pid)
        if args.load == "historian":
            count = _historian_load(url, args, args.rate, args.seconds)
        else:
            parent, child = multiprocessing.Pipe()
            load = multiprocessing.Process(
                target=run_load, args=(url, args.nodes, args.metrics, args.rate, args.seconds, child), daemon=True
            )
            load.start()
            child.close()  # only the load holds its end: if it dies, recv raises EOFError instead of waiting forever
            count = int(parent.recv()["metrics"])
            load.join()
        time.sleep(args.tail_s)  # the backlog drains
        after = thread_cpu_seconds(proc.pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    finally:
        stop_process(proc, 20)
    spent = {tid: cpu - before.get(tid, 0.0) for tid, cpu in after.items()}
    loop_s = spent.pop(proc.pid, 0.0)
    stacks: _Stacks = pickle.loads(out.read_bytes())  # noqa: S301  (written by our own hub process above)
    components = HISTORIAN_COMPONENTS if args.load == "historian" else COMPONENTS
    return Profile(metrics=count, loop_s=loop_s, other_s=sum(spent.values()), stacks=stacks, components=components)


def _historian_load(url: str, args: argparse.Namespace, rate: float, seconds: float) -> int:
    """``bench.historian``'s load (its own process): JSON envelopes on ``--topics`` topics; the rows sent."""
    from bench.historian import load_process

    return int(load_process(url, args.topics, rate, seconds)["sent"])


def _print(name: str, profile: Profile) -> None:
    total = profile.loop_s + profile.other_s
    unit = "row" if profile.components is HISTORIAN_COMPONENTS else "metric"
    print(
        f"\n== {name}: {profile.metrics} {unit}s; event loop {profile.loop_s:.2f} s ({profile.loop_us:.1f} us/{unit},"
        f" {100 * profile.loop_s / total:.0f} % of the hub), other threads {profile.other_s:.2f} s"
        f" (the profiler's own among them); loop busy samples {sum(profile.busy.values())}, idle {profile.idle}"
    )
    print(f"  load average {os.getloadavg()[0]:.1f}")
    for component in dict.fromkeys(name for name, _ in profile.components):
        share = profile.share(component)
        print(f"  {100 * share:5.1f} %  {share * profile.loop_us:5.2f} us/{unit}  {component}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--inside":
        sys.exit(_inside(sys.argv[2], float(sys.argv[3]), sys.argv[4:]))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=40_000.0, help="offered metrics/s")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of the load")
    parser.add_argument("--tail-s", type=float, default=3.0, help="seconds after the load for the backlog")
    parser.add_argument("--nodes", type=int, default=50, help="simulated edge nodes (one device each)")
    parser.add_argument("--metrics", type=int, default=10, help="metrics per DDATA")
    parser.add_argument("--interval-ms", type=float, default=0.5, help="sampling and switch interval")
    parser.add_argument("--baseline", help="first profile the hub of this commit (ratio per component)")
    parser.add_argument("--current", help="profile this commit (e.g. HEAD) instead of the working tree")
    parser.add_argument(
        "--load",
        choices=("sparkplug", "historian"),
        default="sparkplug",
        help="bench.load's DDATA or bench.historian's JSON",
    )
    parser.add_argument("--topics", type=int, default=10_000, help="--load historian: distinct data topics")
    args = parser.parse_args()
    from bench.hub_process import hub_source

    with tempfile.TemporaryDirectory(prefix="uns-bench-profile-") as tmp:
        old: Profile | None = None
        if args.baseline is not None:
            (Path(tmp) / "old").mkdir()
            with hub_source(args.baseline) as source:
                old = _run(source, args, Path(tmp) / "old")
            _print(f"baseline {args.baseline}", old)
        (Path(tmp) / "new").mkdir()
        with hub_source(args.current) as source:
            new = _run(source, args, Path(tmp) / "new")
        _print(args.current or "this tree", new)
    if old is not None:
        unit = "row" if args.load == "historian" else "metric"
        print(f"\n== us/{unit} on the event loop, this tree / baseline {args.baseline}")
        for component in dict.fromkeys(name for name, _ in new.components):
            now, before = new.share(component) * new.loop_us, old.share(component) * old.loop_us
            print(f"  {now:5.2f} / {before:5.2f} = {now / before if before else float('nan'):.2f}x  {component}")
        print(f"  {new.loop_us:5.2f} / {old.loop_us:5.2f} = {new.loop_us / old.loop_us:.2f}x  the whole loop")


if __name__ == "__main__":
    main()

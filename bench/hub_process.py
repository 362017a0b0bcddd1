"""Run ``uns up`` as its own process, exactly as users run it, and read its memory from /proc."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.app import READY_PREFIX
from tests.fixtures.processes import stop_process
from uns.ready import ready_endpoints

__all__ = [
    "HubProcess",
    "Tree",
    "compared_trees",
    "hub_command",
    "hub_process",
    "hub_source",
    "read_ready",
    "rss_mib",
    "run_child",
    "turn_about",
]

_REPO = Path(__file__).resolve().parents[1]

Tree = tuple[str, Path | None]
"""A tree a bench measures: its label and its source from :func:`hub_source` (None: this working tree)."""


@dataclass(frozen=True)
class HubProcess:
    """The running hub: its process and broker URL."""

    proc: subprocess.Popen[str]
    mqtt: str
    http: str

    @property
    def pid(self) -> int:
        """The hub's process id."""
        return self.proc.pid


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """Resident memory (``VmRSS``) or its peak (``VmHWM``) of ``pid`` in MiB; NaN once it is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def hub_source(rev: str | None) -> Iterator[Path | None]:
    """The source tree of commit ``rev`` in a temp dir (``git archive``), to run a baseline hub from; None: this one.

    A ``rev`` naming a directory is taken as a source tree as it is.
    """
    if rev is None:
        yield None
        return
    if Path(rev).is_dir():
        yield Path(rev)
        return
    with tempfile.TemporaryDirectory(prefix="uns-bench-baseline-") as name:
        archive = subprocess.run(["git", "archive", rev], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", name], input=archive, check=True)
        yield Path(name)


@contextlib.contextmanager
def compared_trees(
    before: str | None,
    now: str | None = None,
    *,
    before_label: str | None = None,
    now_label: str | None = None,
) -> Iterator[list[Tree]]:
    """The trees a bench compares: ``before``'s first when given, then ``now``'s (None: this working tree).

    Labelled ``before (REV)`` and ``now`` (``now (REV)`` for a ``now`` commit) unless told otherwise.
    """
    with hub_source(before) as old, hub_source(now) as new:
        trees: list[Tree] = [(now_label or ("now" if now is None else f"now ({now})"), new)]
        if before is not None:
            trees.insert(0, (before_label or f"before ({before})", old))
        yield trees


def turn_about(trees: Sequence[Tree], runs: int) -> Iterator[Tree]:
    """Each tree ``runs`` times, the order reversed every other run so that neither always goes first."""
    for index in range(runs):
        yield from trees if index % 2 == 0 else trees[::-1]


def run_child(file: str, source: Path | None, argv: Sequence[str]) -> Any:
    """The JSON value a bench ``file`` prints last, run as its own process with the modules of ``source`` (None:
    this tree's) first on the path; raises :class:`subprocess.CalledProcessError` (with its stderr) if it fails.

    ``-P``: not bench/ first on the path, where bench/serial.py would shadow pyserial.
    """
    env = {**os.environ, "PYTHONPATH": str(source if source is not None else _REPO)}
    command = [sys.executable, "-P", str(Path(file).resolve()), *argv]
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env, cwd=source)
    return json.loads(done.stdout.splitlines()[-1])


def hub_command(argv: list[str], source: Path | None, env: dict[str, str]) -> tuple[list[str], Path | None]:
    """``python -m hub.cli *argv`` from ``source`` (its modules first on the path) or from this tree; fills ``env``.

    A tree from before the composition root moved to ``hub/`` runs its ``uns.cli``.
    """
    module = "hub.cli"
    if source is not None:
        env["PYTHONPATH"] = str(source)
        if not (source / "hub" / "cli.py").exists():
            module = "uns.cli"
    return [sys.executable, "-m", module, *argv], source


def read_ready(proc: subprocess.Popen[str], what: str = "hub") -> dict[str, str]:
    """The ``key=value`` parts of a hub process's ``uns-hub ready`` line (its first on stdout); raises if it is not."""
    assert proc.stdout is not None
    ready = proc.stdout.readline()
    if not ready.startswith(READY_PREFIX):
        raise RuntimeError(f"{what} did not start: {ready!r}")
    return ready_endpoints(ready)


@contextlib.contextmanager
def hub_process(
    data_dir: Path,
    *,
    demo: bool = True,
    env: Mapping[str, str] | None = None,
    stderr: Path | None = None,
    source: Path | None = None,
) -> Iterator[HubProcess]:
    """``uns up`` on free loopback ports with its data in ``data_dir``; terminated on exit.

    ``source``: a tree from :func:`hub_source` to run instead of this one (a baseline in the same run).
    ``stderr``: where its log goes (else a temporary file); a hub that does not start raises with its exit code
    and the log's tail.
    """
    argv = ["up", "--mqtt-port", "0", "--ws-port", "0", "--http-port", "0"]
    if not demo:
        argv.append("--no-demo")
    full_env = {**os.environ, "UNS_LOG_LEVEL": "WARNING", "UNS_DATA_DIR": str(data_dir), **(env or {})}
    with stderr.open("w+b") if stderr is not None else tempfile.TemporaryFile() as err:
        command, cwd = hub_command(argv, source, full_env)
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True, env=full_env, cwd=cwd)
        try:
            try:
                parts = read_ready(proc)
            except RuntimeError as exc:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)  # its exit code, when it exited
                err.seek(0)
                said = err.read().decode(errors="replace")[-4000:]
                raise RuntimeError(f"{exc}, exit code {proc.returncode}; stderr:\n{said}") from None
            yield HubProcess(proc=proc, mqtt=parts["mqtt"], http=parts.get("http", ""))
        finally:
            stop_process(proc, 20)

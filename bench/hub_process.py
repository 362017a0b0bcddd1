"""Run ``uns up`` as its own process, exactly as users run it, and read its memory from /proc."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.fixtures.processes import stop_process

__all__ = ["HubProcess", "hub_process", "read_ready", "rss_mib"]


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


def read_ready(proc: subprocess.Popen[str], what: str = "hub") -> dict[str, str]:
    """The ``key=value`` parts of a hub process's ``uns-hub ready`` line (its first on stdout); raises if it is not."""
    assert proc.stdout is not None
    ready = proc.stdout.readline()
    if not ready.startswith("uns-hub ready"):
        raise RuntimeError(f"{what} did not start: {ready!r}")
    return dict(part.split("=", 1) for part in ready.split() if "=" in part)


@contextlib.contextmanager
def hub_process(
    data_dir: Path, *, demo: bool = True, env: Mapping[str, str] | None = None, stderr: Path | None = None
) -> Iterator[HubProcess]:
    """``uns up`` on free loopback ports with its data in ``data_dir``; terminated on exit."""
    argv = ["up", "--mqtt-port", "0", "--ws-port", "0", "--http-port", "0"]
    if not demo:
        argv.append("--no-demo")
    full_env = {**os.environ, "UNS_LOG_LEVEL": "WARNING", "UNS_DATA_DIR": str(data_dir), **(env or {})}
    with contextlib.ExitStack() as stack:
        err = stack.enter_context(stderr.open("w")) if stderr is not None else subprocess.DEVNULL
        proc = subprocess.Popen(
            [sys.executable, "-m", "uns.cli", *argv], stdout=subprocess.PIPE, stderr=err, text=True, env=full_env
        )
        try:
            parts = read_ready(proc)
            yield HubProcess(proc=proc, mqtt=parts["mqtt"], http=parts.get("http", ""))
        finally:
            stop_process(proc, 20)

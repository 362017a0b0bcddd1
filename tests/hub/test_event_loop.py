"""Every ``uns`` command runs on asyncio's loop; ``event_loop: uvloop`` runs it on uvloop where that is installed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.processes import hub_process
from tests.fixtures.waiting import until

_BROKER = ["broker", "--mqtt-port", "0", "--ws-port", "0"]


async def _loop_of(tmp_path: Path, environ: dict[str, str]) -> str:
    """The event loop class a running ``uns broker`` names in its SIGUSR1 task dump."""
    log = tmp_path / "broker.log"
    env = {**os.environ, "UNS_DATA_DIR": str(tmp_path), **environ}
    with hub_process(_BROKER, log=log, env=env) as (proc, _endpoints):
        proc.send_signal(signal.SIGUSR1)
        await until(lambda: "--- event loop " in log.read_text(), within_s=10, what="the SIGUSR1 dump")
        line = next(line for line in log.read_text().splitlines() if line.startswith("--- event loop "))
    return line.removeprefix("--- event loop ")


async def test_event_loop_uvloop_runs_on_uvloop(tmp_path: Path) -> None:
    pytest.importorskip("uvloop", reason="uvloop is a dependency on every platform but Windows")
    assert await _loop_of(tmp_path, {"UNS_EVENT_LOOP": "uvloop"}) == "uvloop.Loop"


async def test_asyncio_by_default(tmp_path: Path) -> None:
    assert await _loop_of(tmp_path, {}) == "asyncio.unix_events._UnixSelectorEventLoop"


def test_an_unknown_event_loop_is_refused_naming_the_setting(tmp_path: Path) -> None:
    env = {**os.environ, "UNS_DATA_DIR": str(tmp_path), "UNS_EVENT_LOOP": "trio"}
    done = subprocess.run([sys.executable, "-m", "hub.cli", *_BROKER], env=env, capture_output=True, text=True,
                          timeout=30, check=False)  # fmt: skip
    assert done.returncode == 2
    assert "event_loop" in done.stderr
    assert "trio" in done.stderr

"""SIGHUP to a ``uns`` process with nothing to reload is logged, not the end of it (its default disposition)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from tests.fixtures.processes import hub_process
from tests.fixtures.waiting import until


async def test_sighup_without_a_settings_file_is_logged_and_the_hub_keeps_running(tmp_path: Path) -> None:
    log = tmp_path / "hub.log"
    env = {**os.environ, "UNS_DATA_DIR": str(tmp_path), "UNS_LOG_LEVEL": "WARNING"}
    argv = ["up", "--no-demo", "--mqtt-port", "0", "--ws-port", "0", "--http-port", "0"]
    with hub_process(argv, log=log, env=env) as (proc, _endpoints):
        proc.send_signal(signal.SIGHUP)  # an operator's `kill -HUP` meant to reload a file this hub was not given
        said = "SIGHUP ignored: nothing here reloads on it now"
        await until(lambda: said in log.read_text(), within_s=10, what="the SIGHUP logged")
        await asyncio.sleep(0.5)
        assert proc.poll() is None  # still running
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0

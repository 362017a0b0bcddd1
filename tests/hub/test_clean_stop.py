"""A stopped ``uns`` process leaves nothing on stderr but its own lines: no leak reports from native bindings."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.fixtures.processes import hub_process


def test_a_hub_stopped_by_sigterm_exits_0_and_quietly(tmp_path: Path) -> None:
    log = tmp_path / "hub.log"
    env = {**os.environ, "UNS_DATA_DIR": str(tmp_path), "UNS_LOG_LEVEL": "WARNING"}
    argv = ["up", "--no-demo", "--mqtt-port", "0", "--ws-port", "0", "--http-port", "0"]
    with hub_process(argv, log=log, env=env) as (proc, _endpoints):  # the historian: DuckDB is loaded
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    said = log.read_text()
    assert "leaked" not in said  # nanobind's report of DuckDB's functions kept alive by gc.freeze()
    assert "nanobind" not in said

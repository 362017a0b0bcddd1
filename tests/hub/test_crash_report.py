"""A ``uns`` process killed by a crash in native code says where on stderr (faulthandler), not nothing."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.fixtures.processes import hub_process


def test_a_native_crash_prints_the_python_stack(tmp_path: Path) -> None:
    log = tmp_path / "broker.log"
    env = {**os.environ, "UNS_DATA_DIR": str(tmp_path), "UNS_LOG_LEVEL": "WARNING"}
    with hub_process(["broker", "--mqtt-port", "0", "--ws-port", "0"], log=log, env=env) as (proc, _endpoints):
        proc.send_signal(signal.SIGSEGV)  # as a segfault in a C extension (DuckDB, a PLC library) would end it
        assert proc.wait(timeout=20) == -signal.SIGSEGV
    said = log.read_text()
    assert "Fatal Python error: Segmentation fault" in said
    assert "most recent call first" in said  # the stack of the thread it hit

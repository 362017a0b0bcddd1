"""virtual-plc (MIT, another author's MC protocol simulator) in a child process: the SLMP driver's counterpart."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from tests.fixtures.processes import stop_process

__all__ = ["VirtualPlc", "virtual_plc"]

_BANNER = re.compile(r"listening on ([0-9.]+):(\d+)")


class VirtualPlc:
    """A running virtual-plc: where it listens."""

    def __init__(self, host: str, port: int, process: subprocess.Popen[str] | None = None) -> None:
        self.host = host
        self.port = port
        self.process = process


@contextlib.contextmanager
def virtual_plc(
    directory: Path,
    *,
    profile: str = "iQ-R",
    seed: Mapping[str, Mapping[str, list[int]]] | None = None,
    faults: Sequence[Mapping[str, object]] | None = None,
    limits: Sequence[str] = (),
    port: int = 0,
) -> Iterator[VirtualPlc]:
    """``python -m virtual_plc`` on ``port`` (0: a free one) with a memory seed, a fault plan and device limits
    (``D:0-1999``)."""
    args = [sys.executable, "-m", "virtual_plc", "--port", str(port), "--profile", profile]
    if seed is not None:
        path = directory / "seed.json"
        path.write_text(json.dumps(seed))
        args += ["--init", str(path)]
    if faults is not None:
        path = directory / "faults.json"
        path.write_text(json.dumps({"steps": list(faults)}))
        args += ["--fault-plan", str(path)]
    for limit in limits:
        args += ["--limit", limit]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        banner = process.stderr.readline()  # printed once it listens; '' if it died
        match = _BANNER.search(banner)
        assert match, f"virtual-plc did not start: {banner!r}"
        yield VirtualPlc(match.group(1), int(match.group(2)), process)
    finally:
        stop_process(process, 5.0)
        if process.stderr is not None:
            process.stderr.close()

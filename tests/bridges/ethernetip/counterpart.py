"""cpppo's EtherNet/IP server (GPLv3: test-only, in a child process, never imported) as the driver's counterpart."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence

from tests.fixtures.processes import stop_process, wait_listening

__all__ = ["Cpppo", "cpppo", "free_port"]

_ATTEMPTS = 5
"""cpppo cannot bind port 0 and report it: pick a free port, and pick again if another process took it first."""


class Cpppo:
    """A running cpppo server: where it listens."""

    def __init__(self, port: int, process: subprocess.Popen[bytes]) -> None:
        self.host = "127.0.0.1"
        self.port = port
        self.process = process


def free_port() -> int:
    """A port the OS says is free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def cpppo(tags: Sequence[str], *, route_path: str | None = None) -> Iterator[Cpppo]:
    """``python -m cpppo.server.enip --address 127.0.0.1:PORT <tags>`` (e.g. ``Temp=REAL[4]``) until the block ends.

    ``route_path`` (JSON, e.g. ``'[{"port": 1, "link": 0}]'``) makes it refuse requests routed elsewhere.
    """
    for _ in range(_ATTEMPTS):
        port = free_port()
        args = [sys.executable, "-m", "cpppo.server.enip", "--address", f"127.0.0.1:{port}", *tags]
        if route_path is not None:
            args[3:3] = ["--route-path", route_path]
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if wait_listening(port, process, 15.0):
            try:
                yield Cpppo(port, process)
            finally:
                stop_process(process, 5.0)
            return
        stop_process(process, 5.0)  # lost the port to someone else (or it died): try another one
    raise AssertionError(f"cpppo did not listen after {_ATTEMPTS} attempts")

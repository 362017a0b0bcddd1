"""A throwaway MariaDB server for tests: ``mariadb-install-db`` and ``mariadbd`` in a temp dir, on a free port.

Loopback only, grant tables skipped (any user, no password: a test server), no binary log, a small
buffer pool. Stopping it (SIGTERM) and starting it again keeps its data, for outage tests.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.fixtures.mosquitto import free_port

__all__ = ["MariaDb", "run_mariadb"]

_READY_S = 60.0


@dataclasses.dataclass
class MariaDb:
    """One server: its binary, directory and port; ``url(db)`` for SQLAlchemy's asyncmy driver."""

    mariadbd: str
    workdir: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    def url(self, database: str = "") -> str:
        """``mysql+asyncmy://root@127.0.0.1:<port>/<database>``."""
        return f"mysql+asyncmy://root@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start the server and wait until its port takes connections."""
        log = (self.workdir / "server.log").open("ab")
        self.process = subprocess.Popen(
            [self.mariadbd, "--no-defaults", f"--datadir={self.workdir / 'data'}", f"--socket={self.workdir / 's'}",
             f"--port={self.port}", "--bind-address=127.0.0.1", "--user=root", "--skip-grant-tables",
             "--skip-log-bin", "--innodb-buffer-pool-size=16M", f"--pid-file={self.workdir / 'pid'}"],
            stdout=log, stderr=log,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + _READY_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"mariadbd exited {self.process.returncode}: {self.log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"mariadbd not ready after {_READY_S} s: {self.log_tail()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server (SIGTERM, a clean shutdown: committed rows stay)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server log."""
        log = self.workdir / "server.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


@contextlib.contextmanager
def run_mariadb(mariadbd: str) -> Iterator[MariaDb]:
    """Install a data directory and start a server in a temp dir; stop it and remove the dir on exit."""
    workdir = Path(tempfile.mkdtemp(prefix="uns-mariadb-"))
    try:
        install = shutil.which("mariadb-install-db") or str(Path(mariadbd).parent.parent / "bin" / "mariadb-install-db")
        subprocess.run(
            [install, "--no-defaults", f"--datadir={workdir / 'data'}", "--user=root",
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120,
        )  # fmt: skip
        server = MariaDb(mariadbd=mariadbd, workdir=workdir, port=free_port())
        server.start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

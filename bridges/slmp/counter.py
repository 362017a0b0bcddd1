"""A counting iQ-R PLC for benches: virtual-plc with D0..D<N-1> changing every 100 ms, in a process of its own.

Run by path (``python bridges/slmp/counter.py --words N``) it imports nothing of ours, so it starts in
a fraction of the time ``python -m`` inside the ``bridges`` packages takes; it prints ``port <n>``
once listening and stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Sequence

from virtual_plc import Server  # type: ignore[import-untyped]  # no py.typed in virtual-plc 0.3.0

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until killed: D<i> = (tick + i) mod 65536, the tick counting up every 100 ms."""
    parser = argparse.ArgumentParser(description="An iQ-R PLC (virtual-plc) whose D0.. count up every 100 ms.")
    parser.add_argument("--words", type=int, default=1000, help="How many D words change.")
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1; 0 = a free one.")
    args = parser.parse_args(argv)
    server = Server("127.0.0.1", args.port, profile="iQ-R")
    server.start()
    print(f"port {server.address[1]}", flush=True)
    tick = 0
    try:
        while not threading.Event().wait(0.1):
            tick = (tick + 1) & 0xFFFF
            # one call (one dict update under the GIL): a read rarely straddles two ticks
            server.memory.write_words("D", 0, [(tick + i) & 0xFFFF for i in range(args.words)])
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

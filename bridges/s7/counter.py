"""A counting S7 PLC for benches: snap7's Server with DB1 INTs changing every 100 ms, in a process of its own.

Run by path (``python bridges/s7/counter.py --words N``) it imports nothing of ours, so it starts in a
fraction of the time ``python -m`` inside the ``bridges`` packages takes; it prints ``port <n>`` once
listening and stops on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse
import signal
import struct
import threading
from collections.abc import Sequence

from snap7.server import Server
from snap7.type import SrvArea

__all__ = ["main"]


def _image(tick: int, words: int) -> bytes:
    return struct.pack(f">{words}h", *((tick + i) & 0x7FFF for i in range(words)))


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until stopped: DB1.DBW<2 i> = (tick + i) mod 32768, the tick counting up every 100 ms."""
    parser = argparse.ArgumentParser(description="An S7 PLC (snap7's Server) whose DB1 INTs count up every 100 ms.")
    parser.add_argument("--words", type=int, default=1000, help="How many INTs (DB1.DBW0, DBW2, ...) change.")
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1; 0 = a free one.")
    args = parser.parse_args(argv)
    memory = bytearray(_image(0, args.words))
    server = Server(log=False)
    server.register_area(SrvArea.DB, 1, memory)
    server.host = "127.0.0.1"
    server.start(args.port)
    if server.server_socket is None:
        return 1
    print(f"port {server.server_socket.getsockname()[1]}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    lock = server.area_locks[next(iter(server.area_locks))]
    tick = 0
    try:
        while not stop.wait(0.1):
            tick = (tick + 1) & 0x7FFF
            image = _image(tick, args.words)
            with lock:  # a reader sees a whole tick
                memory[:] = image
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

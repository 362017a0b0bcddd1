"""uvicorn as the hub embeds it: the hub owns the signals, the server wakes once a second and stops at once."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator

import uvicorn

from uns.event_wait import set_within

__all__ = ["EmbeddedServer"]

_TICK_S = 1.0  # uvicorn's own tick is 0.1 s, 10 wake-ups a second per server for a once-a-second job


class EmbeddedServer(uvicorn.Server):
    """uvicorn ticking once a second, without its signal handlers: ``uns`` owns SIGINT/SIGTERM and cancels us."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._stopping = asyncio.Event()

    async def serve_until_cancelled(self, sock: socket.socket, *, name: str) -> None:
        """Serve on ``sock`` until cancelled, then close the listener and finish (or cancel) running requests."""
        serving = asyncio.create_task(self.serve(sockets=[sock]), name=name)
        try:
            await asyncio.shield(serving)
        finally:
            # uvicorn's own shutdown unregisters the listener from the event loop before it is closed
            self.stop()  # wakes the main loop, which closes the listener and connections
            await serving

    def stop(self) -> None:
        """Leave the main loop now, not at the next tick."""
        self.should_exit = True
        self._stopping.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Install no signal handlers: the hub owns SIGINT/SIGTERM and stops the server by cancelling it."""
        yield

    async def main_loop(self) -> None:
        """Run uvicorn's housekeeping once a second until stopped."""
        # on_tick's once-a-second work (the Date header) runs at counter 0: every one of our ticks
        while not await self.on_tick(0):
            await set_within(self._stopping, _TICK_S)

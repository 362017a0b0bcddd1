"""Logging: the only place that configures handlers (the CLI calls it once), and the one rate-limited warning."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Hashable
from typing import TextIO

__all__ = ["RateLimitedLog", "configure_logging"]

_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# their INFO lines repeat ours (uvicorn: our ready line names the URL; httpx: a line per request of the HTTP source);
# WARNING and up still show
_NOISY = ("amqtt", "transitions", "websockets", "pymodbus", "asyncua", "uvicorn", "httpx")


class _DropAmqttStartupTrace(logging.Filter):
    """amqtt logs a stack trace when a listener cannot bind; uns/broker reports it as one clear line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Broker startup failed"


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler on whatever ``sys.stderr`` is when a record is written, not the one it was made with.

    The same file in a ``uns`` process; in a test that ran a command in-process (``hub.cli.main``), the stderr
    it captured is closed by the next test, and a handler bound to it printed ``--- Logging error ---`` with a
    traceback into whatever that test read from stderr.
    """

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # StreamHandler.__init__ and setStream assign it: always sys.stderr


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr at ``level``; stdout is kept for the ready line."""
    handler = _Stderr()
    handler.setFormatter(logging.Formatter(_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _NOISY:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    logging.getLogger("amqtt.broker").addFilter(_DropAmqttStartupTrace())
    # pymodbus warns on every failed connect; the Modbus bridge reports device down/up itself
    logging.getLogger("pymodbus").setLevel(max(logging.ERROR, root.level))
    # asyncua warns about security policies and session timeouts on every connect; bridges log their own state
    logging.getLogger("asyncua").setLevel(max(logging.ERROR, root.level))


class RateLimitedLog:
    """Log a WARNING per key at most once per ``interval_s``; the next one says how many were held back.

    Every component that could log the same problem thousands of times a second (a malformed payload
    per message, a refusing device per poll) warns through one of these, so a flood costs a dict
    lookup and the log stays readable. Keys are whatever names the problem (a reason and a topic, a
    device and an address); at most ``max_keys`` are remembered, so a flood of distinct keys cannot
    grow memory.

    Args:
        logger: where the warnings go.
        interval_s: the least time between two warnings of one key.
        max_keys: how many keys are remembered before the memory is cleared.
        clock: seconds, monotonic (injected by tests and by callers with their own clock).
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval_s: float = 10.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval_s = interval_s
        self._max_keys = max_keys
        self._clock = clock
        self._last: dict[Hashable, tuple[float, int]] = {}

    def warning(self, key: Hashable, msg: str, *args: object) -> bool:
        """Log ``msg % args`` unless ``key`` was logged less than ``interval_s`` ago; True when logged."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last[0] < self._interval_s:
            self._last[key] = (last[0], last[1] + 1)
            return False
        if len(self._last) >= self._max_keys:
            self._last.clear()  # bound the memory a flood of distinct keys can take
        self._last[key] = (now, 0)
        held = last[1] if last is not None else 0
        if held:
            # formatted here, once per interval: the held-back count belongs on the same line
            self._logger.warning("%s (%d more like it since the last one)", msg % args if args else msg, held)
        else:
            self._logger.warning(msg, *args)
        return True

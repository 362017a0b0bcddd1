"""Logging set-up: the only place that configures handlers (the CLI calls it once)."""

from __future__ import annotations

import logging
import sys

__all__ = ["configure_logging"]

_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# their INFO lines repeat ours (uvicorn: our ready line names the URL; httpx: a line per request of the HTTP source);
# WARNING and up still show
_NOISY = ("amqtt", "transitions", "websockets", "pymodbus", "asyncua", "uvicorn", "httpx")


class _DropAmqttStartupTrace(logging.Filter):
    """amqtt logs a stack trace when a listener cannot bind; uns/broker reports it as one clear line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Broker startup failed"


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr at ``level``; stdout is kept for the ready line."""
    handler = logging.StreamHandler(sys.stderr)
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

"""amqtt's log lines about one misbehaving connection, turned into one rate-limited WARNING per cause and client.

amqtt 0.12.1 logs each bad packet of each client at WARNING (some at ERROR, some twice): a fuzzer
or a port scanner fills the log. These records are dropped and re-logged by ``uns.broker.quiet``
through :class:`uns.logs.RateLimitedLog`, keyed by the message without its numbers (packet
ids, ports) and the client id amqtt attaches; records that are not about one connection pass as they are.
DEBUG lines keep their text but carry the exception as one line instead of a traceback.
"""

from __future__ import annotations

import logging
import re

from uns.logs import RateLimitedLog

__all__ = ["quieten_amqtt"]

log = logging.getLogger(__name__)

_BROKER = "amqtt.broker"
_HANDLER = "amqtt.mqtt.protocol.handler"  # every WARNING of a protocol handler is about its one connection
_PER_CONNECTION = (
    "Failed to initialize client session",
    "Error while handling client session",
    "[MQTT-3.1.0-1]",
    "Remote info could not be retrieved",
    "Client ",
)
# each is followed by "Failed to initialize client session: <cause>", which says the same
_REDUNDANT = ("No data from", "Invalid connection from")
_ADDRESS = re.compile(r"\(client @=[^)]*\)")
_NUMBERS = re.compile(r"\d+")


class _Quieten(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self._warn = RateLimitedLog(log)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            if record.exc_info and record.exc_info[1] is not None:  # a reset socket's close: one line, no trace
                record.msg, record.args = f"{record.getMessage()}: {record.exc_info[1]!r}", ()
                record.exc_info, record.exc_text = None, None
            return True
        if record.exc_info:
            return True
        message = record.getMessage()
        if record.name == _BROKER and not message.startswith(_PER_CONNECTION + _REDUNDANT):
            return True
        if message.startswith(_REDUNDANT):
            return False
        client = str(getattr(record, "client_id", "") or "")
        cause = _NUMBERS.sub("#", _ADDRESS.sub("", message))
        self._warn.warning(f"{cause}/{client}", "client %s: %s", client or "<connecting>", message)
        return False


_FILTER = _Quieten()


def quieten_amqtt() -> None:
    """Put the filter on amqtt's broker and protocol handler loggers (once per process)."""
    for name in (_BROKER, _HANDLER):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)

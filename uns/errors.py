"""The one exception hierarchy of uns-hub.

```
UnsError
├── ConfigError          file, field path, value
├── BrokerError          endpoint                 └── BrokerUnreachable
├── BridgeError          bridge, endpoint         ├── DeviceUnreachable  ├── DeviceRefused (says what to check)
│                                                 └── ReadError (address / node id)
├── SparkplugError       topic                    └── PayloadDecodeError (byte offset)
├── EventRejected        topic, field, reason     (MES validation → dead letter + errors topic)
├── StoreError           database                 ├── SchemaTooNew (file version > code version)
│                                                 └── HistorianError (a historian query failed)
├── QueryError           field                    ├── BadArgument (a query argument: HTTP 400, CLI exit 2)
│                                                 └── UnknownSeries (no such topic: HTTP 404)
├── SinkError            sink, target             ├── SinkUnavailable (retried with backoff)
│                                                 └── RowsRefused (the database refused rows: isolated, dead-lettered)
└── HostWorkerError      pid, reason              (host.worker: the host's worker process did not start)
```
Each keeps its context as attributes and builds a message that says what happened, where,
and what to do next.
"""

from __future__ import annotations

__all__ = [
    "LIST_SERIES",
    "BadArgument",
    "BridgeError",
    "BrokerError",
    "BrokerUnreachable",
    "ConfigError",
    "DeviceRefused",
    "DeviceUnreachable",
    "EventRejected",
    "HistorianError",
    "HostWorkerError",
    "PayloadDecodeError",
    "QueryError",
    "ReadError",
    "RowsRefused",
    "SchemaTooNew",
    "SinkError",
    "SinkUnavailable",
    "SparkplugError",
    "StoreError",
    "UnknownSeries",
    "UnsError",
]


class UnsError(Exception):
    """Base of every error uns-hub raises on purpose."""


class ConfigError(UnsError):
    """A configuration file or value is invalid.

    The message reads ``broker.yaml: listeners.tcp.port: must be ≤ 65535 (got 70000)``.
    """

    def __init__(self, *, source: str, path: str, reason: str, value: object = None) -> None:
        self.source = source
        self.path = path
        self.reason = reason
        self.value = value
        where = f"{source}: {path}" if path else source
        got = "" if value is None else f" (got {value!r})"
        super().__init__(f"{where}: {reason}{got}")


class BrokerError(UnsError):
    """The MQTT broker (embedded or external) failed or refused us."""

    def __init__(self, endpoint: str, reason: str) -> None:
        self.endpoint = endpoint
        self.reason = reason
        super().__init__(f"broker {endpoint}: {reason}")


class BrokerUnreachable(BrokerError):
    """No MQTT connection could be made to the broker."""


class BridgeError(UnsError):
    """A protocol bridge failed talking to its device or server."""

    def __init__(self, bridge: str, endpoint: str, reason: str) -> None:
        self.bridge = bridge
        self.endpoint = endpoint
        self.reason = reason
        super().__init__(f"bridge {bridge} ({endpoint}): {reason}")


class DeviceUnreachable(BridgeError):
    """The device or server does not answer."""


class DeviceRefused(BridgeError):
    """The device answered and said no: wrong rack/slot or route, access disabled, password, connection limit.

    Retrying soon cannot fix it; the reason says what to check on the device or in the config.
    """


class ReadError(BridgeError):
    """One address or node id could not be read."""

    def __init__(self, bridge: str, endpoint: str, address: str, reason: str) -> None:
        self.address = address
        super().__init__(bridge, endpoint, f"{address}: {reason}")


class SparkplugError(UnsError):
    """A Sparkplug message broke the specification."""

    def __init__(self, topic: str, reason: str) -> None:
        self.topic = topic
        self.reason = reason
        super().__init__(f"{topic}: {reason}")


class PayloadDecodeError(SparkplugError):
    """A Sparkplug payload is not valid protobuf; ``offset`` is the byte where decoding failed."""

    def __init__(self, topic: str, offset: int, reason: str) -> None:
        self.offset = offset
        super().__init__(topic, f"payload undecodable at byte {offset}: {reason}")


class EventRejected(UnsError):
    """An MES event failed validation; it goes to the dead-letter table and the errors topic."""

    def __init__(self, topic: str, field: str, reason: str) -> None:
        self.topic = topic
        self.field = field
        self.reason = reason
        super().__init__(f"{topic}: {field}: {reason}")


class StoreError(UnsError):
    """The hub's DuckDB file (``uns.store``: historian, MES and alarm history) could not be opened, migrated or written.

    Catch this one for any failure of the file; ``HistorianError`` is the historian's own branch of it.
    """

    _noun = "store"

    def __init__(self, database: str, reason: str) -> None:
        self.database = database
        self.reason = reason
        super().__init__(f"{self._noun} {database}: {reason}")


class HistorianError(StoreError):
    """A query of the historian's series failed (``uns.historian.queries``)."""

    _noun = "historian database"


class SchemaTooNew(StoreError):
    """The database was written by a newer uns-hub; opening it with this one could lose data."""

    def __init__(self, database: str, found: int, known: int) -> None:
        self.found = found
        self.known = known
        super().__init__(
            database, f"schema version {found} is newer than this uns-hub knows ({known}): upgrade uns-hub to open it"
        )


class QueryError(UnsError, ValueError):
    """A query of the historian, the MES views or a sink's history cannot be answered as asked.

    ``field`` names the argument as the HTTP API and CLI spell it. A ``ValueError`` too, for callers that
    parse arguments.
    """

    field: str


class BadArgument(QueryError):
    """A query argument is invalid: ``field: reason``."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


LIST_SERIES = "list them: uns query series, or GET /api/history/series"
"""Where to find the stored topics, for a message the CLI and the HTTP API both show."""


class UnknownSeries(QueryError, LookupError):
    """No series (or MES event topic) has this topic: most likely a typo."""

    def __init__(self, topic: str, *, what: str = "series", field: str = "topic") -> None:
        self.topic = topic
        self.field = field
        super().__init__(f"no {what} {topic}; {LIST_SERIES}")


class SinkError(UnsError):
    """A sink (the UNS out to another store) could not write to its target."""

    def __init__(self, sink: str, target: str, reason: str) -> None:
        self.sink = sink
        self.target = target
        self.reason = reason
        super().__init__(f"sink {sink} ({target}): {reason}")


class SinkUnavailable(SinkError):
    """The target is down or unreachable: the batch is kept, unacknowledged, and retried with backoff.

    ``retry_after_s`` is the target's own wait (an HTTP ``Retry-After``): the retry waits at least that long.
    """

    def __init__(self, sink: str, target: str, reason: str, *, retry_after_s: float | None = None) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(sink, target, reason)


class RowsRefused(SinkError):
    """The target refused the batch's rows (not the connection): the sink isolates the bad row and dead-letters it.

    ``field`` is the dead letter's field (``database``; ``http`` for a REST target's 4xx, ``template``).
    ``rows`` are the refused rows when the target names them (InfluxDB 3's line numbers), as indexes in
    the batch's order (samples, events, dead letters): those are dead-lettered at once and the rest
    written again; without them the framework finds the refused rows by writing the batch in halves.
    """

    def __init__(
        self, sink: str, target: str, reason: str, *, field: str = "database", rows: tuple[int, ...] = ()
    ) -> None:
        self.field = field
        self.rows = rows
        super().__init__(sink, target, reason)


class HostWorkerError(UnsError):
    """The Sparkplug host's worker process (``host.worker``) did not start: it died or did not answer.

    The host cannot go online without it; its own error, if it got that far, is on the hub's stderr.
    """

    def __init__(self, pid: int | None, reason: str) -> None:
        self.pid = pid
        self.reason = reason
        which = "" if pid is None else f" (pid {pid})"
        super().__init__(
            f"Sparkplug host worker{which} {reason} while starting: see its error above on stderr and fix it, or"
            " run the host's core in the hub's process with host.worker: false (UNS_HOST__WORKER=false)"
        )

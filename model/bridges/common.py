"""What every bridge config shares: its Sparkplug edge node identity, buffering and reporting."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from model.sparkplug_ids import SparkplugId

__all__ = [
    "DATATYPE_NAMES",
    "BridgeBase",
    "DatatypeName",
    "EdgeNodeConfig",
    "TagPattern",
    "check_unique",
    "repeated",
    "sparkplug_id",
]

DatatypeName = Literal[
    "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64", "Float", "Double",
    "Boolean", "String", "DateTime", "Text",
]  # fmt: skip
"""Sparkplug datatype names a bridge tag may declare (scalars)."""

DATATYPE_NAMES: tuple[str, ...] = DatatypeName.__args__  # type: ignore[attr-defined]


sparkplug_id = SparkplugId
"""A Sparkplug group, edge node or device id: not empty, no '/', '+' or '#'."""


def _check_tag_pattern(value: str) -> str:
    device, slash, metric = value.partition("/")
    if not slash or not device or not metric:
        raise ValueError(f"must be <device>/<metric>, each part a name or a pattern with * and ? (got {value!r})")
    return value


TagPattern = Annotated[str, AfterValidator(_check_tag_pattern)]
"""``<device>/<metric>``: a device id and a metric name, each may hold ``*`` and ``?`` (case-sensitive; ``*`` also
crosses the ``/`` levels of a metric name; a ``[`` is the name's own, as in an array element ``Flags[3]``)."""


class EdgeNodeConfig(BaseModel):
    """The Sparkplug edge node a bridge appears as."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    group: sparkplug_id = Field(description="Sparkplug group id.")
    node: sparkplug_id | None = Field(default=None, description="Edge node id; defaults to the bridge's name.")
    primary_host_id: str | None = Field(
        default="uns-hub",
        description="Host id whose spBv1.0/STATE to honour: while it is offline, data is buffered on disk and "
        "sent afterwards as is_historical. null = publish regardless of any host.",
    )
    buffer_dir: Path | None = Field(
        default=None, description="Store-and-forward directory; null = <data_dir>/bridges/<bridge name>."
    )
    buffer_max_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024, description="Store-and-forward cap; the oldest samples go first beyond it."
    )
    replay_window_s: float = Field(
        default=10.0,
        ge=0.0,
        le=3600.0,
        description="Send again, as is_historical, what was published in the last this many seconds when the "
        "connection is lost or the node restarts after a crash: the hub may have received it but not yet stored "
        "it (its historian commits about once a second). Consumers dedupe on (metric, timestamp). Kept in a "
        "journal beside the buffer; 0 = off.",
    )
    first_reading_wait_s: float = Field(
        default=5.0,
        ge=0.0,
        le=300.0,
        description="Hold the births up to this long until every device has been read once, so a DBIRTH carries "
        "values rather than nulls; a device still silent after it is born with nulls (quality bad).",
    )
    heartbeat_s: float = Field(
        default=60.0, ge=0.0, description="Resend every metric at least this often even if unchanged; 0 = never."
    )
    keepalive_s: int = Field(default=10, ge=1, le=3600, description="MQTT keep-alive of the edge node's connection.")
    health_interval_s: float = Field(
        default=5.0, gt=0, description="How often the bridge's health metrics (Bridge/...) are refreshed."
    )
    transient_tags: list[TagPattern] = Field(
        default_factory=list,
        description="Tags whose values are live only, not to be historized: <device>/<metric>, each part a name or "
        "a pattern with * and ? (* crosses the / levels of a metric name; [ is literal, as in plc/Flags[3]), e.g. "
        "filler/Diagnostics/* . They go out with Sparkplug's is_transient in DBIRTH and every DDATA; the hub "
        "still republishes them on the UNS "
        '(envelope "transient": true) but its historian and time-series sinks do not store them. A pattern no '
        "tag matches is logged at start.",
    )


class BridgeBase(BaseModel):
    """Fields every bridge kind has."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: sparkplug_id = Field(description="Bridge name: logs, errors, and the default edge node id.")
    edge: EdgeNodeConfig = Field(description="The Sparkplug edge node this bridge publishes as.")
    enabled: bool = Field(default=True, description="false = keep the config but do not run it.")

    @property
    def node_id(self) -> str:
        """The Sparkplug edge node id."""
        return self.edge.node or self.name


def repeated(values: Sequence[str]) -> list[str]:
    """The values listed more than once, sorted: what a config error names when ids or names must be unique."""
    seen: set[str] = set()
    twice: set[str] = set()
    for value in values:
        (twice if value in seen else seen).add(value)
    return sorted(twice)


def check_unique(what: str, values: Sequence[str]) -> None:
    """Raise ``ValueError("<what>s used twice: a, b")`` naming every value listed more than once."""
    twice = repeated(values)
    if twice:
        raise ValueError(f"{what}s used twice: {', '.join(twice)}")

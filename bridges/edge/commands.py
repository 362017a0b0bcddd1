"""What an NCMD or DCMD asks of an edge node: a rebirth, a write to a writable tag, or a refusal that says why.

Pure: the command is read against the alias tables of the node's births (``bridges.edge.session.EdgeSession``
keeps them and hands them in), and the node (``bridges.edge.node``) obeys what comes back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Protocol, TypeVar

from bridges.source import TagSpec
from uns.errors import SparkplugError
from uns.mqtt.types import Message
from uns.sparkplug import DataType, MessageType, Metric, MetricValue, SparkplugTopic, decode_payload
from uns.sparkplug.aliases import AliasTable, Born
from uns.sparkplug.node_control import REBIRTH
from uns.sparkplug.values import encode_scalar

__all__ = ["Command", "Rebirth", "Refused", "Write", "decode_commands"]


@dataclasses.dataclass(frozen=True, slots=True)
class Rebirth:
    """An NCMD asked for ``Node Control/Rebirth``."""


@dataclasses.dataclass(frozen=True, slots=True)
class Write:
    """A DCMD asked to write a writable tag."""

    device: str
    name: str
    value: MetricValue


@dataclasses.dataclass(frozen=True, slots=True)
class Refused:
    """A command that cannot be obeyed; ``reason`` names device and metric."""

    reason: str


Command = Rebirth | Write | Refused


class _Tag(Protocol):
    """What a device's alias table keeps per tag: its datatype and its declaration (``Source.tags()``)."""

    @property
    def datatype(self) -> DataType:
        """The tag's Sparkplug datatype (what the table hands the codec)."""
        ...

    @property
    def spec(self) -> TagSpec:
        """The tag as the source declared it: name, datatype, whether it is writable."""
        ...


_T = TypeVar("_T", bound=_Tag)


def decode_commands(
    message: Message, *, node_metrics: AliasTable[Born], devices: Mapping[str, AliasTable[_T]]
) -> list[Command]:
    """What an NCMD or DCMD asks for; raises ``SparkplugError`` if it is not a readable command.

    Args:
        message: the NCMD or DCMD as received.
        node_metrics: the NBIRTH's metrics (an NCMD's names and aliases).
        devices: each device's DBIRTH metrics by device id (a DCMD's).
    """
    topic = SparkplugTopic.from_str(message.topic)
    if topic.message_type is MessageType.NCMD:
        return _node_commands(message, node_metrics)
    if topic.message_type is not MessageType.DCMD or topic.device_id is None:
        raise SparkplugError(message.topic, "not a command for this edge node")
    device = topic.device_id
    table = devices.get(device)
    if table is None:
        return [Refused(f"DCMD for unknown device {device!r}")]
    decoded = decode_payload(message.payload, topic=message.topic, lookup=table.lookup)
    out: list[Command] = [
        Refused(f"device {device} metric {p.name or p.alias!r}: {p.reason}") for p in decoded.problems
    ]
    for metric in decoded.payload.metrics:
        tag = table.metrics.get(metric.name or "")
        if tag is None:
            out.append(Refused(f"device {device} has no metric {metric.name!r}"))
        elif not tag.spec.writable:
            out.append(Refused(f"device {device} metric {metric.name!r} is not writable"))
        elif (unfit := _unfit(tag.spec.datatype, metric)) is not None:
            out.append(Refused(f"device {device} metric {metric.name!r}: {unfit}"))
        else:
            out.append(Write(device, tag.spec.name, metric.value))
    return out


def _node_commands(message: Message, node_metrics: AliasTable[Born]) -> list[Command]:
    decoded = decode_payload(message.payload, topic=message.topic, lookup=node_metrics.lookup)
    out: list[Command] = [Refused(f"node metric {p.name or p.alias!r}: {p.reason}") for p in decoded.problems]
    for metric in decoded.payload.metrics:
        if metric.name == REBIRTH:
            # tck-id-operational-behavior-data-commands-ncmd-rebirth-value: a rebirth request is true
            if metric.value is True:
                out.append(Rebirth())
            else:
                out.append(Refused(f"{REBIRTH} needs the Boolean true (got {metric.value!r})"))
        elif metric.name in node_metrics.metrics:
            out.append(Refused(f"node metric {metric.name!r} is not writable"))
        else:  # Node Control/Reboot, Next Server, Scan Rate...: examples in the spec, not in our NBIRTH
            out.append(Refused(f"node metric {metric.name!r} is not in this edge node's NBIRTH"))
    return out


def _unfit(datatype: DataType, metric: Metric) -> str | None:
    """Why a DCMD value cannot be written to a tag of ``datatype``, or None if it can."""
    if metric.is_null or metric.value is None:
        return "a write needs a value (got null)"
    try:
        encode_scalar(datatype, metric.value)
    except ValueError as exc:
        return f"cannot write {metric.value!r}: {exc}"
    return None

"""The Sparkplug node-control vocabulary every side shares: the ``bdSeq`` metric, the rebirth command, the seq count.

Edge nodes put ``bdSeq`` in their NBIRTH and NDEATH and answer ``Node Control/Rebirth``; the host and the
web UI ask for a rebirth with the same NCMD. Spelled once here (Sparkplug B 3.0, sections 6.4.6 and 6.4.18),
as is how ``seq`` and ``bdSeq`` count: 0 to 255, then 0 again (``next_seq``).
"""

from __future__ import annotations

from collections.abc import Iterable

from uns.sparkplug.datatypes import DataType
from uns.sparkplug.payload import encode_payload
from uns.sparkplug.payload_types import Metric, Payload
from uns.sparkplug.topic import MessageType, SparkplugTopic

__all__ = ["BD_SEQ", "REBIRTH", "bd_seq_of", "next_seq", "rebirth_command"]

BD_SEQ = "bdSeq"
"""The birth/death sequence metric of NBIRTH and NDEATH (0..255), which pairs a death with its birth."""

REBIRTH = "Node Control/Rebirth"
"""The Boolean NCMD metric that asks an edge node to publish its births again."""


def next_seq(seq: int) -> int:
    """The ``seq`` (or ``bdSeq``) that follows ``seq``: one more, 255 wrapping to 0."""
    return (seq + 1) % 256


def bd_seq_of(metrics: Iterable[Metric]) -> int | None:
    """The ``bdSeq`` of a birth's or death's metrics, or None when it has none (or not an integer)."""
    for metric in metrics:
        if metric.name == BD_SEQ and isinstance(metric.value, int) and not isinstance(metric.value, bool):
            return metric.value
    return None


def rebirth_command(group_id: str, edge_node_id: str, now_ms: int) -> tuple[str, bytes]:
    """The NCMD topic and payload that ask ``group_id/edge_node_id`` to rebirth."""
    command = Payload(
        timestamp=now_ms, metrics=[Metric(name=REBIRTH, timestamp=now_ms, datatype=DataType.Boolean, value=True)]
    )
    topic = SparkplugTopic(group_id=group_id, message_type=MessageType.NCMD, edge_node_id=edge_node_id)
    return str(topic), encode_payload(command)

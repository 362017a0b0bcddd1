"""An envelope as the message the host publishes (its JSON, in-process its reading); stale marks and births after."""

from __future__ import annotations

import dataclasses

import orjson

from model.envelope import EnvelopeDict, EnvelopeError, Quality, build_envelope, read_fields
from uns.host.tables import MetricSlot, MetricTable
from uns.mqtt.types import Message
from uns.sparkplug import DataType, Metric

__all__ = ["TYPE_NAMES", "BirthMarks", "after_restamp", "compact_json", "republish_message", "stale_marks"]

TYPE_NAMES = {datatype: datatype.name for datatype in DataType}
"""Each datatype's name by lookup: an enum's ``.name`` costs ~0.1 us per republished metric."""


def compact_json(env: EnvelopeDict) -> bytes:
    """The envelope as JSON, in bytes of its own size.

    orjson hands back its 4 KiB working buffer (not shrunk) for a ~150-byte envelope, and a
    republished payload lives on in the client's queue and the broker's retained store: the copy
    costs ~0.7 us and saves ~3.9 KiB per message (bench/birth_memory.py, docs/benchmarks.md).
    """
    return bytes(memoryview(orjson.dumps(env)))


def republish_message(topic: str, env: EnvelopeDict, ts: int, retain: bool, *, qos: int, hand_decoded: bool) -> Message:
    """The republish of ``env``; in-process (``hand_decoded``), with its reading beside the JSON (read once for all).

    The reading is the one reader's, on the dict the JSON is written from (the same values), so
    the rules are those every consumer applies; an envelope they refuse goes without one, and
    each consumer refuses the JSON as from any other publisher.
    """
    if not hand_decoded:
        return Message(topic, compact_json(env), qos, retain)
    # in-process, the broker keeps an exact-size copy of each retained message it stores: one copy, not two
    payload = orjson.dumps(env) if retain else compact_json(env)
    try:
        decoded = read_fields(env, payload, now_ms=ts)  # ts: the envelope's own, as it has one
    except EnvelopeError:
        decoded = None
    return Message(topic, payload, qos, retain, 0, decoded)


def stale_marks(table: MetricTable, now_ms: int, *, qos: int, hand_decoded: bool) -> list[Message]:
    """Each last value of ``table`` republished ``stale``, stamped when the hub learnt of the death.

    Never before the value it marks (the edge's clock may run ahead of ours): at least 1 ms
    after it, so the stale sample is a new one, newer than the good one, everywhere.
    """
    out: list[Message] = []
    for slot in table.slots.values():
        if slot.last_ms is not None:
            slot.last_ms = max(now_ms, slot.last_ms + 1)
            table.stale_ms = max(table.stale_ms or 0, slot.last_ms)
            stale = build_envelope(
                value=slot.last_value,
                timestamp_ms=slot.last_ms,
                quality=Quality.stale,
                datatype=TYPE_NAMES[slot.datatype],
                unit=slot.unit,
                unbound=not table.bound,
                source=table.source,
                transient=slot.transient,
            )
            out.append(republish_message(slot.topic, stale, slot.last_ms, True, qos=qos, hand_decoded=hand_decoded))
    return out


class BirthMarks:
    """The stale marks a new birth of a table marked stale must sort after (``BirthMarks.of``, before its reset).

    A birth's metric carries its read time (the metric's or the payload's timestamp), which many edge nodes
    (Ignition's transmitters, any whose tags keep their last-change time) set before the stale mark: taken as
    sent, the stale mark would stay the newest sample downstream until the value changed. So a live metric whose
    time is not after its mark is stamped with the birth's own time (the payload's timestamp: when the edge
    node said the value is current, else when the hub received it) and never before the mark:
    ``max(birth, mark + 1 ms)``. Not the hub's clock, as for a death: a will is stamped at connect, a birth
    when it is sent; and an edge node's heartbeat of an unchanged value, stamped at its birth (our edge's),
    then meets the held value at the same millisecond rather than reading as older. A birth is never sent after
    the hub received it: a payload time past the receipt is the edge's clock running ahead (its metrics may be
    read by a source whose clock agrees with the hub's), so the receipt bounds the birth's time, as the mark
    does an edge clock behind the hub's: ``max(min(birth, received), mark + 1 ms)``. One after its mark, or
    historical, or with no mark (not in the old birth), keeps its own time. A table whose slots a refused birth
    freed has only its newest mark left: it stands for each.
    """

    __slots__ = ("_freed_ms", "_marks")

    def __init__(self, marks: dict[str, int], freed_ms: int | None) -> None:
        self._marks = marks
        self._freed_ms = freed_ms

    @classmethod
    def of(cls, table: MetricTable) -> BirthMarks | None:
        """The marks on ``table``'s values, for its next birth; None if it was not marked stale."""
        if table.stale_ms is None:
            return None  # a rebirth of a live table, or one awaited and born in time: its values as sent
        marks = {name: slot.last_ms for name, slot in table.slots.items() if slot.last_ms is not None}
        return cls(marks, None if table.slots else table.stale_ms)

    def restamped(self, metric: Metric, payload_ms: int, received_ms: int) -> Metric:
        """``metric`` as republished: at its birth (``payload_ms``, by ``received_ms``) if not read after its mark."""
        if metric.is_historical:
            return metric  # not live: history at its own time
        mark = self._marks.get(metric.name, self._freed_ms) if metric.name is not None else None
        if mark is None or (metric.timestamp or payload_ms) > mark:
            return metric
        return dataclasses.replace(metric, timestamp=max(min(payload_ms, received_ms), mark + 1))


def after_restamp(restamped: dict[str, tuple[int, int, int]], slot: MetricSlot, ts: int) -> int:
    """The stamp of a DATA reading older than the value held: 1 ms after it if read while a restamped birth was sent.

    That is, if the birth restamped the value held (``BirthMarks``) and the reading is newer than the time that
    value was read and older than the birth's own time (the payload's, when the edge node sent it); else ``ts``
    (out of order, as any). The edge node read it after the value its birth carried, and it was on its way while
    the birth was sent (a source's first notifications after a reconnect, read in the outage, come just after the
    DBIRTH): taken as older than the birth's stamp, it would go to history only, and the value held would be the
    birth's older one until the next change. Stamped just after the held value, it is the current value
    everywhere. The next such reading goes after it the same way; a reading at or before the birth's own read
    time is out of order. So is one read at or after the birth was sent, by the edge's clock: not on its way but
    read after it, and older than the stamp only as the edge's clock runs behind the hub's (the stamp is then the
    mark's); its own time, in history, until the edge's time passes the stamp, rather than every reading of
    that while stamped 1 ms apart just after the birth.
    """
    held = restamped.get(slot.topic)
    if held is None or slot.last_ms != held[1] or not held[0] < ts < held[2]:
        return ts
    restamped[slot.topic] = (ts, held[1] + 1, held[2])
    return held[1] + 1

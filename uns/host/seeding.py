"""The stale marks a host left in its retained node status documents, read back at start (``seed_marks``).

The marks a birth must sort after (``uns.host.republish.BirthMarks``) live in the host's memory; each node's
status document (``<enterprise>/hub/host/nodes/<group>/<node>``, retained) carries them as ``stale_ms``, the node's
and each device's. A host starting (a restart of the hub, or of its worker process) reads those documents back
and makes each node or device that was offline with a mark an offline table with that mark and no slots: its
first birth then stamps a value read before the mark after it, as it would have without the restart.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import orjson

from uns.errors import SparkplugError
from uns.host.counters import Reason
from uns.host.directory import Directory, Reject
from uns.host.tables import MetricTable, NodeState
from uns.sparkplug import MessageType, SparkplugTopic

__all__ = ["StatusDocuments", "seed_marks"]

log = logging.getLogger(__name__)

StatusDocuments = tuple[tuple[str, bytes], ...]
"""Retained node status documents as read from the broker: topic, payload."""


class _Malformed(ValueError):
    """A status document that cannot be read; the message says what is wrong."""


def _mark(doc: object, where: str) -> int | None:
    """The stale mark of an offline table's entry ``doc``; None if online or unmarked."""
    if not isinstance(doc, dict):
        raise _Malformed(f"{where.rstrip('.') or 'the document'}: not an object")
    online, stale_ms = doc.get("online"), doc.get("stale_ms")
    if not isinstance(online, bool):
        raise _Malformed(f"{where}online: not true or false (got {online!r})")
    if stale_ms is not None and (not isinstance(stale_ms, int) or isinstance(stale_ms, bool) or stale_ms < 0):
        raise _Malformed(f"{where}stale_ms: not a time in ms or null (got {stale_ms!r})")
    return None if online else stale_ms


def _marks(topic: str, payload: bytes, prefix: str) -> tuple[SparkplugTopic, int | None, dict[str, int]]:
    """The node a status document names, its mark, and its devices' marks (offline and marked only)."""
    levels = topic.removeprefix(prefix).split("/") if topic.startswith(prefix) else []
    if len(levels) != 2:
        raise _Malformed(f"not {prefix}<group>/<node>")
    try:
        node = SparkplugTopic(group_id=levels[0], message_type=MessageType.NBIRTH, edge_node_id=levels[1])
        doc = orjson.loads(payload)
    except (SparkplugError, orjson.JSONDecodeError) as exc:
        raise _Malformed(str(exc)) from exc
    mark = _mark(doc, "")
    devices = doc.get("devices", {})
    if not isinstance(devices, dict):
        raise _Malformed("devices: not an object")
    device_marks: dict[str, int] = {}
    for device_id, device in devices.items():
        device_mark = _mark(device, f"devices.{device_id}.")
        if device_mark is not None:
            try:
                SparkplugTopic(
                    group_id=node.group_id,
                    message_type=MessageType.DBIRTH,
                    edge_node_id=node.edge_node_id,
                    device_id=device_id,
                )
            except SparkplugError as exc:
                raise _Malformed(f"devices.{device_id}: {exc.reason}") from exc
            device_marks[device_id] = device_mark
    return node, mark, device_marks


def _seed(table: MetricTable, mark: int) -> bool:
    """An offline table with no slots left: its newest mark stands for each metric (``BirthMarks``); seeded?"""
    if table.online or table.slots:
        return False  # known already in this host's life: its own marks are the truth
    table.stale_ms = max(table.stale_ms or 0, mark)
    return True


def seed_marks(
    documents: Iterable[tuple[str, bytes]],
    *,
    prefix: str,
    directory: Directory,
    reject: Reject,
    now_ms: int,
) -> int:
    """Seed the stale marks of ``documents`` (the host's retained node status under ``prefix``); returns those seeded.

    A node or device is made through ``directory`` (bound to its path, an unbound one warned of once), only if it
    has a mark, and within ``host.max_nodes`` and ``host.max_devices_per_node`` (past one it is left unseeded,
    not refused: nothing was received). A document that cannot be read is refused as ``bad_status`` (counted,
    logged) and ignored.
    """
    seeded = 0
    for topic, payload in documents:
        try:
            sp_topic, mark, device_marks = _marks(topic, payload, prefix)
        except _Malformed as exc:
            reject(Reason.bad_status, topic, f"retained node status ignored: {exc}", now_ms)
            continue
        if mark is None and not device_marks:
            continue  # online (no marks were made), or offline and born again since its marks
        node = directory.node(sp_topic, str(sp_topic), now_ms, quiet=True)
        if node is None:
            log.info("stale marks of %s not kept: host.max_nodes reached", topic)
            continue
        if mark is not None:
            seeded += _seed(node, mark)
        seeded += _seed_devices(directory, node, device_marks, now_ms)
    if seeded:
        log.info("stale marks of %d edge nodes and devices read back from their retained status", seeded)
    return seeded


def _seed_devices(directory: Directory, node: NodeState, marks: dict[str, int], now_ms: int) -> int:
    seeded = 0
    for device_id, mark in marks.items():
        device = directory.device(node, device_id, f"{node.source}/{device_id}", now_ms, None)  # quiet
        if device is None:
            log.info("stale marks of %s/%s not kept: host.max_devices_per_node reached", node.source, device_id)
            continue
        seeded += _seed(device, mark)
    return seeded

"""The edge nodes and devices the Sparkplug host keeps, found by the topics that name them and made within the bounds.

A topic is parsed once (cached); a node or device is made at its first message (or when a host starting seeds its
stale marks, ``uns.host.seeding``), bound to its equipment path by the plant file or flagged unbound, unless a bound
(``host.max_nodes``, ``host.max_devices_per_node``) refuses it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from model.equipment import Plant
from uns.errors import SparkplugError
from uns.host.bounds import HostBounds
from uns.host.counters import Reason
from uns.host.tables import DeviceState, NodeState
from uns.mqtt.types import Message
from uns.sparkplug import SparkplugTopic

__all__ = ["Directory", "Reject"]

log = logging.getLogger(__name__)

_TOPIC_CACHE_MAX = 100_000

Reject = Callable[[Reason, str, str, int], None]
"""How the host refuses a message: ``reject(reason, topic, detail, now_ms)`` counts and logs it."""


class Directory:
    """Every edge node (and its devices) the host has seen, by (group, node); the topics already parsed."""

    def __init__(
        self, *, plant: Plant, bounds: HostBounds, reject: Reject, status: Callable[[NodeState], Message]
    ) -> None:
        self._plant = plant
        self._bounds = bounds
        self._reject = reject
        self._status = status
        self.nodes: dict[tuple[str, str], NodeState] = {}
        self._topics: dict[str, SparkplugTopic] = {}
        self._unbound: set[str] = set()

    @property
    def unbound(self) -> list[str]:
        """Sparkplug devices and nodes no binding names, as ``group/node[/device]``."""
        return sorted(self._unbound)

    def topic(self, topic: str, now_ms: int) -> SparkplugTopic | None:
        """``topic`` parsed (once: cached), or None (refused as ``bad_topic``)."""
        cached = self._topics.get(topic)
        if cached is not None:
            return cached
        try:
            parsed = SparkplugTopic.from_str(topic)
        except SparkplugError as exc:
            self._reject(Reason.bad_topic, topic, exc.reason, now_ms)
            return None
        if len(self._topics) >= _TOPIC_CACHE_MAX:
            self._topics.clear()
        self._topics[topic] = parsed
        return parsed

    def node(self, topic: SparkplugTopic, raw_topic: str, now_ms: int, *, quiet: bool = False) -> NodeState | None:
        """The edge node ``topic`` names, made at its first message; None if ``host.max_nodes`` refuses it.

        ``quiet``: no message came (seeding), so a refusal is neither counted nor logged as one.
        """
        key = (topic.group_id, topic.edge_node_id)
        node = self.nodes.get(key)
        if node is None:
            refusal = self._bounds.node_refusal(len(self.nodes))
            if refusal is not None:
                if not quiet:
                    self._reject(Reason.too_many_nodes, raw_topic, f"new edge node refused: {refusal}", now_ms)
                return None
            resolved = self._plant.resolve(topic.group_id, topic.edge_node_id, None)
            node = NodeState(
                path=resolved.path,
                bound=resolved.bound,
                source=f"{key[0]}/{key[1]}",
                group_id=key[0],
                edge_node_id=key[1],
            )
            self.nodes[key] = node
            if not resolved.bound:
                self._note_unbound(f"{key[0]}/{key[1]}", resolved.path)
        return node

    def device(
        self, node: NodeState, device_id: str, topic: str, now_ms: int, out: list[Message] | None
    ) -> DeviceState | None:
        """``node``'s device ``device_id``, made at its first message; None if a bound refuses it.

        Past ``host.max_devices_per_node`` the node is degraded: its status goes in ``out`` the first time. ``out``
        None: no message came (seeding), so a refusal is neither counted, logged as one, nor degrades the node.
        """
        device = node.devices.get(device_id)
        if device is None:
            refusal = self._bounds.device_refusal(len(node.devices))
            if refusal is not None:
                if out is not None:
                    self._reject(Reason.too_many_devices, topic, f"new device {device_id!r} refused: {refusal}", now_ms)
                    if "devices" not in node.degraded:
                        node.degraded["devices"] = f"{Reason.too_many_devices.value}: {refusal}"
                        out.append(self._status(node))
                return None
            resolved = self._plant.resolve(node.group_id, node.edge_node_id, device_id)
            device = DeviceState(
                path=resolved.path,
                bound=resolved.bound,
                source=f"{node.source}/{device_id}",
                device_id=device_id,
            )
            node.devices[device_id] = device
            if not resolved.bound:
                self._note_unbound(f"{node.group_id}/{node.edge_node_id}/{device_id}", resolved.path)
        return device

    def _note_unbound(self, name: str, path: str) -> None:
        self._unbound.add(name)
        log.warning("unbound Sparkplug %s: no binding in the plant file; publishing under %s", name, path)

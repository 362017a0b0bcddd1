"""The devices a new NBIRTH left waiting for their DBIRTH, and when the host stops waiting for them.

Sparkplug 3.0 has an edge node publish its devices' DBIRTHs right after its NBIRTH, before any NDATA or
DDATA of the session. So a device that was online when its node's new NBIRTH came, and has no DBIRTH by
the node's first DATA of that session (or the grace, ``host.dbirth_grace_s``, after the NBIRTH, if no DATA
comes), is one the node no longer births: its last values go ``stale``. A device born again in time is never marked: a
rebirth puts no stale mark on the UNS.
"""

from __future__ import annotations

from uns.host.tables import DeviceState, NodeState

__all__ = ["DBIRTH_GRACE_MS", "AwaitedBirths"]

DBIRTH_GRACE_MS = 10_000
"""How long after an NBIRTH with no DATA the host still waits for the DBIRTHs that follow it, by default
(``host.dbirth_grace_s``): a node of many devices, e.g. a large Ignition tag tree, takes seconds to build them;
the first DATA ends the wait sooner."""


class AwaitedBirths:
    """Per edge node, the devices its last NBIRTH awaits a DBIRTH of, and when the wait ends."""

    def __init__(self, grace_ms: int = DBIRTH_GRACE_MS) -> None:
        self._grace_ms = grace_ms
        self._nodes: dict[tuple[str, str], tuple[int, dict[str, DeviceState]]] = {}

    def __bool__(self) -> bool:
        """Whether any node's devices are awaited (the one check a DATA pays while none are)."""
        return bool(self._nodes)

    def expect(self, node: NodeState, now_ms: int) -> None:
        """``node``'s NBIRTH was taken: its devices offline until their DBIRTH; those online until now awaited.

        Devices still awaited since an NBIRTH before stay awaited: the wait restarts with this session.
        """
        key = (node.group_id, node.edge_node_id)
        _, awaited = self._nodes.pop(key, (0, {}))
        for device in node.devices.values():
            if device.online:
                awaited[device.device_id] = device
            device.online = False  # a new node session invalidates device births until their DBIRTH
        if awaited:
            self._nodes[key] = (now_ms + self._grace_ms, awaited)

    def born(self, node: NodeState, device: DeviceState) -> None:
        """``device``'s DBIRTH was taken: no longer awaited."""
        self.died(node, device)

    def died(self, node: NodeState, device: DeviceState) -> bool:
        """``device``'s DDEATH came: no longer awaited. Whether it was (offline, its last values not yet stale)."""
        key = (node.group_id, node.edge_node_id)
        entry = self._nodes.get(key)
        if entry is None or entry[1].pop(device.device_id, None) is None:
            return False
        if not entry[1]:
            del self._nodes[key]
        return True

    def settle(self, node: NodeState) -> list[DeviceState]:
        """The wait for ``node``'s devices is over (its first DATA, its death): those never born again."""
        entry = self._nodes.pop((node.group_id, node.edge_node_id), None)
        return [] if entry is None else list(entry[1].values())

    @property
    def due_ms(self) -> int | None:
        """When the next wait ends without DATA; None if no device is awaited."""
        return min((due_ms for due_ms, _ in self._nodes.values()), default=None)

    def due(self, now_ms: int) -> list[tuple[str, str]]:
        """The nodes whose wait has ended by now (``settle`` them)."""
        return [key for key, (due_ms, _) in self._nodes.items() if due_ms <= now_ms]

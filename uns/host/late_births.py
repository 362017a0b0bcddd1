"""NBIRTHs that come after the NDEATH of their own session, and the rebirth the host asks of their node later.

MQTT orders messages per topic only, so an edge node's will (NDEATH) can overtake a rebirth's NBIRTH that was
in flight when the node died. The NBIRTH names the session the NDEATH ended (the same bdSeq: a reconnect's
will and NBIRTH carry the next one, Sparkplug 3.0
tck-id-message-flow-edge-node-birth-publish-will-message-payload-bdSeq), so it does not bring the node back.
A node that is alive with that bdSeq after all (some edge libraries start again at bdSeq 0 on each restart)
answers the rebirth the host asks once what was in flight has come.
"""

from __future__ import annotations

from uns.host.tables import NodeState

__all__ = ["LATE_BIRTH_REBIRTH_MS", "LateBirths"]

LATE_BIRTH_REBIRTH_MS = 1_000
"""How long after a late NBIRTH the host asks for a rebirth: by then what was in flight at the death has come."""


class LateBirths:
    """The nodes that sent a late NBIRTH, and when to ask each for a rebirth."""

    def __init__(self) -> None:
        self._due: dict[tuple[str, str], int] = {}

    def is_late(self, node: NodeState, bd_seq: int | None) -> bool:
        """Whether an NBIRTH with ``bd_seq`` names a session an NDEATH ended.

        The node's last NDEATH, or one whose bdSeq was not the session's: the will of a connection after it
        (the node connected again and died, its NBIRTH overtaken); while the node was online, the session
        held is over too.
        """
        return bd_seq is not None and bd_seq == node.dead_bd_seq

    def died_offline(self, node: NodeState, bd_seq: int | None) -> None:
        """An NDEATH of ``node`` while offline: one of a connection after the session that ended makes its bdSeq dead.

        That connection may have sent its NBIRTH before it died, and the will overtake it, as on a node online.
        A repeat of the NDEATH handled (the session's bdSeq) changes nothing: once the rebirth after a late NBIRTH
        is asked, an NBIRTH with that bdSeq answers it.
        """
        if bd_seq is not None and bd_seq != node.bd_seq:
            node.dead_bd_seq = bd_seq

    def note(self, node: NodeState, now_ms: int) -> None:
        """A late NBIRTH of ``node``: its rebirth is asked ``LATE_BIRTH_REBIRTH_MS`` after the first one."""
        self._due.setdefault((node.group_id, node.edge_node_id), now_ms + LATE_BIRTH_REBIRTH_MS)

    def waiting(self, node: NodeState) -> bool:
        """Whether ``node``'s rebirth is still to be asked (its DATA now is what was in flight at its death)."""
        return (node.group_id, node.edge_node_id) in self._due

    def born(self, node: NodeState) -> None:
        """``node`` was born (a new bdSeq, or the answer to the rebirth): nothing left to ask or refuse."""
        self._due.pop((node.group_id, node.edge_node_id), None)
        node.dead_bd_seq = None

    @property
    def due_ms(self) -> int | None:
        """When the next rebirth is to be asked; None if none is."""
        return min(self._due.values(), default=None)

    def due(self, now_ms: int) -> list[tuple[str, str]]:
        """The nodes to ask for a rebirth by now; from now on an NBIRTH with their dead bdSeq is that answer."""
        if not self._due:
            return []
        keys = [key for key, due_ms in self._due.items() if due_ms <= now_ms]
        for key in keys:
            del self._due[key]
        return keys

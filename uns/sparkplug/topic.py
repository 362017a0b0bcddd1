"""Sparkplug B topic names: parse ``spBv1.0/<group>/<type>/<edge node>[/<device>]`` and format them back."""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from typing import Self

from uns.errors import SparkplugError

__all__ = ["NAMESPACE", "MessageType", "SparkplugTopic"]

NAMESPACE = "spBv1.0"
"""The first topic level of every Sparkplug B message."""

_RESERVED = ("+", "#", "/")


class MessageType(StrEnum):
    """The Sparkplug ``message_type`` topic level (the specification's "verbs")."""

    NBIRTH = "NBIRTH"
    NDATA = "NDATA"
    NDEATH = "NDEATH"
    NCMD = "NCMD"
    DBIRTH = "DBIRTH"
    DDATA = "DDATA"
    DDEATH = "DDEATH"
    DCMD = "DCMD"
    STATE = "STATE"


_BY_NAME = {t.value: t for t in MessageType}
_DEVICE_TYPES = frozenset({MessageType.DBIRTH, MessageType.DDATA, MessageType.DDEATH, MessageType.DCMD})
_BIRTHS = frozenset({MessageType.NBIRTH, MessageType.DBIRTH})
_DEATHS = frozenset({MessageType.NDEATH, MessageType.DDEATH})
_DATA = frozenset({MessageType.NDATA, MessageType.DDATA})
_COMMANDS = frozenset({MessageType.NCMD, MessageType.DCMD})


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SparkplugTopic:
    """One parsed Sparkplug topic; ``str()`` gives the topic back.

    A Host Application's ``spBv1.0/STATE/<host_id>`` is represented with
    ``message_type=MessageType.STATE``, ``group_id=""`` and ``edge_node_id=<host_id>``
    (also readable as :attr:`host_id`); build one with :meth:`state`. Because of that
    form, ``STATE`` cannot be used as a group id.

    Raises:
        SparkplugError: on construction, when an id is empty or holds ``+``, ``#`` or ``/``,
            a device id is missing on a D* type or present on an N* or STATE type.
    """

    group_id: str
    message_type: MessageType
    edge_node_id: str
    device_id: str | None = None

    def __post_init__(self) -> None:
        # Accept the plain string "NBIRTH" too, but store the enum member.
        member = _BY_NAME.get(str(self.message_type))
        if member is not None:
            object.__setattr__(self, "message_type", member)
        reason = self._invalid()
        if reason is not None:
            raise SparkplugError(self._draft(), reason)

    @classmethod
    def state(cls, host_id: str) -> Self:
        """The STATE topic of the Host Application ``host_id``."""
        return cls(group_id="", message_type=MessageType.STATE, edge_node_id=host_id)

    @classmethod
    def from_str(cls, topic: str) -> Self:
        """Parse a topic name.

        Raises:
            SparkplugError: naming what is wrong: the namespace, an unknown message type,
                a missing or unexpected device id, extra levels, an empty id.
        """
        levels = topic.split("/")
        if levels[0] != NAMESPACE:
            raise SparkplugError(topic, f"not a Sparkplug B topic: the first level must be {NAMESPACE!r}")
        if len(levels) >= 2 and levels[1] == MessageType.STATE:
            if len(levels) != 3:
                raise SparkplugError(topic, f"a STATE topic is {NAMESPACE}/STATE/<host_id>, got {len(levels)} levels")
            return cls._parsed(topic, group_id="", message_type=MessageType.STATE, edge_node_id=levels[2])
        if len(levels) < 4:
            raise SparkplugError(
                topic, f"expected {NAMESPACE}/<group>/<message type>/<edge node>[/<device>], got {len(levels)} levels"
            )
        message_type = _BY_NAME.get(levels[2])
        if message_type is None:
            known = ", ".join(_BY_NAME)
            raise SparkplugError(topic, f"unknown message type {levels[2]!r}; expected one of {known}")
        wanted = 5 if message_type in _DEVICE_TYPES else 4
        if len(levels) < wanted:
            raise SparkplugError(
                topic, f"{message_type} needs a device id: {NAMESPACE}/<group>/{message_type}/<node>/<device>"
            )
        if len(levels) > wanted:
            what = "extra levels after the device id" if wanted == 5 else f"{message_type} takes no device id"
            raise SparkplugError(topic, f"{what} ({len(levels)} levels, expected {wanted})")
        return cls._parsed(
            topic,
            group_id=levels[1],
            message_type=message_type,
            edge_node_id=levels[3],
            device_id=levels[4] if wanted == 5 else None,
        )

    @classmethod
    def _parsed(
        cls, topic: str, *, group_id: str, message_type: MessageType, edge_node_id: str, device_id: str | None = None
    ) -> Self:
        # Re-raise construction errors against the text we were given, not our reformatting of it.
        try:
            return cls(group_id=group_id, message_type=message_type, edge_node_id=edge_node_id, device_id=device_id)
        except SparkplugError as exc:
            raise SparkplugError(topic, exc.reason) from None

    def __str__(self) -> str:
        if self.message_type is MessageType.STATE:
            return f"{NAMESPACE}/STATE/{self.edge_node_id}"
        if self.device_id is None:
            return f"{NAMESPACE}/{self.group_id}/{self.message_type}/{self.edge_node_id}"
        return f"{NAMESPACE}/{self.group_id}/{self.message_type}/{self.edge_node_id}/{self.device_id}"

    @property
    def host_id(self) -> str | None:
        """The Host Application id of a STATE topic, else None."""
        return self.edge_node_id if self.message_type is MessageType.STATE else None

    @property
    def is_device(self) -> bool:
        """True for DBIRTH, DDATA, DDEATH and DCMD."""
        return self.message_type in _DEVICE_TYPES

    @property
    def is_birth(self) -> bool:
        """True for NBIRTH and DBIRTH."""
        return self.message_type in _BIRTHS

    @property
    def is_death(self) -> bool:
        """True for NDEATH and DDEATH."""
        return self.message_type in _DEATHS

    @property
    def is_data(self) -> bool:
        """True for NDATA and DDATA."""
        return self.message_type in _DATA

    @property
    def is_command(self) -> bool:
        """True for NCMD and DCMD."""
        return self.message_type in _COMMANDS

    def _invalid(self) -> str | None:
        """Why these fields make no valid topic, or None."""
        message_type = self.message_type
        if message_type not in _BY_NAME.values():
            return f"unknown message type {message_type!r}"
        if message_type is MessageType.STATE:
            if self.group_id:
                return "a STATE topic has no group id"
            if self.device_id is not None:
                return "a STATE topic has no device id"
            ids = [("host id", self.edge_node_id)]
        else:
            if message_type in _DEVICE_TYPES and self.device_id is None:
                return f"{message_type} needs a device id"
            if message_type not in _DEVICE_TYPES and self.device_id is not None:
                return f"{message_type} takes no device id"
            if self.group_id == MessageType.STATE:
                return "group id 'STATE' is reserved for Host Application STATE topics"
            ids = [("group id", self.group_id), ("edge node id", self.edge_node_id)]
            if self.device_id is not None:
                ids.append(("device id", self.device_id))
        for what, value in ids:
            if not value:
                return f"{what} is empty"
            for char in _RESERVED:
                if char in value:
                    return f"{what} {value!r} contains {char!r}, which Sparkplug reserves"
        return None

    def _draft(self) -> str:
        """Best-effort topic text for an error about fields that failed validation."""
        parts = [NAMESPACE, self.group_id, str(self.message_type), self.edge_node_id]
        if self.device_id is not None:
            parts.append(self.device_id)
        return "/".join(parts)

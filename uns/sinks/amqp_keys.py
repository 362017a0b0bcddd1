"""UNS topics as AMQP routing keys and back: '/' becomes '.', and what a routing key cannot hold is escaped.

A topic-exchange routing key is words separated by '.', at most 255 bytes. A '.' inside a topic
level would split it into two words, and '*' and '#' are the binding keys' wildcards, so inside a
level ``%``, ``.``, ``*`` and ``#`` are written ``%25``, ``%2E``, ``%2A`` and ``%23`` (percent
encoding, ``%`` first so the mapping round-trips). A topic whose key would exceed 255 bytes cannot
be sent: ``routing_key`` raises ``ValueError`` naming the length.
"""

from __future__ import annotations

import re

__all__ = ["MAX_KEY_BYTES", "routing_key", "topic_of"]

MAX_KEY_BYTES = 255
"""AMQP 0-9-1's shortstr: the longest routing key."""

_ESCAPE = {"%": "%25", ".": "%2E", "*": "%2A", "#": "%23"}
_NEEDS = re.compile(r"[%.*#]")
_ESCAPED = re.compile(r"%(25|2E|2A|23)")
_UNESCAPE = {code[1:]: char for char, code in _ESCAPE.items()}


def routing_key(topic: str) -> str:
    """The routing key of a UNS topic: ``acme/dallas/l1/data/Temp.1`` -> ``acme.dallas.l1.data.Temp%2E1``."""
    key = ".".join(_NEEDS.sub(lambda m: _ESCAPE[m.group()], level) for level in topic.split("/"))
    size = len(key.encode())
    if size > MAX_KEY_BYTES:
        raise ValueError(f"the routing key would be {size} bytes; AMQP allows {MAX_KEY_BYTES}")
    return key


def topic_of(key: str) -> str:
    """The UNS topic a routing key was made from (the inverse of ``routing_key``)."""
    return "/".join(_ESCAPED.sub(lambda m: _UNESCAPE[m.group(1)], word) for word in key.split("."))

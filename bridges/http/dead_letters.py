"""The connector's dead letters: items that did not map, one JSON line each, beside its poll state."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson

from bridges.http.mapping import MappingError
from uns.clock import now_ms

__all__ = ["DeadLetters"]

log = logging.getLogger(__name__)


class DeadLetters:
    """Appends ``{received_ms, connector, key, path, reason, item}`` lines to ``dead_letters.jsonl``.

    Past ``max_bytes`` the file moves to ``dead_letters.jsonl.1`` (the one before is dropped), so a
    flood of bad items cannot fill the disk. Every refusal is counted, written or not.
    """

    def __init__(self, *, directory: Path, max_bytes: int = 16 * 1024 * 1024) -> None:
        self.path = directory / "dead_letters.jsonl"
        self._max_bytes = max_bytes
        self.count = 0

    def add(self, error: MappingError, item: object) -> None:
        """Record one refused item (the item as received, for a replay by hand)."""
        self.count += 1
        line = orjson.dumps(
            {
                "received_ms": now_ms(),
                "connector": error.connector,
                "key": error.key,
                "path": error.path,
                "reason": error.reason,
                "item": item,
            },
            default=str,
        )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists() and self.path.stat().st_size + len(line) > self._max_bytes:
                self.path.replace(self.path.with_name(self.path.name + ".1"))
            with self.path.open("ab") as file:
                file.write(line + b"\n")
        except OSError as exc:
            log.error("http %s: dead letter not written to %s: %s", error.connector, self.path, exc)

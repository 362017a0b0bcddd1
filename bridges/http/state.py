"""The poll state kept across restarts (ETag, Last-Modified, cursor), written atomically."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Self

import orjson

__all__ = ["PollState"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class PollState:
    """What the next poll sends so the API answers only what is new."""

    etag: str | None = None
    last_modified: str | None = None
    cursor: str | None = None

    @classmethod
    def load(cls, path: Path) -> Self:
        """The saved state; empty if there is none or it cannot be read (a full poll then, never a lost item)."""
        try:
            data = orjson.loads(path.read_bytes())
            return cls(**{field: data.get(field) for field in ("etag", "last_modified", "cursor")})
        except FileNotFoundError:
            return cls()
        except (OSError, orjson.JSONDecodeError, TypeError, AttributeError) as exc:
            log.warning("http state %s unreadable (%s): polling from the start", path, exc)
            return cls()

    def save(self, path: Path) -> None:
        """Write to a temporary file, fsync, rename: a crash leaves the old state or the new one, never half."""
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        with temporary.open("wb") as file:
            file.write(orjson.dumps(dataclasses.asdict(self)))
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(path)

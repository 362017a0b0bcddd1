"""The poll state kept across restarts (ETag and Last-Modified per page, the cursor), written atomically."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Self

import orjson

from uns.files import replace_file

__all__ = ["PollState", "Validators"]

Validators = tuple[str | None, str | None]
"""A page's ``ETag`` and ``Last-Modified``, sent back as ``If-None-Match`` and ``If-Modified-Since``."""

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class PollState:
    """What the next poll sends so the API answers only what is new."""

    validators: Mapping[str, Validators] = dataclasses.field(default_factory=dict)
    """Per request URL (with its query): the validators of its last answer."""
    cursor: str | None = None

    @classmethod
    def load(cls, path: Path) -> Self:
        """The saved state; empty if there is none or it cannot be read (a full poll then, never a lost item)."""
        try:
            data = orjson.loads(path.read_bytes())
            validators = {str(url): (pair[0], pair[1]) for url, pair in data.get("validators", {}).items()}
            if not all(isinstance(v, str | None) for pair in validators.values() for v in pair):
                raise TypeError("validators must be strings or null")
            cursor = data.get("cursor")
            if not isinstance(cursor, str | None):
                raise TypeError("cursor must be a string or null")
            return cls(validators=validators, cursor=cursor)
        except FileNotFoundError:
            return cls()
        except (OSError, orjson.JSONDecodeError, TypeError, AttributeError, IndexError, KeyError) as exc:
            log.warning("http state %s unreadable (%s): polling from the start", path, exc)
            return cls()

    def save(self, path: Path) -> None:
        """Write to a temporary file, fsync, rename: a crash leaves the old state or the new one, never half."""
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_file(path, orjson.dumps({"validators": dict(self.validators), "cursor": self.cursor}), fsync=True)

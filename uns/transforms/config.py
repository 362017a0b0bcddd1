"""Reading the ``transforms:`` of a settings file, and what a new version would change.

``uns transforms check FILE`` and a reload (SIGHUP to ``uns up``) both read the file's
``transforms:`` key alone, validate it as ``uns up`` does, and compare it with the running tags,
which the hub keeps in ``<data_dir>/transforms-running.json``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import orjson
from pydantic import TypeAdapter, ValidationError

from model.transforms import ComputedTag
from uns.config_file import read_list_section
from uns.errors import ConfigError
from uns.files import replace_file

__all__ = [
    "RUNNING_FILE",
    "TagDiff",
    "diff_by",
    "diff_tags",
    "read_running",
    "read_transforms",
    "with_builtin",
    "write_running",
]

RUNNING_FILE = "transforms-running.json"
"""The running tags, written by the hub under its data_dir at start and after each reload."""

_TAGS = TypeAdapter(list[ComputedTag])
_T = TypeVar("_T")


@dataclasses.dataclass(frozen=True)
class TagDiff:
    """What a new version changes, by output topic."""

    added: list[str]
    removed: list[str]
    changed: list[str]

    def lines(self) -> list[str]:
        """One line per tag, ``+ added``, ``- removed``, ``~ changed``; or ``no change``."""
        out = [f"+ {t}" for t in self.added] + [f"- {t}" for t in self.removed] + [f"~ {t}" for t in self.changed]
        return out or ["no change"]


def diff_by(old: Sequence[_T], new: Sequence[_T], key: Callable[[_T], str]) -> TagDiff:
    """Items added, removed and changed (any field) from ``old`` to ``new``, named by ``key``: a reload's answer."""
    before = {key(item): item for item in old}
    after = {key(item): item for item in new}
    return TagDiff(
        added=sorted(set(after) - set(before)),
        removed=sorted(set(before) - set(after)),
        changed=sorted(k for k in set(before) & set(after) if before[k] != after[k]),
    )


def diff_tags(old: Sequence[ComputedTag], new: Sequence[ComputedTag]) -> TagDiff:
    """Tags added, removed and changed (any field) from ``old`` to ``new``, by output topic."""
    return diff_by(old, new, lambda tag: tag.topic)


def with_builtin(tags: Sequence[ComputedTag], builtin: Sequence[ComputedTag]) -> list[ComputedTag]:
    """``tags`` and every built-in tag they do not replace (a tag of the same output topic replaces it)."""
    mine = {tag.topic for tag in tags}
    return [*tags, *(tag for tag in builtin if tag.topic not in mine)]


def read_transforms(path: Path) -> list[ComputedTag]:
    """The ``transforms:`` of a settings file (none when the key is absent).

    Raises:
        ConfigError: the file cannot be read, or names each invalid field (``transforms[2].inputs``).
    """
    return read_list_section(path, "transforms", _TAGS, "give the settings file with the transforms: to check")


def write_running(data_dir: Path, tags: Sequence[ComputedTag]) -> None:
    """Record the running tags (replaced atomically) for ``uns transforms check``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    replace_file(
        data_dir / RUNNING_FILE, orjson.dumps(_TAGS.dump_python(list(tags), mode="json"), option=orjson.OPT_INDENT_2)
    )


def read_running(data_dir: Path) -> list[ComputedTag] | None:
    """The tags the hub recorded as running, or None when it never ran here."""
    path = data_dir / RUNNING_FILE
    try:
        return _TAGS.validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValidationError as exc:
        reason = f"not a list of computed tags ({exc.error_count()} problems): delete it, the hub rewrites it"
        raise ConfigError(source=str(path), path="", reason=reason) from None

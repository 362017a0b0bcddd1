"""The hub's versioned store of each agent's desired configuration: one JSON file per version.

Files, not the historian's DuckDB: DuckDB has one writer (the historian's process), and ``uns fleet``
must deploy while the hub runs; a few kilobytes per version read back as plain, diffable JSON.
Layout: ``<data_dir>/fleet/<agent>/<version>.json``, each a ``DesiredVersion``. Versions only grow: a
rollback is a new version with an old version's content.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

import yaml
from pydantic import ValidationError

from model.fleet import AgentConfig, DesiredVersion
from uns.clock import now_ms
from uns.config_file import config_error, validation_problems
from uns.errors import ConfigError

__all__ = ["FleetStore", "config_hash", "validate_agent_config"]


def config_hash(config: Mapping[str, object]) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces) of an agent configuration."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def validate_agent_config(config: Mapping[str, object], source: str) -> AgentConfig:
    """The validated ``AgentConfig``; a ``ConfigError`` listing every problem (source, dotted path, value)."""
    try:
        return AgentConfig.model_validate(dict(config))
    except ValidationError as exc:
        raise config_error(validation_problems(exc, lambda _loc: source, config)) from None


class FleetStore:
    """Desired versions of every agent under ``directory`` (``<data_dir>/fleet``)."""

    def __init__(self, *, directory: Path) -> None:
        self._dir = directory

    def agents(self) -> list[str]:
        """Agent ids with at least one version."""
        if not self._dir.is_dir():
            return []
        return sorted(p.name for p in self._dir.iterdir() if p.is_dir() and any(p.glob("*.json")))

    def versions(self, agent: str) -> list[DesiredVersion]:
        """Every version of ``agent``, oldest first."""
        folder = self._dir / agent
        if not folder.is_dir():
            return []
        numbers = sorted(int(p.stem) for p in folder.glob("*.json") if p.stem.isdigit())
        return [self.get(agent, number) for number in numbers]

    def latest(self, agent: str) -> DesiredVersion | None:
        """The newest version (the desired one), None before the first deploy."""
        found = self.versions(agent)
        return found[-1] if found else None

    def get(self, agent: str, version: int) -> DesiredVersion:
        """One stored version; ``ConfigError`` naming it when it does not exist."""
        path = self._dir / agent / f"{version}.json"
        try:
            return DesiredVersion.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            raise ConfigError(
                source=f"fleet/{agent}", path="version", value=version, reason="no such version"
            ) from None

    def deploy(
        self, agent: str, config: Mapping[str, object], *, author: str, note: str = "", validate: bool = True
    ) -> DesiredVersion:
        """Store ``config`` as ``agent``'s next version (validated first unless ``validate`` is False)."""
        if validate:
            validate_agent_config(config, f"fleet/{agent}")
        previous = self.latest(agent)
        version = DesiredVersion(
            agent=agent,
            version=1 if previous is None else previous.version + 1,
            hash=config_hash(config),
            author=author,
            time_ms=now_ms(),
            note=note,
            config=dict(config),
        )
        folder = self._dir / agent
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{version.version}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(version.model_dump_json(indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, path)  # a reader never sees half a version
        return version

    def rollback(self, agent: str, to: int, *, author: str, note: str = "") -> DesiredVersion:
        """A new version carrying version ``to``'s content."""
        old = self.get(agent, to)
        return self.deploy(agent, old.config, author=author, note=note or f"rollback to {to}", validate=False)

    def diff(self, agent: str, old: int, new: int) -> str:
        """A unified diff of two versions' configurations, as YAML."""
        a, b = self.get(agent, old), self.get(agent, new)
        return "".join(
            difflib.unified_diff(
                _yaml_lines(a.config), _yaml_lines(b.config), fromfile=f"{agent} v{old}", tofile=f"{agent} v{new}"
            )
        )


def _yaml_lines(config: Mapping[str, object]) -> list[str]:
    text: str = yaml.safe_dump(dict(config), sort_keys=True, default_flow_style=False)
    return text.splitlines(keepends=True)

"""The hub's versioned store of each agent's desired configuration: one JSON file per version.

Files, not the historian's DuckDB: DuckDB has one writer (the historian's process), and ``uns fleet``
must deploy while the hub runs; a few kilobytes per version read back as plain, diffable JSON.
Layout: ``<data_dir>/fleet/<agent>/<version>.json``, each a ``DesiredVersion``, and the agent's labels
(``site``, ``line``, ...) in ``<data_dir>/fleet/<agent>/labels.json``. Versions only grow: a
rollback is a new version with an old version's content.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import yaml
from pydantic import ValidationError

from model.fleet import AgentConfig, DesiredVersion
from uns.clock import now_ms
from uns.config_file import config_error, validation_problems
from uns.errors import ConfigError
from uns.files import replace_file

__all__ = ["AGENT_VARIABLE", "FleetStore", "config_hash", "validate_agent_config"]

AGENT_VARIABLE = "${agent}"
"""Replaced by the agent id in every string of a deployed config."""

_LABELS = "labels.json"


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


def _check_new(config: Mapping[str, object], source: str) -> None:
    """Refuse a new version that is not a valid agent config or does not name its bridges.

    An empty file or ``{}`` deployed (with ``--all``, to every agent) would stop every bridge; ``bridges: []``
    says so on purpose. Only new versions are held to it: an agent still takes a stored version without the key.
    """
    if "bridges" not in config:
        raise ConfigError(
            source=source, path="bridges", reason="missing: list the agent's bridges (bridges: [] stops them all)"
        )
    validate_agent_config(config, source)


class FleetStore:
    """Desired versions of every agent under ``directory`` (``<data_dir>/fleet``)."""

    def __init__(self, *, directory: Path) -> None:
        self._dir = directory

    @property
    def directory(self) -> Path:
        """Where the versions live (``<data_dir>/fleet``)."""
        return self._dir

    def agents(self) -> list[str]:
        """Agent ids with at least one version."""
        if not self._dir.is_dir():
            return []
        return sorted(p.name for p in self._dir.iterdir() if p.is_dir() and any(p.glob("*.json")))

    def labels(self, agent: str) -> dict[str, str]:
        """The agent's labels (``{"site": "dallas", "line": "line1"}``); empty when it has none."""
        try:
            found = json.loads((self._dir / agent / _LABELS).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return {str(key): str(value) for key, value in found.items()}

    def set_labels(self, agent: str, labels: Mapping[str, str]) -> None:
        """Merge ``labels`` into the agent's (an empty value removes that label)."""
        merged = {**self.labels(agent), **labels}
        merged = {key: value for key, value in sorted(merged.items()) if value}
        folder = self._dir / agent
        folder.mkdir(parents=True, exist_ok=True)
        _write(folder / _LABELS, json.dumps(merged, indent=2) + "\n")

    def select(self, labels: Mapping[str, str]) -> list[str]:
        """Agents carrying every one of ``labels`` (all agents when ``labels`` is empty)."""
        return [a for a in self.agents() if all(self.labels(a).get(k) == v for k, v in labels.items())]

    def versions(self, agent: str) -> list[DesiredVersion]:
        """Every version of ``agent``, oldest first."""
        folder = self._dir / agent
        if not folder.is_dir():
            return []
        numbers = sorted(int(p.stem) for p in folder.glob("*.json") if p.stem.isdigit())
        return [self.get(agent, number) for number in numbers]

    def latest(self, agent: str) -> DesiredVersion | None:
        """The newest version (the desired one), None before the first deploy."""
        folder = self._dir / agent
        numbers = [int(p.stem) for p in folder.glob("*.json") if p.stem.isdigit()] if folder.is_dir() else []
        return self.get(agent, max(numbers)) if numbers else None  # one file read: the Edges page asks often

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
        """Store ``config`` as ``agent``'s next version (validated first unless ``validate`` is False).

        ``${agent}`` in any string of ``config`` becomes the agent id first, so one file deployed to many
        agents gives each its own edge node ids (``name: press-${agent}``).
        """
        config = _resolve(config, agent)
        if validate:
            _check_new(config, f"fleet/{agent}")
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
        _write(folder / f"{version.version}.json", version.model_dump_json(indent=2) + "\n")
        return version

    def rollback(self, agent: str, to: int, *, author: str, note: str = "") -> DesiredVersion:
        """A new version carrying version ``to``'s content."""
        old = self.get(agent, to)
        return self.deploy(agent, old.config, author=author, note=note or f"rollback to {to}", validate=False)

    def diff(self, agent: str, old: int, new: int) -> str:
        """A unified diff of two versions' configurations, as YAML."""
        a, b = self.get(agent, old), self.get(agent, new)
        return _diff(a.config, b.config, f"{agent} v{old}", f"{agent} v{new}")

    def preview(self, agent: str, config: Mapping[str, object]) -> str:
        """The diff from ``agent``'s desired version to ``config`` as ``deploy`` would store it (validated first)."""
        config = _resolve(config, agent)
        _check_new(config, f"fleet/{agent}")
        latest = self.latest(agent)
        before = f"{agent} v{latest.version}" if latest else f"{agent} (no version)"
        return _diff(latest.config if latest else {}, config, before, f"{agent} (new)")


def _resolve(config: Mapping[str, object], agent: str) -> dict[str, object]:
    def walk(value: object) -> object:
        if isinstance(value, str):
            return value.replace(AGENT_VARIABLE, agent)
        if isinstance(value, Mapping):
            return {key: walk(item) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    return {key: walk(value) for key, value in config.items()}


def _write(path: Path, text: str) -> None:
    replace_file(path, text)  # a reader never sees half a file


def _diff(old: Mapping[str, object], new: Mapping[str, object], before: str, after: str) -> str:
    return "".join(difflib.unified_diff(_yaml_lines(old), _yaml_lines(new), fromfile=before, tofile=after))


def _yaml_lines(config: Mapping[str, object]) -> list[str]:
    text: str = yaml.safe_dump(dict(config), sort_keys=True, default_flow_style=False)
    return text.splitlines(keepends=True)

"""The rules as a part of ``uns up``: the engine, the alarm history writer, health and reload.

``reload`` checks a new rule set against the plant and swaps it in without a restart, answering what
changed (``+ added``, ``- removed``, ``~ changed``); an invalid set is refused with every problem
named, and the running one stays. ``reload_file`` does the same from the settings file's ``rules:``
key, the way the computed tags reload their ``transforms:``: SIGHUP to ``uns up`` calls both (one handler in
``hub/app.py``, asyncio keeping one per signal), and so does ``POST /api/rules/reload`` for the rules alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import duckdb
from pydantic import TypeAdapter

from model.config import Settings
from model.equipment import Plant
from model.rules import Rule
from uns.broker.acl import AclPolicy
from uns.config_file import read_list_section
from uns.connect import ClientFactory
from uns.errors import ConfigError
from uns.health import publish_health
from uns.host.core import hub_topic
from uns.rules.alarms import Alarm
from uns.rules.check import check_rules, plant_targets
from uns.rules.engine import RuleEngine
from uns.rules.history import insert_alarms
from uns.transforms.config import TagDiff, diff_by

__all__ = ["RuleService", "diff_rules", "read_rules", "starting_rules"]

log = logging.getLogger(__name__)

_RULES = TypeAdapter(list[Rule])
_FLUSH_S = 0.5
_HINT = "give the settings file with the rules: to load"

Writer = Callable[[Callable[[duckdb.DuckDBPyConnection], None]], Awaitable[None]]


def diff_rules(old: Sequence[Rule], new: Sequence[Rule]) -> TagDiff:
    """Rules added, removed and changed (any field) from ``old`` to ``new``, by name (the computed tags' diff)."""
    return diff_by(old, new, lambda rule: rule.name)


def read_rules(path: Path, *, builtin: Sequence[Rule] = ()) -> list[Rule]:
    """The ``rules:`` of a settings file; ``builtin`` when it has no such key (``rules: []`` is none), as at start.

    Raises:
        ConfigError: the file cannot be read, or names each invalid field (``rules[2].trigger.above``).
    """
    return read_list_section(path, "rules", _RULES, _HINT, missing=builtin)


def starting_rules(settings: Settings, builtin: Sequence[Rule]) -> list[Rule]:
    """The rules ``uns up`` starts with: the settings' ``rules:``, or ``builtin`` when no source gives the key.

    The rule ``read_rules`` applies on a reload: an explicit ``rules: []`` means no rules both times.
    """
    return list(settings.rules) if "rules" in settings.model_fields_set else list(builtin)


class RuleService:
    """The rule engine under ``uns up``.

    Args:
        rules: the settings' rules (checked here: a bad set refuses the start).
        plant: the plant file (paths, bindings, the first site's time zone).
        clients: opens the engine's MQTT client.
        acl: the broker's role rules (the write action's role check).
        builtin: what a reload runs when the file has no ``rules:`` key, as at start (the demo's).
        writer: runs a function on the store's one writer thread (None: no alarm history).
        health_interval_s: how often ``<enterprise>/hub/rules/health`` is published (retained).
    """

    name = "rules"

    def __init__(
        self,
        *,
        rules: Sequence[Rule],
        plant: Plant,
        clients: ClientFactory,
        acl: AclPolicy,
        builtin: Sequence[Rule] = (),
        writer: Writer | None = None,
        health_interval_s: float = 10.0,
    ) -> None:
        check_rules(rules, plant)
        self.health_topic = hub_topic(plant.enterprise.id, "rules", "health")
        self._health_interval_s = health_interval_s
        sites = plant.enterprise.sites
        self._plant = plant
        self._builtin = list(builtin)
        self._writer = writer
        self._pending: list[Alarm] = []
        self._alarmed = asyncio.Event()  # the history loop sleeps until an alarm changes
        self.reloads = 0
        self.reload_failures = 0
        self.last_reload_error: str | None = None
        self.history_failures = 0
        self.engine = RuleEngine(
            rules=rules,
            clients=clients,
            targets=plant_targets(plant),
            acl=acl,
            timezone=sites[0].timezone if sites else "UTC",
            on_alarm=self._on_alarm,
        )
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> Self:
        await self.engine.__aenter__()
        log.info("rules: %d running", len(self.engine.rules))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with contextlib.suppress(Exception):  # the last changes, best effort: the retained topics hold them too
            await self._flush()
        await self.engine.__aexit__(exc_type, exc, tb)

    async def run(self) -> None:
        """The engine and the history writer, until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.engine.run(), name="uns.rules.engine")
            tasks.create_task(
                publish_health(self.engine, self.health_topic, self.health, interval_s=self._health_interval_s),
                name="uns.rules.health",
            )
            if self._writer is not None:
                tasks.create_task(self._history_loop(), name="uns.rules.history")

    async def reload(self, rules: Sequence[Rule]) -> TagDiff:
        """Check and swap in ``rules``; raises ``RulesRefused`` (every problem) and keeps the running set."""
        async with self._lock:
            try:
                check_rules(rules, self._plant)
            except ConfigError as exc:
                self.reload_failures += 1
                self.last_reload_error = str(exc)
                log.warning("rules: reload refused, the running rules stay: %s", exc)
                raise
            diff = diff_rules(self.engine.rules, rules)
            await self.engine.replace(rules)
            self.reloads += 1
            self.last_reload_error = None
        log.info("rules reloaded: %s", ", ".join(diff.lines()))
        return diff

    def preview_file(self, path: Path) -> TagDiff:
        """What ``reload_file`` would change, applying nothing; raises ``ConfigError`` naming every problem."""
        rules = read_rules(path, builtin=self._builtin)
        check_rules(rules, self._plant)
        return diff_rules(self.engine.rules, rules)

    async def reload_file(self, path: Path) -> TagDiff:
        """``reload`` from the settings file's ``rules:``."""
        try:
            rules = read_rules(path, builtin=self._builtin)
        except ConfigError as exc:
            self.reload_failures += 1
            self.last_reload_error = str(exc)
            log.warning("rules: reload refused, the running rules stay: %s", exc)
            raise
        return await self.reload(rules)

    def health(self) -> dict[str, object]:
        """Reloads, alarms not normal, and each rule's counters."""
        return {
            "rules": len(self.engine.rules),
            "reloads": self.reloads,
            "reload_failures": self.reload_failures,
            "last_reload_error": self.last_reload_error,
            "alarms": len(self.engine.alarms),
            "history_failures": self.history_failures,
            "per_rule": {name: stats.to_json() for name, stats in self.engine.stats().items()},
        }

    def _on_alarm(self, alarm: Alarm) -> None:
        self._pending.append(alarm)
        self._alarmed.set()

    async def _history_loop(self) -> None:
        while True:
            await self._alarmed.wait()
            await asyncio.sleep(_FLUSH_S)  # the changes of the next half second go in the same insert
            self._alarmed.clear()
            try:
                await self._flush()
            except duckdb.Error as exc:
                self.history_failures += 1
                self._alarmed.set()
                log.warning("rules: alarm history not written (kept for the next try): %s", exc)

    async def _flush(self) -> None:
        if self._writer is None or not self._pending:
            return
        batch = list(self._pending)
        await self._writer(lambda connection: insert_alarms(connection, batch))
        del self._pending[: len(batch)]

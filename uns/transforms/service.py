"""The computed tags' async shell: subscribe to the inputs, run the engine, publish results and health.

Runs in ``uns up`` as MQTT client ``uns-transforms``. ``reload`` swaps in a new set of tags without
a restart, keeping the state of the unchanged ones; ``reload_file`` reads the settings file's ``transforms:``
(``uns up --config`` calls it on SIGHUP, ``hub.app``) and keeps the running version when the new one is invalid.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from model.equipment import Plant
from model.transforms import ComputedTag
from uns.clock import now_ms
from uns.connect import ClientFactory
from uns.errors import ConfigError, UnsError
from uns.health import publish_health
from uns.host.core import hub_topic
from uns.mqtt.types import Message, PubSub
from uns.transforms.config import TagDiff, diff_tags, read_transforms, with_builtin, write_running
from uns.transforms.engine import Engine
from uns.transforms.plan import TagPlan, plan_tags

__all__ = ["ComputedTags"]

log = logging.getLogger(__name__)

_CLIENT_ID = "uns-transforms"
_OFFLINE = b'{"online": false}'


class ComputedTags:
    """The running computed tags of one hub.

    Args:
        tags: the computed tags of the settings (checked against ``plant`` here: ``ConfigError``).
        builtin: tags a reload keeps unless the file has a tag of the same topic (the demo's).
        plant: the plant file, whose equipment and units the tags are checked against.
        clients: how to get the MQTT client.
        enterprise: first level of the health topic ``<enterprise>/hub/transforms/health``.
        health_interval_s: how often health is published (retained).
        qos: QoS of the results (retained ``data`` envelopes).
        clock: milliseconds since the epoch, stamping an input envelope sent without ``timestamp_ms``.
        data_dir: where the running tags are recorded for ``uns transforms check`` (None: nowhere).
    """

    name = "transforms"

    def __init__(
        self,
        *,
        tags: Sequence[ComputedTag],
        builtin: Sequence[ComputedTag] = (),
        plant: Plant | None,
        clients: ClientFactory,
        enterprise: str,
        health_interval_s: float = 10.0,
        qos: int = 1,
        clock: Callable[[], int] = now_ms,
        data_dir: Path | None = None,
    ) -> None:
        self._plant = plant
        self._tags = list(tags)
        self._builtin = list(builtin)
        self._engine = Engine(plan_tags(self._tags, plant=plant))
        self._data_dir = data_dir
        self._reload_failures = 0
        self._last_reload_error: str | None = None
        self._clients = clients
        self.health_topic = hub_topic(enterprise, "transforms", "health")
        self._health_interval_s = health_interval_s
        self._qos = qos
        self._clock = clock
        self._client: PubSub | None = None
        self._stack = contextlib.AsyncExitStack()
        self._last: dict[str, bytes] = {}  # each input topic's last payload: fills tags added by a reload
        self._reloads = 0
        self._subscribed: set[str] = set()
        self._reload_lock = asyncio.Lock()

    @property
    def plans(self) -> list[TagPlan]:
        """The tags running now."""
        return self._engine.plans

    @property
    def tags(self) -> list[ComputedTag]:
        """The tags as configured now, disabled ones included (the web editor lists them)."""
        return list(self._tags)

    @property
    def builtin(self) -> list[ComputedTag]:
        """The built-in tags a reload keeps beside the file's (the demo's)."""
        return list(self._builtin)

    async def __aenter__(self) -> Self:
        async with contextlib.AsyncExitStack() as stack:
            offline = Message(self.health_topic, _OFFLINE, 0, True)
            self._client = await stack.enter_async_context(self._clients(client_id=_CLIENT_ID, will=offline))
            topics = self._engine.topics
            if topics:
                await self._client.subscribe(topics, qos=1)
            self._subscribed = set(topics)
            if self._data_dir is not None:
                write_running(self._data_dir, self._tags)
            self._stack = stack.pop_all()
        log.info("computed tags: %d running over %d input topics", len(self._engine.plans), len(topics))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        client, self._client = self._client, None
        if client is not None:
            # a clean stop says so at once; the will covers a crash
            with contextlib.suppress(UnsError, TimeoutError, OSError):
                async with asyncio.timeout(2):
                    await client.publish(self.health_topic, _OFFLINE, qos=0, retain=True)
        await self._stack.aclose()

    async def run(self) -> None:
        """Evaluate on every input message and publish health, until cancelled."""
        client = self._require_client()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(
                publish_health(client, self.health_topic, self.health, interval_s=self._health_interval_s),
                name="uns.transforms.health",
            )
            tasks.create_task(self._tick_loop(client), name="uns.transforms.tick")
            async for message in client.messages():
                self._last[message.topic] = message.payload
                results = self._engine.on_message(
                    message.topic, message.payload, now_ms=self._clock(), decoded=message.decoded
                )
                await self._publish(client, results)

    async def reload_file(self, path: Path) -> TagDiff | None:
        """Run the ``transforms:`` of the settings file ``path``; returns what changed.

        An invalid file is logged and counted (``reload_failures`` and ``last_reload_error`` in health),
        the running tags stay, and None is returned.
        """
        try:
            tags = with_builtin(read_transforms(path), self._builtin)
            plans = plan_tags(tags, plant=self._plant, source=str(path))
        except ConfigError as exc:
            self._reload_failures += 1
            self._last_reload_error = str(exc)
            log.error("computed tags: reload refused, the running version stays: %s", exc)
            return None
        diff = diff_tags(self._tags, tags)
        await self.reload(plans)
        self._tags = tags
        self._last_reload_error = None
        if self._data_dir is not None:
            write_running(self._data_dir, tags)
        log.info("computed tags reloaded from %s: %s", path, ", ".join(diff.lines()))
        return diff

    async def reload(self, plans: Sequence[TagPlan]) -> None:
        """Run ``plans``, whose configs become the running tags.

        Unchanged tags keep their state, new and changed ones start from the last inputs. Inputs no tag
        reads any more stay subscribed (the engine ignores them) until the hub restarts.
        """
        client = self._require_client()
        async with self._reload_lock:
            old = self._engine
            engine = Engine(plans, keep=old)
            added = sorted(set(engine.topics) - self._subscribed)
            self._subscribed.update(added)
            removed = sorted(set(old.topics) - set(engine.topics))
            self._engine = engine
            self._tags = [plan.config for plan in plans]
            for topic in removed:
                self._last.pop(topic, None)
            results = []
            for topic in engine.topics:
                payload = self._last.get(topic)
                if payload is not None:
                    results += engine.prime(topic, payload, now_ms=self._clock())
            await self._publish(client, results)
            if added:
                await client.subscribe(added, qos=1)  # their retained values arrive as messages
            self._reloads += 1
        log.info("computed tags reloaded: %d running over %d input topics", len(plans), len(engine.topics))

    async def _publish(self, client: PubSub, results: list[tuple[str, bytes]]) -> None:
        if results:
            await client.publish_many([Message(topic, body, self._qos, True) for topic, body in results])

    def health(self) -> dict[str, object]:
        """Counters, reloads and every tag's last value, quality, errors and reason."""
        return {
            "reloads": self._reloads,
            "reload_failures": self._reload_failures,
            "last_reload_error": self._last_reload_error,
            **self._engine.health(),
        }

    async def _tick_loop(self, client: PubSub) -> None:
        # tags with `every`: checked at their shortest period (a reload may change it), 1 s when none
        while True:
            period_ms = self._engine.tick_ms
            await asyncio.sleep((period_ms or 1000) / 1000)
            if period_ms is not None:
                await self._publish(client, self._engine.tick(self._clock()))

    def _require_client(self) -> PubSub:
        if self._client is None:
            raise RuntimeError("ComputedTags needs `async with` first")
        return self._client

"""``uns edge``: an agent that runs the bridges its retained desired config names and reports its status.

The agent keeps the last version it applied (``<data_dir>/agent/good.json``) and starts it before it
connects, so its bridges read (and buffer on disk) while the hub is away. A desired version that fails
validation or fails to start is rolled back to that last good version, and the status says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path

from pydantic import ValidationError

from bridges.fleet.bridgeset import BridgeSet, BridgeStartError
from model.fleet import AgentState, AgentStatus, DesiredVersion
from uns.backoff import Backoff
from uns.clock import now_ms
from uns.connect import ClientFactory
from uns.errors import BrokerError, ConfigError
from uns.files import replace_file
from uns.fleet.store import config_hash, validate_agent_config
from uns.fleet.topics import config_topic, status_topic
from uns.mqtt.types import Message, PubSub

__all__ = ["EdgeAgent"]

log = logging.getLogger(__name__)

_GOOD = "good.json"


class EdgeAgent:
    """One edge agent: ``async with EdgeAgent(...) as agent: await agent.run()`` until cancelled.

    Args:
        agent_id: its id (a slug); names its config and status topics and its MQTT client.
        enterprise: the enterprise id the topics live under.
        clients: opens its MQTT clients (the hub's or a site broker, under the agent's account).
        data_dir: the agent's own data directory: last good version, bridge buffers.
        status_interval_s: how often the status (with health) is republished.
        birth_wait_s: how long each restarted bridge may take to birth before the next is restarted.
    """

    def __init__(
        self,
        *,
        agent_id: str,
        enterprise: str,
        clients: ClientFactory,
        data_dir: Path,
        status_interval_s: float = 10.0,
        birth_wait_s: float = 10.0,
    ) -> None:
        self.name = f"edge-agent[{agent_id}]"
        self.agent_id = agent_id
        self.config_topic = config_topic(enterprise, agent_id)
        self.status_topic = status_topic(enterprise, agent_id)
        self._clients = clients
        self._data_dir = data_dir
        self._dir = data_dir / "agent"
        self._status_interval_s = status_interval_s
        self._birth_wait_s = birth_wait_s
        self._good: DesiredVersion | None = None
        self._state: AgentState = "starting"
        self._desired: int | None = None
        self._reason: str | None = None
        self._failed: tuple[int, str] | None = None  # a version that failed here: not retried on redelivery
        self._good_down = False  # the last good version did not start from disk: retried on each connect
        self._bridges: BridgeSet | None = None
        self._client: PubSub | None = None

    async def __aenter__(self) -> EdgeAgent:
        self._dir.mkdir(parents=True, exist_ok=True)
        self._good = self._load_good()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    @property
    def status(self) -> AgentStatus:
        """What the agent reports now."""
        return AgentStatus(
            agent=self.agent_id,
            status=self._state,
            version=self._good.version if self._good else None,
            hash=self._good.hash if self._good else None,
            desired=self._desired,
            reason=self._reason,
            time_ms=now_ms(),
            bridges=self._bridges.health() if self._bridges else [],
        )

    async def run(self) -> None:
        """Run the last good version, then follow the desired config topic until cancelled."""
        async with asyncio.TaskGroup() as tg:
            self._bridges = BridgeSet(
                clients=self._clients, data_dir=self._data_dir, tasks=tg, birth_wait_s=self._birth_wait_s
            )
            try:
                if self._good is not None:
                    await self._start_good()
                self._state = "running"
                ticker = tg.create_task(self._tick(), name=f"{self.name}.status")
                try:
                    await self._follow()
                finally:
                    ticker.cancel()
            finally:
                await self._bridges.stop_all()

    # -- MQTT -----------------------------------------------------------------------------------

    async def _follow(self) -> None:
        offline = json.dumps({"agent": self.agent_id, "status": "offline"}).encode()
        will = Message(topic=self.status_topic, payload=offline, qos=1, retain=True)
        backoff = Backoff(min_s=0.2, max_s=10.0)
        while True:
            try:
                async with self._clients(
                    client_id=f"uns-edge-{self.agent_id}", will=will, on_connect=self._report
                ) as client:
                    backoff.succeeded()
                    self._client = client
                    try:
                        await self._report()  # on_connect ran before _client was set: a stale "offline" stayed
                        await client.subscribe([self.config_topic], qos=1)
                        if self._good_down and self._good is not None:
                            await self._apply(self._good)  # e.g. a source that needed this broker
                        async for message in client.messages():
                            await self._on_config(message)
                    finally:
                        self._client = None
                        with contextlib.suppress(BrokerError, TimeoutError):
                            async with asyncio.timeout(2.0):  # a clean stop says offline itself
                                await client.publish(self.status_topic, offline, qos=1, retain=True)
            except BrokerError as exc:
                delay = backoff.failed()
                log.warning(
                    "%s: broker unreachable (%s), bridges keep buffering; retry in %.1f s", self.name, exc, delay
                )
                await asyncio.sleep(delay)

    async def _report(self) -> None:
        client = self._client
        if client is None:
            return
        with contextlib.suppress(BrokerError):
            await client.publish(self.status_topic, self.status.model_dump_json().encode(), qos=1, retain=True)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._status_interval_s)
            await self._report()

    # -- versions -------------------------------------------------------------------------------

    async def _on_config(self, message: Message) -> None:
        if message.topic != self.config_topic or not message.payload:
            return  # an emptied retained config changes nothing: the agent keeps its version
        try:
            desired = DesiredVersion.model_validate_json(message.payload)
        except ValidationError as exc:
            await self._refuse(None, f"{message.topic}: not a desired version: {_first_error(exc)}")
            return
        if desired.agent != self.agent_id:
            await self._refuse(desired.version, f"{message.topic}: version is for agent {desired.agent!r}")
            return
        if config_hash(desired.config) != desired.hash:
            await self._refuse(desired.version, f"{message.topic}: config does not match its hash")
            return
        good = self._good
        if good is not None and (good.version, good.hash) == (desired.version, desired.hash) and not self._good_down:
            self._desired = desired.version
            await self._report()
            return
        if self._failed == (desired.version, desired.hash):
            await self._report()  # redelivered (a reconnect): still refused, for the same reason
            return
        await self._apply(desired)

    async def _apply(self, desired: DesiredVersion) -> None:
        bridges = self._bridges
        assert bridges is not None  # noqa: S101  (run() sets it before following the topic)
        self._desired, self._state, self._reason = desired.version, "applying", None
        await self._report()
        try:
            config = validate_agent_config(desired.config, f"version {desired.version}")
        except ConfigError as exc:
            self._failed = (desired.version, desired.hash)
            await self._refuse(desired.version, f"invalid, not applied: {exc}")
            return
        before = bridges.configs()
        try:
            await bridges.apply(config.bridges)
        except BridgeStartError as exc:
            log.warning("%s: version %d failed (%s), rolling back", self.name, desired.version, exc)
            try:
                await bridges.apply(before)
            except BridgeStartError as again:
                log.error("%s: rollback failed too: %s", self.name, again)
            back = f"rolled back to version {self._good.version}" if self._good else "rolled back"
            self._failed = (desired.version, desired.hash)
            await self._refuse(desired.version, f"failed to apply: {exc}; {back}")
            return
        self._good, self._good_down = desired, False
        self._save_good(desired)
        self._state = "running"
        log.info("%s: running version %d (%s)", self.name, desired.version, desired.hash[:12])
        await self._report()

    async def _refuse(self, version: int | None, reason: str) -> None:
        log.warning("%s: version %s refused: %s", self.name, version, reason)
        self._desired, self._state, self._reason = version, "failed", reason
        await self._report()

    async def _start_good(self) -> None:
        good = self._good
        assert good is not None  # noqa: S101  (the caller checked)
        assert self._bridges is not None  # noqa: S101  (run() set it)
        try:
            config = validate_agent_config(good.config, str(self._dir / _GOOD))
            await self._bridges.apply(config.bridges, paced=False)  # buffer at once, the broker may be away
        except (ConfigError, BridgeStartError) as exc:
            # the last good version no longer starts (a bridge model changed, a device path vanished)
            log.error("%s: last good version %d does not start: %s", self.name, good.version, exc)
            self._reason = f"last good version {good.version} does not start: {exc}"
            self._good_down = True

    def _load_good(self) -> DesiredVersion | None:
        path = self._dir / _GOOD
        try:
            return DesiredVersion.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            return None
        except ValidationError as exc:
            log.error("%s: %s unreadable, starting empty: %s", self.name, path, _first_error(exc))
            return None

    def _save_good(self, version: DesiredVersion) -> None:
        # kill -9 leaves the old or the new version, never half
        replace_file(self._dir / _GOOD, version.model_dump_json(indent=2) + "\n")


def _first_error(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]

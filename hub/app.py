"""``uns up`` and the single-component commands: assemble parts, print the ready line, run until cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from functools import partial
from pathlib import Path

import duckdb
from starlette.routing import BaseRoute

from bridges.registry import build_edge_node
from bridges.sim.mes_rules import demo_mes_section
from bridges.sim.rates import demo_historian_section
from hub.parts import Part
from hub.sighup import ignore_sighup
from model.bridges import BridgeConfig
from model.broker_config import BrokerFileConfig
from model.config import MesSection, Settings
from model.equipment import Line, Plant
from uns.broker import EmbeddedBroker, load_broker_config
from uns.broker.acl import AclPolicy
from uns.config_file import Problem, config_error
from uns.connect import ClientFactory, local_clients, network_clients
from uns.errors import ConfigError
from uns.fleet import FleetStore
from uns.handoff import hand_off
from uns.historian.event_log import MesEventLog
from uns.historian.queries import History
from uns.historian.service import Historian
from uns.host.service import SparkplugHost
from uns.memory import HeapKeeper
from uns.mes.service import MesAdapter
from uns.mqtt.types import BrokerUrl
from uns.ready import ready_line
from uns.rules.demo import builtin_rules
from uns.rules.history import AlarmHistory
from uns.rules.service import RuleService, starting_rules
from uns.settings import load_plant
from uns.sinks.run import enter_sinks
from uns.store.writer import Writer
from uns.transforms.hub import check_computed_tags, computed_tags
from uns.transforms.service import ComputedTags
from uns.web import WebServer
from uns.web.actions_api import WebActions
from uns.web.alarms_api import alarm_routes
from uns.web.auth import WebAuth
from uns.web.automation_api import AutomationEditor
from uns.web.cache import TopicCache
from uns.web.fleet_api import FleetService
from uns.web.historian_proxy import HistorianProxy, no_historian_routes, parse_historian_url
from uns.web.mes_api import mes_routes
from uns.web.pages import page_routes
from uns.web.plant_api import plant_routes
from uns.web.server import ReaderHealth
from uns.web.sink_history_api import sink_history_routes
from uns.web.sparkplug_sessions import Sessions
from uns.web.sparkplug_view import SparkplugView
from uns.web.tree_api import tree_routes

__all__ = [
    "READY_PREFIX",
    "Part",
    "ReadyCallback",
    "demo_mes_rules_apply",
    "mes_section",
    "run_bridges",
    "run_broker",
    "run_historian",
    "run_host",
    "run_sim",
    "run_up",
    "run_web",
]

log = logging.getLogger(__name__)

ReadyCallback = Callable[[str], None]


class _ReloadOnSighup:
    """SIGHUP reloads ``transforms:`` and ``rules:`` from the settings file: asyncio keeps one handler per signal."""

    name = "reload"

    def __init__(self, path: Path, reloads: Sequence[Callable[[Path], Awaitable[object]]]) -> None:
        self._path = path
        self._reloads = reloads

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        async with asyncio.TaskGroup() as tasks:

            def reload() -> None:
                for each in self._reloads:
                    tasks.create_task(self._one(each), name="uns.reload")

            loop.add_signal_handler(signal.SIGHUP, reload)
            try:
                await asyncio.Event().wait()
            finally:
                ignore_sighup(loop)  # stopping: a late SIGHUP is logged, not the end of the process

    async def _one(self, reload: Callable[[Path], Awaitable[object]]) -> None:
        with contextlib.suppress(ConfigError):  # refused: logged and counted by the part, which keeps its version
            await reload(self._path)


async def _run_parts(parts: list[Part]) -> None:
    async with asyncio.TaskGroup() as tasks:
        for part in [*parts, HeapKeeper()]:
            tasks.create_task(part.run(), name=f"uns.{part.name}")


async def _enter_broker(stack: contextlib.AsyncExitStack, settings: Settings, *, gated: bool = False) -> EmbeddedBroker:
    section = settings.broker
    config = load_broker_config(
        section.config,
        bind=section.bind,
        mqtt_port=section.mqtt_port,
        ws_port=section.ws_port,
        tls_port=section.tls_port,
        max_payload_bytes=section.max_payload_bytes,
    )
    return await stack.enter_async_context(EmbeddedBroker(config=config, data_dir=settings.data_dir, gated=gated))


def _broker_file(settings: Settings) -> BrokerFileConfig:
    """broker.yaml: its users and roles are the web UI's accounts too, whichever broker runs."""
    return load_broker_config(settings.broker.config)


def _web(
    settings: Settings,
    accounts: BrokerFileConfig,
    health: dict[str, Callable[[], Mapping[str, object]]],
    history: History | None,
    routes: Sequence[BaseRoute],
    notes: list[str],
) -> WebServer:
    """The web server with login and the DESIGN roles on every route (users from broker.yaml)."""
    secret_setting = settings.web.session_secret
    secret = secret_setting.get_secret_value().encode() if secret_setting else secrets.token_bytes(32)
    auth = WebAuth.from_broker_config(accounts, secret=secret, session_ttl_s=settings.web.session_ttl_s)
    health["web_auth"] = auth.health
    if auth.anonymous_role:
        notes.append(f"WEB UI WITHOUT LOGIN: role {auth.anonymous_role} (demo only, see broker.yaml)")
    return WebServer(
        bind=settings.web.bind,
        port=settings.web.http_port,
        trusted_proxies=settings.web.trusted_proxies,
        tls_cert_file=settings.web.tls_cert_file,
        tls_key_file=settings.web.tls_key_file,
        health=health,
        history=history,
        middleware=auth.middleware(),
        routes=[*auth.routes(), *page_routes(), *routes],
    )


async def _enter_bridges(
    stack: contextlib.AsyncExitStack, configs: list[BridgeConfig], clients: ClientFactory, settings: Settings
) -> list[Part]:
    return [
        await stack.enter_async_context(build_edge_node(config, clients, settings.data_dir))
        for config in configs
        if config.enabled
    ]


READY_PREFIX = "uns-hub ready"
"""How the one ready line of ``uns up`` and each ``uns <component>`` starts (DESIGN, CLI)."""


async def run_up(
    settings: Settings,
    plant: Plant,
    *,
    ready: ReadyCallback,
    config_file: Path | None = None,
    hand_offs: Mapping[str, str] | None = None,
) -> None:
    """The whole hub in one process: broker (unless external), Sparkplug host, status HTTP.

    ``config_file``: the settings file SIGHUP reloads the computed tags (``transforms:``) and the rules from.
    ``hand_offs``: edge node id -> edge agent: those bridges go to the agents' desired configs (uns/handoff.py).
    """
    mes_settings = mes_section(settings, plant)  # checked before anything starts
    check_computed_tags(settings, plant)  # so are they: the simulated plant and edge nodes start before them
    async with contextlib.AsyncExitStack() as stack:
        parts: list[Part] = []
        notes: list[str] = []
        if settings.plant is not None and not settings.demo:  # off by default with a plant file: say how to run it
            notes.append(f"no demo: plant file {settings.plant} (UNS_DEMO=true adds the simulated plant)")
        endpoints: dict[str, str | None] = {}
        clients: ClientFactory
        broker: EmbeddedBroker | None = None
        max_payload = settings.broker.max_payload_bytes or 1_048_576
        if settings.broker.url:
            url = BrokerUrl.from_str(settings.broker.url)
            clients = network_clients(url, ca_file=settings.broker.ca_file)
            endpoints["mqtt"] = url.redacted()
            notes.append("external broker")
        else:
            broker = await _enter_broker(stack, settings, gated=True)
            parts.append(broker)
            clients = local_clients(broker)
            endpoints["mqtt"] = str(broker.url)
            endpoints["ws"] = broker.ws_url
            endpoints["mqtts"] = str(broker.tls_url) if broker.tls_url else None
            max_payload = broker.config.limits.max_payload_bytes
            if broker.anonymous:
                notes.append("ANONYMOUS ACCESS ON: demo only, see broker.yaml")
        host = await stack.enter_async_context(
            SparkplugHost(settings=settings.host, plant=plant, clients=clients, max_payload_bytes=max_payload)
        )
        parts.append(host)
        health: dict[str, Callable[[], Mapping[str, object]]] = {"host": host.core.health}
        history: History | None = None
        routes: Sequence[BaseRoute] = mes_routes(None)  # 503 saying how to turn it on, while no historian runs
        counted: Callable[[], Collection[str]] | None = None  # the MES's paths with counts, for the plant page
        if settings.historian.enabled:
            historian = await stack.enter_async_context(_historian(settings, plant, clients, demo=settings.demo))
            parts.append(historian)
            health["historian"] = historian.health
            history = History(historian.database)
            endpoints["historian"] = str(historian.database.path)
            mes = await _enter_mes(stack, mes_settings, plant, clients, historian)
            if mes is not None:
                parts.append(mes)
                health["mes"] = mes.health
            routes = mes_routes(mes)
            counted = None if mes is None else mes.counted_paths
        cache, browser_routes = await _enter_browser(
            stack, clients, plant, health, settings, counted, sessions=host.core
        )
        parts.append(cache)
        fleet = await _enter_fleet(stack, clients, settings, plant, health)
        parts.append(fleet)
        routes = [*routes, *browser_routes, *sink_history_routes(settings.sinks), *fleet.routes()]
        users = broker.config if broker is not None else _broker_file(settings)
        rules = await _enter_rules(stack, settings, plant, clients, users, historian if history else None, config_file)
        if rules is not None:
            parts.append(rules)
            health["rules"] = rules.health
        alarm_history = AlarmHistory(historian.database) if history else None
        events = MesEventLog(historian.database) if history else None
        routes = [*routes, *alarm_routes(rules, alarm_history, config_file)]
        running_tags: list[ComputedTags] = []  # entered after the web server, below
        editor = AutomationEditor(
            plant=plant, cache=cache, tags=lambda: running_tags[0] if running_tags else None, rules=rules,
            history=history, events=events, settings_file=config_file,
        )  # fmt: skip
        routes = [*routes, *editor.routes()]
        http = await stack.enter_async_context(_web(settings, users, health, history, routes, notes))
        parts.append(http)
        if broker is not None:
            broker.open_gate()  # host and historian listen now: edge nodes may come in and replay
        configs = list(settings.bridges)
        if settings.demo:
            from hub.demo import enter_demo  # here: a hub without the demo never loads its servers' libraries

            demo = await enter_demo(stack, settings, plant, clients)
            parts.extend(demo.parts)
            configs += demo.bridges
            endpoints.update(demo.endpoints)
            health.update(demo.health)
        if hand_offs:  # before the hub starts them: the agents run these
            configs, handed = hand_off(configs, hand_offs, fleet.store)
            await fleet.publish(handed)
            endpoints["edge"] = ",".join(f"{node}->{agent}" for node, agent in sorted(hand_offs.items()))
        bridges = await _enter_bridges(stack, configs, clients, settings)
        parts.extend(bridges)
        sinks = await enter_sinks(stack, settings.sinks, clients, plant.enterprise.id)
        parts.extend(sinks)
        health.update({sink.name: sink.health for sink in sinks})
        transforms = await stack.enter_async_context(computed_tags(settings, plant, clients))
        parts.append(transforms)
        running_tags.append(transforms)
        health["transforms"] = transforms.health
        if config_file is not None:  # one SIGHUP handler reloads both from the settings file
            reloads = [transforms.reload_file, *([rules.reload_file] if rules is not None else [])]
            parts.append(_ReloadOnSighup(config_file, reloads))
        endpoints["sinks"] = ",".join(sink.config.name for sink in sinks) or None
        endpoints["http"] = http.url
        endpoints["state"] = host.state_topic
        endpoints["bridges"] = str(len(bridges))
        endpoints["data"] = str(settings.data_dir)
        ready(ready_line(READY_PREFIX, endpoints, notes))
        await _run_parts(parts)


async def run_broker(settings: Settings, *, ready: ReadyCallback) -> None:
    """``uns broker``: only the embedded broker."""
    async with contextlib.AsyncExitStack() as stack:
        broker = await _enter_broker(stack, settings)
        notes = ["ANONYMOUS ACCESS ON: demo only, see broker.yaml"] if broker.anonymous else []
        tls = str(broker.tls_url) if broker.tls_url else None
        ready(ready_line(READY_PREFIX, {"mqtt": str(broker.url), "ws": broker.ws_url, "mqtts": tls}, notes))
        await _run_parts([broker])


async def run_host(settings: Settings, plant: Plant, *, ready: ReadyCallback) -> None:
    """``uns host``: the Sparkplug host against the broker named by ``--broker`` / ``UNS_BROKER``."""
    url = BrokerUrl.from_str(settings.broker.url or "mqtt://127.0.0.1:1883")
    max_payload = settings.broker.max_payload_bytes or 1_048_576
    async with SparkplugHost(
        settings=settings.host,
        plant=plant,
        clients=network_clients(url, ca_file=settings.broker.ca_file),
        max_payload_bytes=max_payload,
    ) as host:
        ready(ready_line(READY_PREFIX, {"mqtt": url.redacted(), "state": host.state_topic}))
        await _run_parts([host])


def demo_mes_rules_apply(settings: Settings) -> bool:
    """Whether the demo's MES rules (``bridges.sim.mes_rules``) apply: the hub of these settings runs the demo plant.

    The one rule, for ``uns up`` and for ``uns mes <view>`` on a file alike, and the one the demo's computed tags
    and alarm rules follow: ``demo`` on, so the simulated plant feeds the hub. A plant file turns ``demo`` off
    unless it is set (``uns.settings.load_settings``), so a plant of the user's gets the settings' rules alone;
    with ``demo`` set beside a plant file the simulator runs on it, and its rules with it (they name the demo's
    paths: a plant that renames them matches none). An ``enterprise`` other than the demo plant's gets none (``uns
    up`` refuses it with the demo; the other commands run an empty plant of it). ``uns historian`` and ``uns mes``
    (the adapter) never run the demo: they ask with ``demo`` off.
    """
    if not settings.demo:
        return False
    return settings.enterprise is None or settings.enterprise == load_plant(None).enterprise.id


def mes_section(settings: Settings, plant: Plant) -> MesSection:
    """The MES settings every view uses: the lines' outputs, and the demo plant's rules when they apply.

    ``output_cells`` stays the settings' alone (checked against the plant file); ``plant_outputs`` gets each
    line's last cell in the plant file, the default after the line's own counts (``uns.mes.line_output``). The
    demo's rules (ideal cycle times, reason catalog, derive rules, ...) only where ``demo_mes_rules_apply``.

    Raises:
        ConfigError: ``mes.output_cells`` names, for a line of the plant file, a cell it does not declare there.
    """
    _check_output_cells(settings.mes.output_cells, plant)
    section = settings.mes.model_copy(update={"plant_outputs": plant.line_outputs()})
    return demo_mes_section(section, plant, speed=settings.sim.speed) if demo_mes_rules_apply(settings) else section


def _check_output_cells(output_cells: Mapping[str, str], plant: Plant) -> None:
    """A line of the plant file has one of its cells there as output: another never counts, so no units are the line's.

    A line the plant file does not declare keeps its configured cell (its events are stored at unbound paths).
    """
    problems: list[Problem] = []
    for line, cell in output_cells.items():
        declared = plant.equipment(line)
        if not isinstance(declared, Line) or plant.equipment(cell) is not None:
            continue
        cells = ", ".join(f"{line}/{c.id}" for c in declared.cells) or "none"
        reason = f"not a cell of {line} in the plant file (its cells: {cells})"
        problems.append(("settings", f"mes.output_cells.{line}", reason, cell))
    if problems:
        raise config_error(problems)


async def _enter_mes(
    stack: contextlib.AsyncExitStack, section: MesSection, plant: Plant, clients: ClientFactory, historian: Historian
) -> MesAdapter | None:
    if not section.enabled:
        return None
    adapter = MesAdapter(
        settings=section,
        enterprise=plant.enterprise.id,
        clients=clients,
        writer=historian.writer,
        equipment=plant.equipment_paths(),
    )
    return await stack.enter_async_context(adapter)


async def _enter_rules(
    stack: contextlib.AsyncExitStack,
    settings: Settings,
    plant: Plant,
    clients: ClientFactory,
    users: BrokerFileConfig,
    historian: Historian | None,
    config_file: Path | None,
) -> RuleService | None:
    """The rules (the demo's when the demo runs and the settings have no ``rules:``); alarm history in the historian.

    With a settings file they run even when there are none yet: the web editor and a reload may add some.
    """
    builtin = builtin_rules(settings, plant)  # also what a reload of a file without rules: runs
    rules = starting_rules(settings, builtin)  # an explicit rules: [] runs none, as on reload
    if not rules and config_file is None:
        return None
    writer = None
    if historian is not None:
        writer = partial(_on_connection, historian.writer)
    acl = AclPolicy(app_cmd_topics=users.app_cmd_topics)
    service = RuleService(rules=rules, plant=plant, clients=clients, acl=acl, builtin=builtin, writer=writer)
    return await stack.enter_async_context(service)


async def _on_connection(writer: Writer, work: Callable[[duckdb.DuckDBPyConnection], None]) -> None:
    await writer.submit(lambda: work(writer.database.connection))


def _historian(settings: Settings, plant: Plant, clients: ClientFactory, *, demo: bool = False) -> Historian:
    section = demo_historian_section(settings.historian) if demo else settings.historian  # the demo's flush
    return Historian(settings=section, enterprise=plant.enterprise.id, clients=clients, data_dir=settings.data_dir)


async def run_historian(settings: Settings, plant: Plant, *, ready: ReadyCallback) -> None:
    """``uns historian``: the DuckDB historian against ``--broker`` / ``UNS_BROKER`` (persistent QoS 1 session)."""
    url = BrokerUrl.from_str(settings.broker.url or "mqtt://127.0.0.1:1883")
    # checked before anything starts; no demo runs here, so never its MES rules (demo_mes_rules_apply)
    mes_settings = mes_section(settings.model_copy(update={"demo": False}), plant)
    async with contextlib.AsyncExitStack() as stack:
        clients = network_clients(url, ca_file=settings.broker.ca_file)
        historian = await stack.enter_async_context(_historian(settings, plant, clients))
        parts: list[Part] = [historian]
        health: dict[str, Callable[[], Mapping[str, object]]] = {"historian": historian.health}
        mes = await _enter_mes(stack, mes_settings, plant, clients, historian)
        if mes is not None:
            parts.append(mes)
            health["mes"] = mes.health
        notes: list[str] = []
        counted = None if mes is None else mes.counted_paths
        routes = [*mes_routes(mes), *plant_routes(plant, settings.mes.output_cells, counted)]
        web = await stack.enter_async_context(
            _web(settings, _broker_file(settings), health, History(historian.database), routes, notes)
        )
        parts.append(web)
        endpoints = {
            "mqtt": url.redacted(),
            "historian": str(historian.database.path),
            "topics": historian.subscription,
            "http": web.url,
        }
        ready(ready_line(READY_PREFIX, endpoints, notes))
        await _run_parts(parts)


async def _enter_browser(
    stack: contextlib.AsyncExitStack,
    clients: ClientFactory,
    plant: Plant,
    health: dict[str, Callable[[], Mapping[str, object]]],
    settings: Settings,
    counted: Callable[[], Collection[str]] | None,
    sessions: Sessions | None = None,
) -> tuple[TopicCache, list[BaseRoute]]:
    """The topic browser's live cache, its write actions, and their routes with the plant's (uns up, uns web).

    ``counted``: the in-process MES's paths with counts (``MesAdapter.counted_paths``), so the plant page names each
    line's output as the views choose it; None without one. ``sessions``: the in-process host's state (uns up), so
    the cache decodes no Sparkplug payload again.
    """
    bounds = settings.host  # the Sparkplug view keeps what the host keeps, within the same bounds
    view = SparkplugView(
        max_nodes=bounds.max_nodes,
        max_devices_per_node=bounds.max_devices_per_node,
        max_metrics_per_birth=bounds.max_metrics_per_birth,
        max_series=bounds.max_series,
        sessions=sessions,
    )
    cache = TopicCache(
        clients=clients,
        max_topics=settings.web.cache_max_topics,
        payload_budget_bytes=settings.web.cache_payload_budget_bytes,
        sparkplug=view,
    )
    cache = await stack.enter_async_context(cache)
    health["web-cache"] = ReaderHealth(cache.health)  # a viewer gets no count of what is hidden from it
    actions = await stack.enter_async_context(WebActions(clients=clients))
    plant_page = plant_routes(plant, settings.mes.output_cells, counted)
    return cache, [*tree_routes(cache), *actions.routes(), *plant_page]


async def _enter_fleet(
    stack: contextlib.AsyncExitStack,
    clients: ClientFactory,
    settings: Settings,
    plant: Plant,
    health: dict[str, Callable[[], Mapping[str, object]]],
) -> FleetService:
    """The edge fleet's API: agents' status topics, and the versions ``uns fleet`` keeps in the data dir."""
    store = FleetStore(directory=settings.data_dir / "fleet")
    fleet = FleetService(clients=clients, store=store, enterprise=plant.enterprise.id)
    fleet = await stack.enter_async_context(fleet)
    health["fleet"] = fleet.health
    return fleet


async def run_web(settings: Settings, plant: Plant, *, ready: ReadyCallback) -> None:
    """``uns web``: the topic browser and HTTP API against ``--broker``; history and MES from ``web.historian_url``."""
    url = BrokerUrl.from_str(settings.broker.url or "mqtt://127.0.0.1:1883")
    async with contextlib.AsyncExitStack() as stack:
        clients = network_clients(url, ca_file=settings.broker.ca_file)
        health: dict[str, Callable[[], Mapping[str, object]]] = {}
        _check_output_cells(settings.mes.output_cells, plant)  # as uns up does, before anything starts
        cache, routes = await _enter_browser(stack, clients, plant, health, settings, None)
        fleet = await _enter_fleet(stack, clients, settings, plant, health)
        routes = [*routes, *fleet.routes()]
        notes: list[str] = []
        endpoints = {"mqtt": url.redacted()}
        if settings.web.historian_url:
            proxy = HistorianProxy(url=parse_historian_url(settings.web.historian_url))
            health["historian-proxy"] = proxy.health
            routes = [*proxy.routes(), *routes]
            endpoints["historian"] = proxy.url
        else:
            routes = [*no_historian_routes(), *routes]
            notes.append("no history or MES: pass --historian-url of a running `uns historian`")
        web = await stack.enter_async_context(_web(settings, _broker_file(settings), health, None, routes, notes))
        endpoints["http"] = web.url
        ready(ready_line(READY_PREFIX, endpoints, notes))
        await _run_parts([cache, fleet, web])


async def run_bridges(settings: Settings, kind: str | None, *, ready: ReadyCallback) -> None:
    """``uns bridge [kind]``: the configured bridges (of one kind) against ``--broker`` / ``UNS_BROKER``."""
    url = BrokerUrl.from_str(settings.broker.url or "mqtt://127.0.0.1:1883")
    configs = [c for c in settings.bridges if c.enabled and (kind is None or c.kind == kind)]
    if not configs:
        what = "no enabled bridge" if kind is None else f"no enabled bridge of kind {kind}"
        reason = f"{what} in the settings (--config FILE): add one under bridges: (docs/bridges.md)"
        raise ConfigError(source="settings", path="bridges", reason=reason)
    async with contextlib.AsyncExitStack() as stack:
        bridges = await _enter_bridges(stack, configs, network_clients(url, ca_file=settings.broker.ca_file), settings)
        names = ",".join(f"{c.kind}:{c.node_id}" for c in configs)
        ready(ready_line(READY_PREFIX, {"mqtt": url.redacted(), "bridges": names}))
        await _run_parts(bridges)


async def run_sim(settings: Settings, *, ready: ReadyCallback) -> None:
    """``uns sim``: only the simulated plant's PLCs and OPC UA server (point bridges at them)."""
    from hub.demo import enter_sim, sim_endpoints

    async with contextlib.AsyncExitStack() as stack:
        sim = await enter_sim(stack, settings)
        ready(ready_line(READY_PREFIX, {"sim": sim_endpoints(sim), "seed": str(settings.sim.seed)}))
        await _run_parts([sim])

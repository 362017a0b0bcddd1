"""The ``uns`` command line: parse flags, load settings, run a command, map failures to exit codes."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import faulthandler
import gc
import getpass
import json
import logging
import os
import select
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path

from bridges.fleet.cli import add_edge_parser, add_fleet_parser, run_edge, run_fleet
from bridges.registry import KINDS
from hub.sighup import ignore_sighup
from model.config import EventLoop, Settings
from model.schema import all_schemas
from uns.broker import hash_password
from uns.errors import ConfigError, UnsError
from uns.handoff import parse_hand_offs
from uns.historian.export import add_export_parser, run_export
from uns.historian.query_cli import add_query_parser, run_query
from uns.logs import configure_logging
from uns.memory import limit_arenas
from uns.mes.cli import add_mes_parser, run_mes
from uns.query.cli import join_relative_times
from uns.rules.cli import add_rules_parser, run_rules
from uns.settings import load_settings, plant_of
from uns.transforms.cli import add_transforms_parser, run_transforms

__all__ = ["main"]

log = logging.getLogger("uns")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2

# flag dest -> dotted settings key
_OVERRIDES = {
    "broker": "broker.url",
    "broker_ca": "broker.ca_file",
    "broker_config": "broker.config",
    "bind": "broker.bind",
    "mqtt_port": "broker.mqtt_port",
    "ws_port": "broker.ws_port",
    "tls_port": "broker.tls_port",
    "http_port": "web.http_port",
    "data_dir": "data_dir",
    "plant": "plant",
    "enterprise": "enterprise",
    "host_id": "host.host_id",
    "log_level": "log_level",
    "seed": "sim.seed",
    "historian_url": "web.historian_url",
}


def _add_common(parser: argparse.ArgumentParser, *, ports: bool = True, plant: bool = True) -> None:
    _add_settings_flags(parser, plant=plant)
    if ports:
        parser.add_argument(
            "--broker-config", type=Path, help="embedded broker config (env UNS_BROKER__CONFIG; default broker.yaml)"
        )
        parser.add_argument("--bind", help="address the embedded broker listens on (env UNS_BROKER__BIND)")
        parser.add_argument("--mqtt-port", type=int, help="MQTT TCP port, 0 = any free (env UNS_MQTT_PORT)")
        parser.add_argument("--ws-port", type=int, help="MQTT WebSocket port, 0 = any free (env UNS_WS_PORT)")
        parser.add_argument("--tls-port", type=int, help="MQTT TLS port (env UNS_BROKER__TLS_PORT)")


def _add_settings_flags(parser: argparse.ArgumentParser, *, plant: bool, default: object = None) -> None:
    """Add the flags every command reads its settings with.

    ``default=SUPPRESS`` leaves them out of the namespace when not given, so a sub-command's copy does
    not overwrite the command's (see ``_also_after``).
    """
    parser.add_argument("--config", type=Path, help="hub settings YAML (env UNS_CONFIG)", default=default)
    parser.add_argument("--broker", help="external broker mqtt://user:pass@host:port (env UNS_BROKER)", default=default)
    parser.add_argument(
        "--broker-ca",
        type=Path,
        help="CA file the hub's clients trust for an mqtts:// --broker (env UNS_BROKER__CA_FILE)",
        default=default,
    )
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (env UNS_LOG_LEVEL)", default=default)
    parser.add_argument(
        "--data-dir", type=Path, help="where the hub keeps its data (env UNS_DATA_DIR)", default=default
    )
    if plant:
        parser.add_argument(
            "--plant", type=Path, help="plant file (env UNS_PLANT; default: the demo plant)", default=default
        )
        parser.add_argument(
            "--enterprise",
            help="enterprise id of a hub without a plant file (env UNS_ENTERPRISE; default acme)",
            default=default,
        )
        parser.add_argument("--host-id", help="Sparkplug host id (env UNS_HOST__HOST_ID)", default=default)


def _also_after(command: argparse.ArgumentParser, *, plant: bool) -> None:
    """Take the settings flags after a command's sub-command too: ``uns mes oee --data-dir D`` as before it.

    argparse alone took them only before the sub-command (``uns mes --data-dir D oee``) and refused them after it
    with ``uns: error: unrecognized arguments``, naming no command, while the views' own help names ``<data_dir>``.
    """
    for action in command._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _add_settings_flags(sub, plant=plant, default=argparse.SUPPRESS)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="uns", description="uns-hub: the Unified Namespace hub")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = commands.add_parser("up", help="run the whole hub (broker, Sparkplug host, ...) in one process")
    _add_common(up)
    up.add_argument("--http-port", type=int, help="status/web HTTP port, 0 = any free (env UNS_HTTP_PORT)")
    up.add_argument("--no-demo", dest="demo", action="store_false", default=None, help="no simulated plant")
    up.add_argument(
        "--hand-off", action="append", default=[], metavar="NODE=AGENT",
        help="run this bridge (edge node id) on `uns edge --id AGENT` instead: into its desired config (repeatable)",
    )  # fmt: skip
    broker = commands.add_parser("broker", help="run only the embedded MQTT broker")
    _add_common(broker, plant=False)
    host = commands.add_parser("host", help="run only the Sparkplug host application against --broker")
    _add_common(host, ports=False)
    historian = commands.add_parser("historian", help="run only the DuckDB historian against --broker")
    _add_common(historian, ports=False)
    historian.add_argument(
        "--http-port", type=int, help="health and history API port, 0 = any free (env UNS_HTTP_PORT)"
    )
    add_export_parser(historian.add_subparsers(dest="historian_command", metavar="ACTION"))
    web = commands.add_parser("web", help="run only the web UI and HTTP API against --broker")
    _add_common(web, ports=False)
    web.add_argument(
        "--broker-config",
        type=Path,
        help="broker.yaml whose users sign in (env UNS_BROKER__CONFIG; default broker.yaml)",
    )
    web.add_argument("--http-port", type=int, help="HTTP port, 0 = any free (env UNS_HTTP_PORT)")
    web.add_argument(
        "--historian-url",
        help="a running `uns historian`: http://[user:password@]host:port (env UNS_WEB__HISTORIAN_URL)",
    )
    bridge = commands.add_parser("bridge", help="run the configured protocol bridges against --broker")
    _add_common(bridge, ports=False, plant=False)
    bridge.add_argument("kind", nargs="?", choices=KINDS, help="only bridges of this kind (default: all)")
    sink = commands.add_parser("sink", help="run one configured sink (kind postgres, rest) against --broker")
    _add_common(sink, ports=False)
    sink.add_argument("name", help="the sink's name in the settings' sinks list")
    sink.add_argument("--client-id", help="MQTT client id of this process (each member of a shared group needs one)")
    sink.add_argument(
        "action", nargs="?", default="run", choices=["run", "dead-letters", "replay"],
        help="run (default); dead-letters: list a rest sink's stored dead letters; replay: send them again",
    )  # fmt: skip
    sink.add_argument("--since", help="dead-letters/replay: only letters since (ISO time or -1h, -7d)")
    sink.add_argument("--id", type=int, action="append", default=[], help="replay: only this letter (repeatable)")
    sim = commands.add_parser("sim", help="run only the simulated demo plant (Modbus PLCs, OPC UA server)")
    _add_common(sim, ports=False, plant=False)
    sim.add_argument("--seed", type=int, help="random seed of the plant model (env UNS_SIM__SEED)")
    _add_common(add_edge_parser(commands), ports=False)
    _add_common(add_fleet_parser(commands), ports=False)
    add_query_parser(commands)
    _add_common(commands.choices["query"], ports=False, plant=False)
    _add_common(add_mes_parser(commands), ports=False)
    _add_common(add_transforms_parser(commands), ports=False)
    _add_common(add_rules_parser(commands), ports=False)
    for name, plant in (("historian", True), ("query", False), ("mes", True), ("transforms", True), ("rules", True)):
        _also_after(commands.choices[name], plant=plant)
    schema = commands.add_parser("schema", help="print (or write) the JSON Schemas of the config files")
    schema.add_argument("--out", type=Path, help="write one <name>.schema.json per schema into this folder")
    passwd = commands.add_parser("passwd", help="print a broker.yaml password hash for a user")
    passwd.add_argument("username")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    found: dict[str, object] = {}
    for dest, key in _OVERRIDES.items():
        value = getattr(args, dest, None)
        if value is not None:
            found[key] = value
    if getattr(args, "demo", None) is not None:
        found["demo"] = args.demo
    return found


def _ready(line: str) -> None:
    print(line, flush=True)  # stdout carries only this line; logs go to stderr


def _dump_tasks() -> None:
    """``kill -USR1 <pid>``: print the loop and every asyncio task's stack to stderr (what is the hub waiting for?)."""
    loop = type(asyncio.get_running_loop())
    print(f"--- event loop {loop.__module__}.{loop.__qualname__}", file=sys.stderr)
    for running in asyncio.all_tasks():
        print(f"--- task {running.get_name()}", file=sys.stderr)
        running.print_stack(limit=12, file=sys.stderr)


async def _until_signalled(work: Coroutine[None, None, None]) -> None:
    """Run ``work`` until SIGINT or SIGTERM cancels it (a clean stop).

    Raises:
        RuntimeError: ``work`` ended cancelled with no signal: a part (or a library in one) let a cancel out of
            its own task; without this the command would exit 0 saying nothing (its "stopped" is only INFO).
    """
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    signalled: list[int] = []

    def stop(signum: int) -> None:
        signalled.append(signum)
        task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)
    loop.add_signal_handler(signal.SIGUSR1, _dump_tasks)
    ignore_sighup(loop)  # SIGHUP's default ends the process: `uns up --config` takes it over once ready
    try:
        await task
    except asyncio.CancelledError as cancelled:
        if not task.cancelled():
            raise
        if not signalled:
            raise RuntimeError(
                "cancelled, but no signal asked it to stop (a bug: the traceback shows where)"
            ) from cancelled
        log.info("stopped")


def _run(settings: Settings, work: Coroutine[None, None, None]) -> None:
    """Run ``work`` on the configured event loop until SIGINT or SIGTERM."""
    with asyncio.Runner(loop_factory=_loop_factory(settings.event_loop)) as runner:
        runner.run(_until_signalled(work))


def _freeze_loaded() -> None:
    """Keep what is loaded by now (modules, their tables, pint's registry) out of the collector's walks.

    It lives as long as the process, so no full collection need walk it again. At exit it is handed back: frozen,
    DuckDB's bindings (nanobind) found their functions never freed and wrote ~45 "leaked" lines to stderr at
    every stop, burying a failed start's reason; handing it back costs the stop ~0.2-0.4 s, not the ~2 s the
    whole heap took before the freeze.
    """
    gc.freeze()
    atexit.register(gc.unfreeze)


def _loop_factory(choice: EventLoop) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop factory for ``choice``: uvloop's when installed; None (asyncio's own) otherwise."""
    if choice == "uvloop":
        try:
            import uvloop
        except ImportError:  # not installed (it has no Windows build): asyncio's loop runs the same code
            log.info("event loop: asyncio (uvloop is not installed)")
            return None
        return uvloop.new_event_loop
    return None


def _sink(args: argparse.Namespace, settings: Settings) -> int:
    """``uns sink``: its drivers load only here, and not the hub's wiring (~3 s of imports before a restart)."""
    if args.action != "run":
        from uns.sinks.replay import run_sink_action

        return run_sink_action(settings, args.name, args.action, since=args.since, ids=args.id)
    from uns.sinks.run import run_sink

    sink = run_sink(settings, plant_of(settings).enterprise.id, args.name, client_id=args.client_id, ready=_ready)
    _freeze_loaded()  # as for the hub below
    _run(settings, sink)
    return EXIT_OK


def _schema(args: argparse.Namespace) -> int:
    schemas = all_schemas()
    if args.out is None:
        print(json.dumps(schemas, indent=2))
        return EXIT_OK
    args.out.mkdir(parents=True, exist_ok=True)
    for name, schema in schemas.items():
        (args.out / f"{name}.schema.json").write_text(json.dumps(schema, indent=2) + "\n")
    print(f"wrote {len(schemas)} schemas to {args.out}")
    return EXIT_OK


def _passwd(args: argparse.Namespace) -> int:
    password = (
        sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass(f"password for {args.username}: ")
    )
    if not password:
        print("uns passwd: empty password refused", file=sys.stderr)
        return EXIT_CONFIG
    print(f'{args.username}: {{password_hash: "{hash_password(password)}", role: viewer}}')
    return EXIT_OK


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        found.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``uns`` console script; returns the process exit code."""
    try:
        return _main(argv)
    except BrokenPipeError:
        if not _stdout_gone():
            raise  # another pipe or socket (a file the command writes, a client inside it): a failure to show
        # the reader of our output went away (`uns schema | head`): say nothing, as other shell tools; the rest
        # of the output has nowhere to go (pointed at /dev/null, or the flush at exit raises again)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


def _stdout_gone() -> bool:
    """Whether the reader of our stdout went away: its pipe or socket reports an error (Linux: no reader left).

    Where ``poll`` cannot tell (no ``select.poll``, stdout not a file), a broken pipe is taken to be stdout's.
    """
    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
    except (AttributeError, ValueError, OSError):
        return True
    poller.register(fd, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def _main(argv: Sequence[str] | None) -> int:
    limit_arenas()  # before any thread starts (uns/memory.py says why)
    if sys.stderr is not None and not faulthandler.is_enabled():  # pytest has its own on
        faulthandler.enable()  # a crash in a C extension prints each thread's Python stack, not nothing at all
    # `--start -7d` as the docs write it (argparse alone only takes `--start=-7d`)
    args = _parser().parse_args(join_relative_times(sys.argv[1:] if argv is None else argv))
    if args.command == "schema":
        return _schema(args)
    if args.command == "passwd":
        return _passwd(args)
    try:
        config = args.config or (Path(os.environ["UNS_CONFIG"]) if os.environ.get("UNS_CONFIG") else None)
        settings = load_settings(config_file=config, overrides=_overrides(args), environ=os.environ)
        configure_logging(settings.log_level)
        if args.command == "historian" and args.historian_command == "export":
            return run_export(args, settings)
        if args.command == "query":
            return run_query(args, settings)
        if args.command == "fleet":
            enterprise = plant_of(settings).enterprise.id
            return run_fleet(args, url=settings.broker.url, enterprise=enterprise, data_dir=settings.data_dir)
        if args.command == "transforms":
            return run_transforms(args, settings, plant_of(settings, demo=settings.demo))
        if args.command == "rules":
            return run_rules(args, settings, plant_of(settings, demo=settings.demo))
        if args.command == "sink":
            return _sink(args, settings)
        # the hub's wiring loads every component (the demo's when it runs); the commands above need none of it
        from hub.app import (
            demo_mes_rules_apply,
            mes_section,
            run_bridges,
            run_broker,
            run_historian,
            run_host,
            run_sim,
            run_up,
            run_web,
        )

        _freeze_loaded()

        if args.command == "mes" and args.mes_view is None:
            # the MES adapter writes through the historian's single DuckDB writer: one process runs both
            plant = plant_of(settings)
            mes_on = settings.model_copy(update={"mes": settings.mes.model_copy(update={"enabled": True})})
            _run(mes_on, run_historian(mes_on, plant, ready=_ready))
            return EXIT_OK
        if args.command == "mes":
            # the MES settings of the hub these settings run (uns up): the CLI answers as its /api/mes; the demo's
            # rules and the shipped plant only where the demo plant runs (hub.app.demo_mes_rules_apply)
            plant = plant_of(settings, demo=demo_mes_rules_apply(settings))
            section = mes_section(settings, plant)
            return run_mes(args, settings.model_copy(update={"mes": section}), equipment=plant.equipment_paths())
        if args.command == "up":
            plant = plant_of(settings, demo=settings.demo)
            hand_offs = parse_hand_offs(args.hand_off)
            _run(settings, run_up(settings, plant, ready=_ready, config_file=config, hand_offs=hand_offs))
        elif args.command == "broker":
            _run(settings, run_broker(settings, ready=_ready))
        elif args.command == "bridge":
            _run(settings, run_bridges(settings, args.kind, ready=_ready))
        elif args.command == "historian":
            plant = plant_of(settings)
            _run(settings, run_historian(settings, plant, ready=_ready))
        elif args.command == "web":
            _run(settings, run_web(settings, plant_of(settings), ready=_ready))
        elif args.command == "edge":
            edge = run_edge(
                args, url=settings.broker.url, ca_file=settings.broker.ca_file,
                enterprise=plant_of(settings).enterprise.id, data_dir=settings.data_dir, ready=_ready,
            )  # fmt: skip
            _run(settings, edge)
        elif args.command == "sim":
            _run(settings, run_sim(settings, ready=_ready))
        else:
            plant = plant_of(settings)
            _run(settings, run_host(settings, plant, ready=_ready))
    except UnsError as exc:
        print(f"uns {args.command}: {exc}", file=sys.stderr)
        return EXIT_CONFIG if isinstance(exc, ConfigError) else EXIT_FAILED
    except BaseExceptionGroup as group:  # a part failed while running: say which, once
        for leaf in _leaves(group):
            print(f"uns {args.command}: {type(leaf).__name__}: {leaf}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

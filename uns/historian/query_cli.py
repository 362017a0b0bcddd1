"""``uns query``: the historian's queries from a shell, on the DuckDB file or over the hub's HTTP API.

Without ``--api`` it opens the file read-only; while a running hub holds the file (DuckDB allows
one writer process) it asks that hub over HTTP instead and says so on stderr (``uns.query.cli.answer``).
Both ways give the same document (``uns.historian.query_api``), printed as an aligned table, JSON or CSV.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from model.config import Settings
from uns.errors import BadArgument, UnknownSeries, UnsError
from uns.historian.queries import History
from uns.historian.query_api import answer_bytes
from uns.historian.query_buckets import FILLS
from uns.query.args import Params
from uns.query.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, ApiFailed, answer, join_relative_times, render
from uns.settings import load_settings

__all__ = ["add_query_parser", "main", "run_query"]

# sub-command -> (endpoint, positional argument -> parameter)
_COMMANDS = {
    "series": "series",
    "last": "last",
    "raw": "raw",
    "agg": "aggregate",
    "states": "states",
    "asof": "asof",
    "dead-letters": "dead-letters",
    "counts": "counts",
}
_FLAGS = {"topic": "TOPIC", "match": "MATCH"}  # every other parameter is spelled --<name>


def add_query_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``query`` and its sub-commands to the ``uns`` parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--tz", default="UTC", help="time zone of times without an offset and of the output (UTC)")
    common.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output format")
    common.add_argument("--db", type=Path, help="historian DuckDB file (default: historian.path or <data_dir>/...)")
    common.add_argument("--api", metavar="URL", help="ask a running hub over HTTP, e.g. http://127.0.0.1:8080")
    common.add_argument("--sink", metavar="NAME", help="read the PostgreSQL sink NAME of the settings (last and raw)")
    span = argparse.ArgumentParser(add_help=False)
    span.add_argument("--start", help="ISO-8601, now, or relative like -15m, -2h, -7d (default -1h)")
    span.add_argument("--end", help="same forms as --start (default now)")
    limit = argparse.ArgumentParser(add_help=False)
    limit.add_argument("--limit", help="most rows returned (default 10000)")

    query = subparsers.add_parser("query", help="query the historian: series, last, raw, agg, states, asof, ...")
    commands = query.add_subparsers(dest="query_command", required=True, metavar="QUERY")
    series = commands.add_parser("series", parents=[common], help="list stored series")
    series.add_argument("match", nargs="?", help="MQTT filter over topics (default #)")
    last = commands.add_parser("last", parents=[common], help="latest value of topics or filters")
    last.add_argument("match", nargs="+", help="topics or MQTT filters")
    raw = commands.add_parser("raw", parents=[common, span, limit], help="raw samples of one topic")
    raw.add_argument("topic")
    agg = commands.add_parser("agg", parents=[common, span], help="one topic in time buckets")
    agg.add_argument("topic")
    agg.add_argument("--bucket", help="bucket size like 15s, 1m, 1h, 1d (default 1m)")
    agg.add_argument("--agg", help="comma list of avg,min,max,first,last,count (default all)")
    agg.add_argument("--fill", choices=FILLS, help="empty buckets: none, null (default) or previous")
    states = commands.add_parser("states", parents=[common, span], help="time in each state, per series")
    states.add_argument("match", help="topic or MQTT filter, e.g. acme/dallas/bottling/line1/+/data/State")
    asof = commands.add_parser("asof", parents=[common, span, limit], help="samples with context values")
    asof.add_argument("topic")
    asof.add_argument("--context", action="append", help="context topic (repeat), a series or .../mes/<event>")
    dead = commands.add_parser("dead-letters", parents=[common], help="messages the historian refused")
    dead.add_argument("--limit", help="most rows (default 100)")
    commands.add_parser("counts", parents=[common], help="rows and time span per table")


def _params(args: argparse.Namespace) -> Params:
    params: dict[str, list[str]] = {"tz": [args.tz]}
    for key in ("match", "topic", "start", "end", "limit", "bucket", "agg", "fill", "context"):
        value = getattr(args, key, None)
        if value is not None:
            params[key] = list(value) if isinstance(value, list) else [str(value)]
    return params


def run_query(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``uns query <sub-command>``; returns the exit code (2 for a bad argument, naming it)."""
    command = args.query_command
    endpoint = _COMMANDS[command]
    params = _params(args)
    try:
        if getattr(args, "sink", None):
            from uns.sinks.postgres_query import sink_document  # loads psycopg and the sinks: only for --sink

            document = sink_document(settings, args.sink, endpoint, params)
        else:
            document = answer(
                args,
                settings,
                f"history/{endpoint}",
                params,
                lambda database: answer_bytes(History(database), endpoint, params),
                program="uns query",
            )
    except BadArgument as exc:
        return _fail(command, f"{_FLAGS.get(exc.field, '--' + exc.field)}: {exc.reason}", EXIT_USAGE)
    except (UnknownSeries, UnsError) as exc:
        return _fail(command, str(exc), EXIT_FAILED)
    except ApiFailed as exc:
        return _fail(command, str(exc), EXIT_FAILED)
    sys.stdout.write(render(document, args.format))
    if document.get("truncated"):
        print(f"uns query {command}: showing the first {document.get('limit')} rows; raise --limit", file=sys.stderr)
    return EXIT_OK


def _fail(command: str, message: str, code: int) -> int:
    print(f"uns query {command}: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m uns.historian.query_cli query ...``: the same as ``uns query`` with settings from ``UNS_*``."""
    parser = argparse.ArgumentParser(prog="uns", description="query the uns-hub historian")
    parser.add_argument("--config", type=Path, help="hub settings YAML (env UNS_CONFIG)")
    add_query_parser(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(join_relative_times(sys.argv[1:] if argv is None else argv))
    config = args.config or (Path(os.environ["UNS_CONFIG"]) if os.environ.get("UNS_CONFIG") else None)
    try:
        settings = load_settings(config_file=config, overrides={}, environ=os.environ)
    except UnsError as exc:
        print(f"uns query: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return run_query(args, settings)


if __name__ == "__main__":
    sys.exit(main())

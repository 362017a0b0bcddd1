"""``uns mes <view>``: the MES views from the historian file, or over HTTP from a running hub."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection
from pathlib import Path

from model.config import Settings
from uns.clock import utc_now
from uns.errors import BadArgument, UnsError
from uns.mes.scope import UnknownPath
from uns.mes.views_api import VIEW_PARAMS, VIEWS, run_view
from uns.query.args import Params
from uns.query.cli import ApiFailed, answer, render

__all__ = ["add_mes_parser", "run_mes"]

_EXIT_OK, _EXIT_FAILED, _EXIT_USAGE = 0, 1, 2
_HELP = {
    "path": "equipment path (a cell, a line, or higher)",
    "start": "from (ISO time, now, -8h, -7d)",
    "end": "until (default now)",
    "tz": "time zone of the answer and of day groups (default UTC)",
    "by": "grouping",
    "line": "only this line's orders",
    "status": "orders: released, running or completed; maintenance: open, opened, started, closed, cancelled",
    "kind": "maintenance orders: any, planned or corrective",
    "fault_code": "only this fault code",
    "rank": "faults Pareto by time (default) or count",
    "characteristic": "inspected characteristic",
    "subgroup": "SPC subgroup size (1 = I-MR)",
    "order_id": "work order",
    "lot": "lot id",
    "direction": "backward (what went in) or forward (where it went)",
    "depth": "how many levels at most",
    "metric": "MQTT filter over data topics (repeatable)",
    "limit": "rows at most",
}


def add_mes_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """``uns mes <view> [--param value ...]``, one sub-command per view."""
    mes = subparsers.add_parser(
        "mes",
        help="run the MES adapter against --broker, or ask a view: oee, downtime, orders, spc, genealogy, ...",
        description="Without a VIEW: run the MES adapter (with the historian, whose DuckDB file it shares) against"
        " --broker, like `uns historian` with mes.enabled. With a VIEW: print that view.",
    )
    mes.add_argument("--http-port", type=int, help="without a VIEW: the HTTP API port, 0 = any free")
    views = mes.add_subparsers(dest="mes_view", metavar="VIEW")
    for view in VIEWS:
        parser = views.add_parser(view, help=f"the {view} view")
        for param in VIEW_PARAMS[view]:
            flag = "--" + param.replace("_", "-")
            repeat = {"action": "append"} if param == "metric" else {}
            parser.add_argument(flag, dest=f"p_{param}", metavar=param.upper(), help=_HELP.get(param, param), **repeat)  # type: ignore[arg-type]
        parser.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output (table)")
        parser.add_argument("--db", type=Path, help="historian file (default <data_dir>/historian.duckdb)")
        parser.add_argument("--api", metavar="URL", help="ask a running hub over HTTP, e.g. http://127.0.0.1:8080")
    return mes


def _params(args: argparse.Namespace) -> Params:
    params: dict[str, list[str]] = {}
    for param in VIEW_PARAMS[args.mes_view]:
        value = getattr(args, f"p_{param}", None)
        if value is not None:
            params[param] = list(value) if isinstance(value, list) else [str(value)]
    return params


def run_mes(args: argparse.Namespace, settings: Settings, *, equipment: Collection[str] | None = None) -> int:
    """Run ``uns mes <view>``; exit 2 names a bad parameter, 1 a failure (an unknown path among them).

    ``equipment``: the plant file's paths, for the same unknown-path check as ``/api/mes``.
    """
    view = args.mes_view
    params = _params(args)
    section = settings.mes
    try:
        document = answer(
            args,
            settings,
            f"mes/{view}",
            params,
            lambda database: run_view(database.connection, section, view, params, now=utc_now(), equipment=equipment),
            program="uns mes",
        )
    except BadArgument as exc:
        print(f"uns mes {view}: --{exc.field.replace('_', '-')}: {exc.reason}", file=sys.stderr)
        return _EXIT_USAGE
    except (UnsError, ApiFailed, UnknownPath) as exc:
        print(f"uns mes {view}: {exc}", file=sys.stderr)
        return _EXIT_FAILED
    if "rows" not in document:  # a chart or a tree: one object
        document = {"rows": [document]} if args.format != "json" else document
    sys.stdout.write(render(document, args.format))
    return _EXIT_OK

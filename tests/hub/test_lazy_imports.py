"""A production hub does not load what only the demo or an unconfigured sink uses (start time and memory)."""

from __future__ import annotations

import json
import subprocess
import sys

_DEMO_ONLY = ("asyncua", "snap7", "aiocoap", "demo.business", "bridges.sim.service")
"""The simulated plant's servers and the demo's business systems (``hub/demo.py``)."""
_BRIDGE_ONLY = ("pymodbus",)
"""A bridge's client library (``bridges/registry.py`` imports a bridge when one of its kind is built)."""
_SINK_ONLY = ("sqlalchemy", "psycopg", "aio_pika")
"""The sinks' client libraries (``uns/sinks/registry.py`` imports a writer when a sink of its kind is built)."""


def _loaded_by(statement: str, names: tuple[str, ...]) -> list[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps([n for n in {list(names)!r} if n in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60)
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


def test_the_composition_root_loads_no_demo_server_and_no_sink_client() -> None:
    assert _loaded_by("import hub.app, hub.cli", _DEMO_ONLY + _BRIDGE_ONLY + _SINK_ONLY) == []


def test_the_demo_module_loads_the_simulated_servers() -> None:
    # the guard above can fail: the same check sees them once the demo is imported
    assert _loaded_by("import hub.demo", ("asyncua", "demo.business")) == ["asyncua", "demo.business"]


def test_a_sink_writer_loads_its_client_when_built() -> None:
    statement = (
        "from model.sinks import PostgresSinkConfig\n"
        "from uns.sinks.registry import _writer\n"
        "_writer(PostgresSinkConfig(kind='postgres', name='pg', dsn='postgresql://u@127.0.0.1:1/db'))"
    )
    assert _loaded_by(statement, ("psycopg", "sqlalchemy")) == ["psycopg"]

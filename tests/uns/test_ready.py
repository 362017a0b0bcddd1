"""``uns.ready``: the one ready line of the hub, a sink and an edge agent, to the byte, and its endpoints read back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from tests.exports import assert_all_is_honest
from uns.ready import ready_endpoints, ready_line

_PG_TARGET = "postgresql://uns:***@db:5432/hist schema uns"

# prefix, endpoints, notes, the line as supervisors, docs and tests read it
_LINES: list[tuple[str, Mapping[str, str | None], Sequence[str], str]] = [
    (
        "uns-hub ready",
        {"mqtt": "mqtt://127.0.0.1:1883", "ws": "ws://127.0.0.1:9001", "mqtts": None},
        ["ANONYMOUS ACCESS ON: demo only, see broker.yaml"],
        "uns-hub ready: mqtt=mqtt://127.0.0.1:1883 ws=ws://127.0.0.1:9001"
        "  [ANONYMOUS ACCESS ON: demo only, see broker.yaml]",
    ),
    (
        "uns-hub ready",
        {"mqtt": "mqtt://127.0.0.1:1883", "sinks": "", "state": "spBv1.0/STATE/uns-hub"},
        ["one", "two"],
        "uns-hub ready: mqtt=mqtt://127.0.0.1:1883 state=spBv1.0/STATE/uns-hub  [one]  [two]",
    ),
    (
        "uns-hub ready",
        {"sim": "modbus=127.0.0.1:5020", "seed": "7"},
        [],
        "uns-hub ready: sim=modbus=127.0.0.1:5020 seed=7",
    ),
    ("uns-hub ready", {"mqtt": None}, ["no endpoint"], "uns-hub ready:   [no endpoint]"),
    (
        "uns-sink ready",
        {
            "mqtt": "mqtt://127.0.0.1:1883",
            "sink": "pg",
            "kind": "postgres",
            "client_id": "uns-sink-pg",
            "target": _PG_TARGET,
            "topics": "$share/pg/acme/#",
        },
        [],
        "uns-sink ready: mqtt=mqtt://127.0.0.1:1883 sink=pg kind=postgres client_id=uns-sink-pg "
        "target=postgresql://uns:***@db:5432/hist schema uns topics=$share/pg/acme/#",
    ),
    (
        "uns-edge ready",
        {
            "agent": "line1",
            "mqtt": "mqtt://line1:***@127.0.0.1:1883",
            "config": "acme/hub/edge/line1/config",
            "status": "acme/hub/edge/line1/status",
            "version": "-",
            "data": "data",
        },
        [],
        "uns-edge ready: agent=line1 mqtt=mqtt://line1:***@127.0.0.1:1883 config=acme/hub/edge/line1/config "
        "status=acme/hub/edge/line1/status version=- data=data",
    ),
]


@pytest.mark.parametrize(("prefix", "endpoints", "notes", "line"), _LINES)
def test_a_ready_line_is_its_prefix_endpoints_in_order_then_notes(
    prefix: str, endpoints: Mapping[str, str | None], notes: Sequence[str], line: str
) -> None:
    assert ready_line(prefix, endpoints, notes) == line


def test_notes_are_optional() -> None:
    assert ready_line("uns-sink ready", {"sink": "pg"}) == "uns-sink ready: sink=pg"


# endpoints, what ready_endpoints reads back from their line
_READ_BACK: list[tuple[Mapping[str, str | None], dict[str, str]]] = [
    (
        {"mqtt": "mqtt://127.0.0.1:1883", "http": "http://127.0.0.1:8080"},
        {"mqtt": "mqtt://127.0.0.1:1883", "http": "http://127.0.0.1:8080"},
    ),
    ({"mqtt": "mqtt://h:1883", "ws": None, "sinks": ""}, {"mqtt": "mqtt://h:1883"}),  # no value: not in the line
    (  # split at the first '=': the value keeps the others
        {"sim": "modbus=127.0.0.1:5020,opcua=opc.tcp://127.0.0.1:4840"},
        {"sim": "modbus=127.0.0.1:5020,opcua=opc.tcp://127.0.0.1:4840"},
    ),
    ({"edge": "fins-utilities->utilities"}, {"edge": "fins-utilities->utilities"}),
    (  # a value with spaces: its first word only (the sink's target)
        {"target": _PG_TARGET, "topics": "acme/#"},
        {"target": "postgresql://uns:***@db:5432/hist", "topics": "acme/#"},
    ),
]


@pytest.mark.parametrize(("endpoints", "read"), _READ_BACK)
def test_the_endpoints_read_back_from_a_line(endpoints: Mapping[str, str | None], read: dict[str, str]) -> None:
    line = ready_line("uns-hub ready", endpoints, ["WEB UI WITHOUT LOGIN: role admin (demo only, see broker.yaml)"])
    assert ready_endpoints(line) == read


def test_a_line_with_its_newline_reads_the_same() -> None:
    line = ready_line("uns-edge ready", {"agent": "a1", "version": "3"})
    assert ready_endpoints(line + "\n") == {"agent": "a1", "version": "3"}


def test_the_module_exports_what_it_defines() -> None:
    assert_all_is_honest("uns.ready", in_order=True)

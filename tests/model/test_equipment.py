"""The plant file model: ids, reserved words, duplicates, time zones, bindings, resolve, units."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from model.equipment import Cell, MetricMeta, Plant, ResolvedPath, slug
from model.topic import UnsTopic

_TREE: dict[str, Any] = {
    "enterprise": {
        "id": "acme",
        "name": "ACME",
        "sites": [
            {
                "id": "dallas",
                "timezone": "America/Chicago",
                "metrics": {"Energy": {"unit": "kWh"}},
                "areas": [
                    {
                        "id": "bottling",
                        "lines": [
                            {
                                "id": "line1",
                                "metrics": {"Speed": {"unit": "bpm", "description": "Line rate"}},
                                "cells": [
                                    {
                                        "id": "filler",
                                        "metrics": {
                                            "Temperature": {"unit": "degC", "datatype": "Float"},
                                            "Production/GoodCount": {"description": "no unit"},
                                        },
                                    },
                                    {"id": "capper"},
                                ],
                            }
                        ],
                    },
                    {"id": "packaging", "lines": [{"id": "line3", "cells": [{"id": "palletizer"}]}]},
                ],
            }
        ],
    },
    "bindings": [
        {"group": "acme-dallas", "node": "modbus-bottling", "path": "acme/dallas/bottling"},
        {
            "group": "acme-dallas",
            "node": "modbus-bottling",
            "device": "filler",
            "path": "acme/dallas/bottling/line1/filler",
        },
        {"group": "acme-dallas", "node": "opcua", "device": "Pal 1", "path": "acme/dallas/packaging/line3/palletizer"},
        {"group": "acme-dallas", "node": "site-meter", "path": "acme/dallas"},
    ],
}


def _plant_data() -> dict[str, Any]:
    return copy.deepcopy(_TREE)


def _errors(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(dotted loc, message) of every validation error."""
    with pytest.raises(ValidationError) as info:
        Plant.model_validate(data)
    return [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in info.value.errors()]


@pytest.fixture(scope="module")
def plant() -> Plant:
    return Plant.model_validate(_plant_data())


def test_equipment_paths(plant):
    assert plant.equipment_paths() == {
        "acme",
        "acme/dallas",
        "acme/dallas/bottling",
        "acme/dallas/bottling/line1",
        "acme/dallas/bottling/line1/filler",
        "acme/dallas/bottling/line1/capper",
        "acme/dallas/packaging",
        "acme/dallas/packaging/line3",
        "acme/dallas/packaging/line3/palletizer",
    }
    # a copy: callers cannot change the index
    plant.equipment_paths().add("x")
    assert "x" not in plant.equipment_paths()


def test_equipment_lookup(plant):
    cell = plant.equipment("acme/dallas/bottling/line1/filler")
    assert isinstance(cell, Cell)
    assert cell.id == "filler"
    assert plant.equipment("acme/nowhere") is None


@pytest.mark.parametrize(
    ("group", "node", "device", "expected"),
    [
        ("acme-dallas", "modbus-bottling", None, ResolvedPath("acme/dallas/bottling", bound=True)),
        ("acme-dallas", "modbus-bottling", "filler", ResolvedPath("acme/dallas/bottling/line1/filler", bound=True)),
        ("acme-dallas", "opcua", "Pal 1", ResolvedPath("acme/dallas/packaging/line3/palletizer", bound=True)),
        ("acme-dallas", "site-meter", None, ResolvedPath("acme/dallas", bound=True)),
        # a device of a bound node without its own binding is unbound: no fallback to the node's path
        (
            "acme-dallas",
            "modbus-bottling",
            "capper",
            ResolvedPath("acme/unbound/acme-dallas/modbus-bottling/capper", bound=False),
        ),
        ("acme-dallas", "opcua", None, ResolvedPath("acme/unbound/acme-dallas/opcua", bound=False)),
        ("Other Group", "Node.1", "Dev #2", ResolvedPath("acme/unbound/other-group/node-1/dev--2", bound=False)),
        ("g", "n", "__x__", ResolvedPath("acme/unbound/g/n/x__", bound=False)),
        ("g", "n", "ÄÖ", ResolvedPath("acme/unbound/g/n/_", bound=False)),
        # binding keys are exact: case differs, so unbound
        (
            "ACME-DALLAS",
            "modbus-bottling",
            "filler",
            ResolvedPath("acme/unbound/acme-dallas/modbus-bottling/filler", bound=False),
        ),
    ],
)
def test_resolve(plant, group, node, device, expected):
    resolved = plant.resolve(group, node, device)
    assert resolved == expected
    # every resolved path makes a valid UNS topic
    assert str(UnsTopic.for_metric(resolved.path, "Temp")) == f"{expected.path}/data/Temp"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("filler", "filler"),
        ("Filler 1", "filler-1"),
        ("filler-1", "filler-1"),
        ("a.b/c+d#e", "a-b-c-d-e"),
        ("--x", "x"),
        ("_x", "x"),
        ("-_-", "_"),
        ("", "_"),
        ("Ü", "_"),
        ("x" * 80, "x" * 64),
        ("MiXeD_case-9", "mixed_case-9"),
    ],
)
def test_slug(text, expected):
    assert slug(text) == expected


@pytest.mark.parametrize(
    ("path", "metric", "unit"),
    [
        ("acme/dallas/bottling/line1/filler", "Temperature", "degC"),
        ("acme/dallas/bottling/line1/filler", "Production/GoodCount", None),
        ("acme/dallas/bottling/line1/filler", "Pressure", None),
        ("acme/dallas/bottling/line1", "Speed", "bpm"),
        ("acme/dallas", "Energy", "kWh"),
        # metrics hang at one level: a line's metric is not its cell's
        ("acme/dallas/bottling/line1/capper", "Speed", None),
        ("acme/nowhere", "Speed", None),
    ],
)
def test_unit_of(plant, path, metric, unit):
    assert plant.unit_of(path, metric) == unit


def test_metric_meta(plant):
    assert plant.metric_meta("acme/dallas/bottling/line1/filler", "Temperature") == MetricMeta(
        unit="degC", description="", datatype="Float"
    )


def _set(data: dict[str, Any], dotted: str, value: object) -> dict[str, Any]:
    """Set a value at a dotted path with integer list indexes: ``enterprise.sites.0.id``."""
    parts = dotted.split(".")
    node: Any = data
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


@pytest.mark.parametrize(
    ("where", "value", "loc", "message"),
    [
        ("enterprise.id", "Acme", "enterprise.id", "id 'Acme' is not a slug"),
        ("enterprise.id", "", "enterprise.id", "id '' is not a slug"),
        ("enterprise.id", "a" * 65, "enterprise.id", "is not a slug"),
        (
            "enterprise.sites.0.areas.0.id",
            "bottling area",
            "enterprise.sites.0.areas.0.id",
            "'bottling area' is not a slug",
        ),
        ("enterprise.sites.0.areas.0.lines.0.id", "_line", "enterprise.sites.0.areas.0.lines.0.id", "not a slug"),
        ("enterprise.id", "data", "enterprise.id", "id 'data' is a reserved class word"),
        ("enterprise.sites.0.areas.0.id", "mes", "enterprise.sites.0.areas.0.id", "id 'mes' is a reserved class word"),
        (
            "enterprise.sites.0.areas.0.lines.0.cells.0.id",
            "cmd",
            "enterprise.sites.0.areas.0.lines.0.cells.0.id",
            "'cmd' is a reserved",
        ),
        (
            "enterprise.sites.0.areas.0.lines.0.id",
            "kpi",
            "enterprise.sites.0.areas.0.lines.0.id",
            "'kpi' is a reserved",
        ),
        ("enterprise.sites.0.id", "hub", "enterprise.sites.0.id", "site id 'hub' is reserved"),
        ("enterprise.sites.0.id", "unbound", "enterprise.sites.0.id", "site id 'unbound' is reserved"),
        (
            "enterprise.sites.0.timezone",
            "Mars/Olympus",
            "enterprise.sites.0.timezone",
            "timezone 'Mars/Olympus' is not an IANA time zone",
        ),
        ("enterprise.sites.0.timezone", "../etc", "enterprise.sites.0.timezone", "is not an IANA time zone"),
        ("enterprise.sites.0.colour", "red", "enterprise.sites.0.colour", "Extra inputs are not permitted"),
        (
            "enterprise.sites.0.metrics",
            {"a//b": {}},
            "enterprise.sites.0.metrics",
            "metric name 'a//b': name segment 2 is empty",
        ),
        ("enterprise.sites.0.metrics", {"T": {"units": "x"}}, "enterprise.sites.0.metrics.T.units", "Extra inputs"),
        ("bindings.0.group", "a/b", "bindings.0.group", "Sparkplug id 'a/b' may not contain '/'"),
        ("bindings.0.node", "", "bindings.0.node", "a Sparkplug id may not be empty"),
        ("bindings.1.device", "d+", "bindings.1.device", "may not contain '+'"),
    ],
)
def test_field_errors_name_the_bad_value(where, value, loc, message):
    errors = _errors(_set(_plant_data(), where, value))
    assert len(errors) == 1
    assert errors[0][0] == loc
    assert message in errors[0][1]


@pytest.mark.parametrize(
    ("where", "value", "loc", "message"),
    [
        (
            "enterprise.sites.0.areas.1.id",
            "bottling",
            "enterprise.sites.0.areas.1.id",
            "duplicate id 'bottling': acme/dallas/bottling is already declared at enterprise.sites[0].areas[0]",
        ),
        (
            "enterprise.sites.0.areas.0.lines.0.cells.1.id",
            "filler",
            "enterprise.sites.0.areas.0.lines.0.cells.1.id",
            "duplicate id 'filler': acme/dallas/bottling/line1/filler is already declared at "
            "enterprise.sites[0].areas[0].lines[0].cells[0]",
        ),
        (
            "bindings.1.path",
            "acme/dallas/bottling/line1/filer",
            "bindings.1.path",
            "no equipment at 'acme/dallas/bottling/line1/filer'; did you mean 'acme/dallas/bottling/line1/filler'?",
        ),
        ("bindings.1.path", "zzz", "bindings.1.path", "no equipment at 'zzz'"),
        (
            "bindings.1.path",
            "acme/dallas/bottling/line1/filler/",
            "bindings.1.path",
            "no equipment at 'acme/dallas/bottling/line1/filler/'; did you mean 'acme/dallas/bottling/line1/filler'?",
        ),
        ("bindings.1.path", "", "bindings.1.path", "no equipment at ''"),
    ],
)
def test_tree_errors_name_the_duplicate_and_path(where, value, loc, message):
    data = _plant_data()
    # keep the packaging area's binding out: a duplicate area would hide its tree too
    data["bindings"] = [b for b in data["bindings"] if "packaging" not in b["path"]]
    assert _errors(_set(data, where, value)) == [(loc, message)]


def test_duplicate_device_binding():
    data = _set(_plant_data(), "bindings.2.node", "modbus-bottling")
    _set(data, "bindings.2.device", "filler")
    assert _errors(data) == [
        ("bindings.2", "group 'acme-dallas' node 'modbus-bottling' device 'filler' is already bound by bindings[1]")
    ]


def test_duplicate_node_binding():
    data = _plant_data()
    data["bindings"].append({"group": "acme-dallas", "node": "site-meter", "path": "acme"})
    assert _errors(data) == [("bindings.4", "group 'acme-dallas' node 'site-meter' is already bound by bindings[3]")]


def test_same_device_id_under_other_nodes_is_fine():
    data = _plant_data()
    data["bindings"].append(
        {"group": "acme-dallas", "node": "other", "device": "filler", "path": "acme/dallas/bottling/line1/capper"}
    )
    plant = Plant.model_validate(data)
    assert plant.resolve("acme-dallas", "other", "filler").path == "acme/dallas/bottling/line1/capper"


def test_same_id_in_different_parents_is_fine():
    data = _set(_plant_data(), "enterprise.sites.0.areas.1.lines.0.id", "line1")
    _set(data, "bindings.2.path", "acme/dallas/packaging/line1/palletizer")
    plant = Plant.model_validate(data)
    assert "acme/dallas/packaging/line1/palletizer" in plant.equipment_paths()


def test_all_tree_problems_reported_together():
    data = _set(_plant_data(), "enterprise.sites.0.areas.1.id", "bottling")
    _set(data, "bindings.2.path", "acme/dallas/packaging/line3/palletizer")  # now gone: its area is the duplicate
    _set(data, "bindings.3.path", "acme/texas")
    locs = [loc for loc, _ in _errors(data)]
    assert locs == ["enterprise.sites.0.areas.1.id", "bindings.2.path", "bindings.3.path"]


def test_missing_enterprise():
    assert _errors({"bindings": []}) == [("enterprise", "Field required")]


def test_minimal_plant_defaults():
    plant = Plant.model_validate({"enterprise": {"id": "acme"}})
    assert plant.equipment_paths() == {"acme"}
    assert plant.bindings == []
    assert plant.resolve("g", "n") == ResolvedPath("acme/unbound/g/n", bound=False)


def test_plant_is_frozen(plant):
    with pytest.raises(ValidationError, match="frozen"):
        plant.enterprise = plant.enterprise

"""The edge engine against Sparkplug 3.0's rules on aliases and ``Node Control/*``, each test named by its tck-id.

A real edge node (``EdgeNode`` with a scripted source) publishes through Mosquitto to an independent
host (``spb_host``: raw paho and protobuf) that also checks every message as it arrives.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bridges.testing import ScriptedSource
from tests.bridges.edge.conftest import edge_config, running_edge
from tests.bridges.edge.spb_host import BOOLEAN, DOUBLE, FLOAT, INT32, INT64, STRING, SpbHost, until
from tests.fixtures.mosquitto import Mosquitto
from uns.sparkplug import sparkplug_b_pb2 as pb

Metric = pb.Payload.Metric
REBIRTH = "Node Control/Rebirth"


def _births(host: SpbHost) -> list[tuple[str, str | None, Metric]]:
    """(kind, device, metric) of every metric of the first NBIRTH and its DBIRTHs."""
    nbirth = host.of("NBIRTH")[0]
    out = [("NBIRTH", None, m) for m in nbirth.payload.metrics]
    return out + [("DBIRTH", r.device, m) for r in host.of("DBIRTH") for m in r.payload.metrics]


def _named(host: SpbHost, name: str) -> Metric:
    return next(m for m in host.of("NBIRTH")[0].payload.metrics if m.name == name)


def _rebirth_without_alias(host: SpbHost) -> None:
    assert not _named(host, REBIRTH).HasField("alias")


def _rebirth_boolean_false(host: SpbHost) -> None:
    rebirth = _named(host, REBIRTH)
    assert (rebirth.datatype, rebirth.boolean_value) == (BOOLEAN, False)


def _bdseq_int64_by_name(host: SpbHost) -> None:
    bd_seq = _named(host, "bdSeq")
    assert (bd_seq.datatype, bd_seq.long_value, bd_seq.HasField("alias")) == (INT64, 0, False)


def _birth_aliases_have_names(host: SpbHost) -> None:
    unnamed = [(kind, device, m.alias) for kind, device, m in _births(host) if m.HasField("alias") and not m.name]
    assert unnamed == []
    # every other metric goes by alias in DATA, so each has one
    assert [m.name for _k, _d, m in _births(host) if not m.HasField("alias")] == ["bdSeq", REBIRTH]


def _aliases_unique_across_node_and_devices(host: SpbHost) -> None:
    aliases = [m.alias for _k, _d, m in _births(host) if m.HasField("alias")]
    assert len(aliases) == len(set(aliases)) == 6 + 6  # six health metrics, six device tags


def _data_by_alias_only(host: SpbHost) -> None:
    data = [m for kind in ("NDATA", "DDATA") for r in host.of(kind) for m in r.payload.metrics]
    assert data
    assert [m for m in data if m.HasField("name") or not m.HasField("alias")] == []


def _timestamps_everywhere(host: SpbHost) -> None:
    metrics = [m for kind in ("NBIRTH", "DBIRTH", "NDATA", "DDATA") for r in host.of(kind) for m in r.payload.metrics]
    assert [m.name or m.alias for m in metrics if not m.HasField("timestamp")] == []


@pytest.mark.parametrize(
    "check",
    [
        pytest.param(_rebirth_without_alias, id="tck-id-operational-behavior-data-commands-rebirth-name-aliases"),
        pytest.param(_rebirth_boolean_false, id="tck-id-operational-behavior-data-commands-rebirth-datatype+value"),
        pytest.param(_bdseq_int64_by_name, id="tck-id-payloads-nbirth-bdseq"),
        pytest.param(_birth_aliases_have_names, id="tck-id-payloads-alias-birth-requirement"),
        pytest.param(_aliases_unique_across_node_and_devices, id="tck-id-payloads-alias-uniqueness"),
        pytest.param(_data_by_alias_only, id="tck-id-payloads-alias-data-cmd-requirement"),
        pytest.param(_data_by_alias_only, id="tck-id-payloads-name-requirement"),
        pytest.param(_timestamps_everywhere, id="tck-id-payloads-name-birth-data-requirement"),
    ],
)
async def test_births_and_data(
    mosquitto: Mosquitto,
    spb_host: SpbHost,
    group: str,
    source: ScriptedSource,
    tmp_path: Path,
    check: Callable[[SpbHost], None],
) -> None:
    source.read("press", {"Temp": 20.0, "Count": 1, "Setpoint": 1.5, "Mode": "auto"})
    source.read("oven", {"Temp": 180.0, "On": True})
    async with running_edge(mosquitto.port, edge_config(group), source, tmp_path):
        await until(lambda: spb_host.count("DBIRTH") == 2, what="births")
        source.read("press", {"Count": 2})
        await until(lambda: spb_host.count("DDATA") >= 1 and spb_host.count("NDATA") >= 1, what="DDATA and NDATA")
    check(spb_host)
    assert spb_host.violations == []


async def test_ndeath_bdseq_by_name(
    mosquitto: Mosquitto, spb_host: SpbHost, group: str, source: ScriptedSource, tmp_path: Path
) -> None:
    """tck-id-payloads-ndeath-bdseq: the NDEATH's bdSeq, by name (no birth gives it an alias), matches the NBIRTH's."""
    async with running_edge(mosquitto.port, edge_config(group), source, tmp_path):
        await until(lambda: spb_host.count("NBIRTH") == 1, what="birth")
    await until(lambda: spb_host.count("NDEATH") == 1, what="NDEATH")
    (bd_seq,) = spb_host.of("NDEATH")[0].payload.metrics
    assert (bd_seq.name, bd_seq.HasField("alias"), bd_seq.datatype) == ("bdSeq", False, INT64)
    assert bd_seq.long_value == _named(spb_host, "bdSeq").long_value


async def test_rebirth_by_name_alone(
    mosquitto: Mosquitto, spb_host: SpbHost, group: str, source: ScriptedSource, tmp_path: Path
) -> None:
    """tck-id-operational-behavior-data-commands-ncmd-rebirth-name, -rebirth-action-2, -rebirth-action-3.

    A host that never saw our NBIRTH asks by name (as Tahu does, with no alias): a complete birth
    sequence follows, with the same bdSeq.
    """
    source.read("press", {"Count": 1})
    source.read("oven", {"Temp": 180.0})
    async with running_edge(mosquitto.port, edge_config(group), source, tmp_path) as node:
        await until(lambda: spb_host.count("DBIRTH") == 2, what="births")
        spb_host.ncmd("n1", [Metric(name=REBIRTH, datatype=BOOLEAN, boolean_value=True)])
        await until(lambda: spb_host.count("DBIRTH") == 4, what="the rebirth")
        assert spb_host.count("NBIRTH") == 2
        assert [m.long_value for m in spb_host.of("NBIRTH")[1].payload.metrics if m.name == "bdSeq"] == [0]
        assert node.stats.refused == 0
    assert spb_host.violations == []


_NOT_A_REBIRTH = [
    pytest.param(
        [Metric(name=REBIRTH, datatype=BOOLEAN, boolean_value=False)],
        f"{REBIRTH} needs the Boolean true (got False)",
        id="tck-id-operational-behavior-data-commands-ncmd-rebirth-value",
    ),
    pytest.param(
        [Metric(name=REBIRTH, datatype=INT32, int_value=1)],
        f"{REBIRTH!r}: metric {REBIRTH!r} declares Int32 but was born Boolean: Boolean value carried in int_value",
        id="tck-id-operational-behavior-data-commands-ncmd-metric-value",
    ),
    pytest.param(
        [
            Metric(name="Node Control/Reboot", datatype=BOOLEAN, boolean_value=True),
            Metric(name="Node Control/Next Server", datatype=BOOLEAN, boolean_value=True),
            Metric(name="Node Control/Scan Rate", datatype=INT64, long_value=500),
        ],
        "node metric 'Node Control/Scan Rate' is not in this edge node's NBIRTH",
        id="tck-id-operational-behavior-data-commands-ncmd-metric-name",
    ),
    pytest.param(
        [Metric(alias=0, boolean_value=False)],
        "node metric 'Bridge/Connected' is not writable",
        id="tck-id-payloads-alias-data-cmd-requirement-ncmd-by-alias",
    ),
]


@pytest.mark.parametrize(("metrics", "problem"), _NOT_A_REBIRTH)
async def test_ncmd_that_is_not_a_rebirth_is_refused_and_counted(
    mosquitto: Mosquitto,
    spb_host: SpbHost,
    group: str,
    source: ScriptedSource,
    tmp_path: Path,
    metrics: list[Metric],
    problem: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with running_edge(mosquitto.port, edge_config(group), source, tmp_path) as node:
        await until(lambda: spb_host.count("NBIRTH") == 1, what="birth")
        spb_host.ncmd("n1", metrics)
        await until(lambda: node.stats.refused == len(metrics), what="the refusals")
        # still serving: a rebirth by name works, and it is the only one
        spb_host.rebirth("n1")
        await until(lambda: spb_host.count("NBIRTH") == 2, what="a real rebirth")
        assert node.stats.births == 2
    assert problem in caplog.text  # the warning names the metric and what was wrong
    assert spb_host.violations == []


_DCMDS = [
    pytest.param("press", [Metric(name="Setpoint", datatype=FLOAT, float_value=2.5)], [("press", "Setpoint", 2.5)], 0,
                 id="tck-id-operational-behavior-data-commands-dcmd-metric-name-by-name"),
    pytest.param("press", [Metric(alias=8, float_value=3.5)], [("press", "Setpoint", 3.5)], 0,
                 id="tck-id-payloads-alias-data-cmd-requirement-dcmd-by-alias"),
    pytest.param("press", [Metric(name="Setpoint", datatype=DOUBLE, double_value=4.0)], [("press", "Setpoint", 4.0)], 0,
                 id="tck-id-operational-behavior-data-commands-dcmd-metric-value-compatible"),
    pytest.param("press", [Metric(name="Setpoint", datatype=STRING, string_value="fast")], [], 1,
                 id="tck-id-operational-behavior-data-commands-dcmd-metric-value"),
    pytest.param("press", [Metric(name="Setpoint", datatype=FLOAT, is_null=True)], [], 1,
                 id="tck-id-operational-behavior-data-commands-dcmd-metric-value-null"),
    pytest.param("press", [Metric(name="Nope", datatype=FLOAT, float_value=1.0)], [], 1,
                 id="tck-id-operational-behavior-data-commands-dcmd-metric-name"),
    pytest.param("press", [Metric(alias=11, boolean_value=True)], [], 1,
                 id="tck-id-payloads-alias-uniqueness-dcmd-alias-of-another-device"),
]  # fmt: skip


@pytest.mark.parametrize(("device", "metrics", "writes", "refused"), _DCMDS)
async def test_dcmd_by_name_or_alias(
    mosquitto: Mosquitto,
    spb_host: SpbHost,
    group: str,
    source: ScriptedSource,
    tmp_path: Path,
    device: str,
    metrics: list[Metric],
    writes: list[tuple[str, str, object]],
    refused: int,
) -> None:
    source.read("oven", {"Temp": 180.0})
    async with running_edge(mosquitto.port, edge_config(group), source, tmp_path) as node:
        await until(lambda: spb_host.count("DBIRTH") == 2, what="births")
        # aliases as declared: health 0-5, press 6-9 (Setpoint 8), oven 10-11 (On 11)
        assert spb_host.alias("n1", "press", "Setpoint") == 8
        assert spb_host.alias("n1", "oven", "On") == 11
        spb_host.dcmd("n1", device, metrics)
        spb_host.dcmd("n1", "press", [Metric(name="Setpoint", datatype=FLOAT, float_value=9.0)])  # a marker: last
        await until(lambda: ("press", "Setpoint", 9.0) in source.writes, what="the marker write")
        assert source.writes == [*writes, ("press", "Setpoint", 9.0)]
        assert node.stats.refused == refused
    assert spb_host.violations == []

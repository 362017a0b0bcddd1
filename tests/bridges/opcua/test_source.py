"""OpcUaSource against one real asyncua server: subscriptions, polling, quality, discovery, liveness, writes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from asyncua import ua
from asyncua.ua.status_codes import StatusCodes

from bridges.opcua import OpcUaSource
from bridges.source import TagSpec
from model.envelope import Quality
from tests.bridges.opcua.harness import config, running, until
from tests.bridges.opcua.plant_server import PlantServer, node_id, plant_server
from tests.fixtures.timers import timers_by_task
from uns.errors import BridgeError
from uns.sparkplug import DataType, MetricValue

_TYPED = ["Temperature", "Speed", "GoodCount", "Level", "Running", "Recipe", "LastChange"]
_EXPECTED = {
    "Temperature": (DataType.Double, 21.5),
    "Speed": (DataType.Float, 1.25),
    "GoodCount": (DataType.UInt32, 10),
    "Level": (DataType.Int16, -3),
    "Running": (DataType.Boolean, True),
    "Recipe": (DataType.String, "A"),
    "LastChange": (DataType.DateTime, 1735787045678),
}


def _nodes(names: list[str], **fields: object) -> list[dict[str, object]]:
    return [{"name": name, "node_id": node_id(name), **fields} for name in names]


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def plant() -> AsyncIterator[PlantServer]:
    """One server for the tests that leave it running and its nodes in place."""
    async with plant_server() as server:
        yield server


@pytest.mark.parametrize("mode", ["subscribe", "poll"])
async def test_values_of_several_types_arrive(plant: PlantServer, mode: str) -> None:
    await plant.write("Temperature", 21.5, ua.VariantType.Double)  # the server is shared: undo the other mode
    await plant.write("GoodCount", 10, ua.VariantType.UInt32)
    source = OpcUaSource(config=config(plant.endpoint, [{"id": "filler", "nodes": _nodes(_TYPED, mode=mode)}]))
    async with running(source) as events:
        specs = {spec.name: spec for spec in source.tags()}
        assert {name: spec.datatype for name, spec in specs.items()} == {n: t for n, (t, _) in _EXPECTED.items()}
        assert specs["Temperature"].unit == "degC"  # from the EngineeringUnits property
        await until(lambda: all(events.latest("filler", name) for name in _TYPED), what="every tag")
        assert {name: events.value("filler", name) for name in _TYPED} == {n: v for n, (_, v) in _EXPECTED.items()}
        assert events.get("filler", "LastChange").quality is Quality.good

        await plant.write("Temperature", 80.25, ua.VariantType.Double)
        await plant.write("GoodCount", 11, ua.VariantType.UInt32)
        await until(lambda: events.value("filler", "Temperature") == 80.25, what="Temperature 80.25")
        await until(lambda: events.value("filler", "GoodCount") == 11, what="GoodCount 11")
        written = await plant.read("Temperature")
        assert written.VariantType is ua.VariantType.Double
    stats = source.stats
    assert (stats.connects, stats.losses) == (1, 0)
    assert (stats.notifications > 0) == (mode == "subscribe")
    assert (stats.reads > 0) == (mode == "poll")


async def test_samples_carry_the_server_source_timestamp(plant: PlantServer) -> None:
    source = OpcUaSource(config=config(plant.endpoint, [{"id": "filler", "nodes": _nodes(["Temperature"])}]))
    async with running(source) as events:
        await until(lambda: events.latest("filler", "Temperature"), what="first value")
        await plant.write("Temperature", 30.0, ua.VariantType.Double)
        await until(lambda: events.value("filler", "Temperature") == 30.0, what="30.0")
        source_ts = (await plant.server.get_node(plant.node("Temperature")).read_data_value()).SourceTimestamp
        assert source_ts is not None
        assert events.get("filler", "Temperature").timestamp_ms == int(source_ts.timestamp() * 1000)


@pytest.mark.parametrize(
    ("status", "quality", "value"),
    [
        (StatusCodes.UncertainLastUsableValue, Quality.uncertain, 7.5),
        (StatusCodes.BadSensorFailure, Quality.bad, None),
        (StatusCodes.GoodLocalOverride, Quality.good, 7.5),
    ],
)
@pytest.mark.parametrize("mode", ["subscribe", "poll"])
async def test_status_codes_map_to_quality(
    plant: PlantServer, mode: str, status: int, quality: Quality, value: object
) -> None:
    source = OpcUaSource(config=config(plant.endpoint, [{"id": "filler", "nodes": _nodes(["Pressure"], mode=mode)}]))
    async with running(source) as events:
        await until(lambda: events.latest("filler", "Pressure"), what="first value")
        after = events.mark()
        await plant.write("Pressure", 7.5, ua.VariantType.Double, status=status)
        await until(lambda: events.since(after).latest("filler", "Pressure"), what="the change")
        latest = events.since(after).get("filler", "Pressure")
        assert (latest.quality, latest.value) == (quality, value)


async def test_browse_discovery_names_metrics_by_browse_path(plant: PlantServer) -> None:
    devices = [
        {"id": "capper", "browse": [{"root": "ns=2;s=Plant.Capper"}]},
        {"id": "filler", "nodes": _nodes(["Temperature"]), "browse": [{"root": "ns=2;s=Plant.Filler", "mode": "poll"}]},
    ]
    source = OpcUaSource(config=config(plant.endpoint, devices))
    async with running(source) as events:
        tags = source.tags()
        capper = [spec for spec in tags if spec.device == "capper"]
        assert capper == [
            TagSpec(device="capper", name="Torque", datatype=DataType.Float, description="ns=2;s=Plant.Capper.Torque"),
            TagSpec(device="capper", name="Motor/Rpm", datatype=DataType.UInt16,
                    description="ns=2;s=Plant.Capper.Motor.Rpm"),
            TagSpec(device="capper", name="Motor/Current", datatype=DataType.Double,
                    description="ns=2;s=Plant.Capper.Motor.Current"),
        ]  # fmt: skip
        filler = [spec.name for spec in tags if spec.device == "filler"]
        assert filler[0] == "Temperature"  # configured first; the browsed duplicate is skipped
        assert filler.count("Temperature") == 1
        assert "Temperature/EngineeringUnits" not in filler  # properties are not metrics
        assert set(filler) >= {"Speed", "GoodCount", "Setpoint", "Mode"}
        await until(lambda: events.value("capper", "Motor/Rpm") == 1450, what="Motor/Rpm")
        await until(lambda: events.value("filler", "Mode") == 2, what="polled Mode")


async def test_quiet_subscription_never_reconnects(plant: PlantServer, caplog: pytest.LogCaptureFixture) -> None:
    # 1 s liveness window, 0.5 s keep-alives: five quiet seconds are ten windows without a data change.
    cfg = config(
        plant.endpoint, [{"id": "filler", "nodes": _nodes(["Temperature", "Mode"])}], publishing_interval_ms=100
    )
    source = OpcUaSource(config=cfg)
    with caplog.at_level(logging.INFO):
        async with running(source) as events:
            await until(lambda: events.latest("filler", "Mode"), what="initial values")
            first = events.mark()
            with timers_by_task() as timers:
                await asyncio.sleep(5.0)  # the point of the test: quiet time passes with nothing to report
            assert events.since(first).events == []
            assert events.downs() == []
    assert (source.stats.connects, source.stats.losses) == (1, 0)
    # the watch sleeps until a 1 s window could end (5 wake-ups here), no longer on a 0.25 s tick (20)
    assert timers["uns.bridge.opcua[opc1].watch"] <= 10, timers
    assert not [r for r in caplog.records if "stale" in r.getMessage() or "lost" in r.getMessage()]


async def test_writes_use_the_node_variant_type(plant: PlantServer) -> None:
    nodes = _nodes(["Setpoint", "Mode", "Enabled", "Locked"], writable=True) + _nodes(["Temperature"])
    source = OpcUaSource(config=config(plant.endpoint, [{"id": "filler", "nodes": nodes}]))
    async with running(source) as events:
        await source.write("filler", "Setpoint", 55)  # an int from a DCMD, written as the node's Double
        await source.write("filler", "Mode", 3)
        await source.write("filler", "Enabled", True)
        assert (await plant.read("Setpoint")) == ua.Variant(55.0, ua.VariantType.Double)
        assert (await plant.read("Mode")) == ua.Variant(3, ua.VariantType.Int32)
        assert (await plant.read("Enabled")) == ua.Variant(True, ua.VariantType.Boolean)
        await until(lambda: events.value("filler", "Mode") == 3, what="the write seen by the subscription")

        cases: list[tuple[str, MetricValue, str]] = [
            ("Mode", 2**31, "out of range for Int32"),
            ("Mode", "fast", "cannot write str"),
            ("Locked", 2.0, "refused: Bad(NotWritable|UserAccessDenied)"),
            ("Temperature", 1.0, "not writable in the config"),
            ("Nope", 1.0, "no metric 'Nope'"),
        ]
        for name, value, reason in cases:
            with pytest.raises(BridgeError, match=reason) as caught:
                await source.write("filler", name, value)
            if name != "Nope":
                assert node_id(name) in str(caught.value)
        assert (await plant.read("Mode")) == ua.Variant(3, ua.VariantType.Int32)


async def test_a_float_node_configured_as_double_reads_as_written() -> None:
    """101.9 in a Float node is 101.9000015258789 as a double: a Double metric gets the float32's digits."""
    async with plant_server() as plant:
        await plant.write("Speed", 101.9, ua.VariantType.Float)
        nodes = _nodes(["Speed"], datatype="Double")
        source = OpcUaSource(config=config(plant.endpoint, [{"id": "filler", "nodes": nodes}]))
        async with running(source) as events:
            await until(lambda: events.latest("filler", "Speed"), what="the first value")
            assert source.tags()[0].datatype is DataType.Double
            assert repr(events.value("filler", "Speed")) == "101.9"
            await plant.write("Speed", 0.1, ua.VariantType.Float)
            await until(lambda: events.value("filler", "Speed") != 101.9, what="the second value")
            assert repr(events.value("filler", "Speed")) == "0.1"

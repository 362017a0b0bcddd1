"""The simulated servers serve the model's values to plain pymodbus and asyncua clients."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.subscription import DataChangeEvent, Subscription
from asyncua.ua.uaerrors import BadNodeIdUnknown
from pymodbus.client import AsyncModbusTcpClient

from bridges.sim.layout import MACHINE_METRICS, metric_value, opcua_node_id
from bridges.sim.modbus_plant import ModbusPlant
from bridges.sim.opcua_plant import OpcUaPlant
from bridges.sim.plant import MachineState, PlantModel
from bridges.sim.service import SimulatedPlant
from model.bridges import ModbusBridgeConfig, ModbusRegister, OpcUaBridgeConfig
from model.config import SimSection
from tests.fixtures.waiting import until
from uns.errors import BridgeError

pytestmark = pytest.mark.asyncio(loop_scope="module")

_TYPES = AsyncModbusTcpClient.DATATYPE
_DATATYPE = {"int16": _TYPES.INT16, "uint16": _TYPES.UINT16, "int32": _TYPES.INT32, "uint32": _TYPES.UINT32,
             "float32": _TYPES.FLOAT32, "float64": _TYPES.FLOAT64}  # fmt: skip


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def sim() -> AsyncIterator[SimulatedPlant]:
    async with SimulatedPlant(settings=SimSection(seed=42)) as plant:
        plant.model.advance(90_000)
        await plant.publish()
        yield plant


@contextlib.asynccontextmanager
async def _modbus(host: str, port: int) -> AsyncIterator[AsyncModbusTcpClient]:
    client = AsyncModbusTcpClient(host, port=port, timeout=2, retries=0, reconnect_delay=0)
    await client.connect()
    try:
        yield client
    finally:
        client.close()


async def _read(client: AsyncModbusTcpClient, register: ModbusRegister, order: str) -> float | bool:
    """Decode one register with pymodbus's own conversions, not ours."""
    if register.table in ("coil", "discrete"):
        read_bits = client.read_coils if register.table == "coil" else client.read_discrete_inputs
        bits = await read_bits(register.address, count=1, device_id=1)
        assert not bits.isError(), register.name
        return bool(bits.bits[0])
    read = client.read_input_registers if register.table == "input" else client.read_holding_registers
    response = await read(register.address, count=register.size, device_id=1)
    assert not response.isError(), register.name
    raw = client.convert_from_registers(
        response.registers, _DATATYPE[register.type], word_order="little" if order == "CDAB" else "big"
    )
    assert isinstance(raw, int | float)
    return raw * register.scale


def _configs(sim: SimulatedPlant) -> tuple[ModbusBridgeConfig, OpcUaBridgeConfig]:
    modbus, opcua, *_utilities = sim.bridge_configs()
    assert isinstance(modbus, ModbusBridgeConfig)
    assert isinstance(opcua, OpcUaBridgeConfig)
    return modbus, opcua


async def test_every_configured_register_holds_the_model_value(sim):
    modbus, _ = _configs(sim)
    snapshot = sim.model.snapshot()
    checked = 0
    for device in modbus.devices:
        machine = snapshot.machines[device.id]
        async with _modbus(device.host, device.port) as client:
            for register in device.registers:
                got = await _read(client, register, register.order or device.order)
                want = metric_value(machine, register.name)
                if isinstance(want, bool):
                    assert got is want, (device.id, register.name)
                elif register.type == "float32":
                    assert got == pytest.approx(want, rel=1e-6), (device.id, register.name)
                else:
                    assert got == pytest.approx(want, abs=register.scale / 2 + 1e-9), (device.id, register.name)
                checked += 1
    assert checked == sum(len(d.registers) for d in modbus.devices) > 60
    assert {d.order for d in modbus.devices} == {"ABCD", "CDAB"}


async def test_reads_past_the_map_are_illegal_addresses(sim):
    endpoint = sim.modbus_endpoints["filler"]
    async with _modbus(endpoint.host, endpoint.port) as client:
        response = await client.read_input_registers(30, count=10, device_id=1)
        assert response.isError()
        assert response.exception_code == 2
        inside = await client.read_input_registers(0, count=34, device_id=1)  # one coalesced read, gaps read 0
        assert not inside.isError()
        assert inside.registers[11:20] == [0] * 9


async def test_every_configured_node_exists_and_holds_the_model_value(sim):
    _, opcua = _configs(sim)
    snapshot = sim.model.snapshot()
    async with Client(opcua.endpoint, timeout=5) as client:
        for device in opcua.devices:
            for node_config in device.nodes:
                node = client.get_node(node_config.node_id)
                value = await node.read_value()
                want = metric_value(snapshot.machines[device.id], node_config.name)
                if isinstance(want, float):
                    assert value == pytest.approx(want, rel=1e-6), node_config.node_id
                else:
                    assert value == want, node_config.node_id
                if node_config.unit:
                    units = await node.get_child("0:EngineeringUnits")
                    assert (await units.read_value()).DisplayName.Text == node_config.unit


async def test_browsing_a_machine_gives_its_metric_names(sim):
    async with Client(sim.opcua_endpoint, timeout=5) as client:
        machine = client.get_node("ns=2;s=palletizer")
        path = await machine.get_path(as_string=True)
        assert path[-3:] == ["2:Packaging", "2:Line3", "2:palletizer"]
        names = []
        for child in await machine.get_children():
            name = (await child.read_browse_name()).Name
            if await child.read_node_class() == ua.NodeClass.Object:
                names += [f"{name}/{(await g.read_browse_name()).Name}" for g in await child.get_children()]
            else:
                names.append(name)
    assert sorted(names) == sorted(
        ["Speed", "Energy", "Production/GoodCount", "State", "FaultCode", "CycleTime", "PartDone", "Setpoint/Speed",
         "Command/Run"]
    )  # fmt: skip


async def test_client_writes_reach_the_model(sim):
    filler, capper = sim.modbus_endpoints["filler"], sim.modbus_endpoints["capper"]
    async with _modbus(filler.host, filler.port) as client:
        words = client.convert_to_registers(321.5, _TYPES.FLOAT32)
        assert not (await client.write_registers(0, words, device_id=1)).isError()
    async with _modbus(capper.host, capper.port) as client:
        assert not (await client.write_coil(0, False, device_id=1)).isError()
    async with Client(sim.opcua_endpoint, timeout=5) as client:
        node = client.get_node(opcua_node_id("case-packer", "Setpoint/Speed"))
        await node.write_value(ua.DataValue(ua.Variant(10.0, ua.VariantType.Float)))
    writes = await sim.apply_client_writes()
    assert {(w.machine, w.metric, w.value) for w in writes} == {
        ("filler", "Setpoint/Speed", 321.5),
        ("capper", "Command/Run", False),
        ("case-packer", "Setpoint/Speed", 10.0),
    }
    machines = sim.model.snapshot().machines
    assert machines["filler"].speed_setpoint == 321.5
    assert machines["case-packer"].speed_setpoint == 10.0
    assert not machines["capper"].run_enabled
    await sim.publish()
    assert await sim.apply_client_writes() == []  # what we wrote back is not a new write
    sim.model.set_run_enabled("capper", True)
    sim.model.advance(200)
    await sim.publish()


async def test_run_follows_real_time_times_speed_and_the_servers_follow(sim):
    endpoint = sim.modbus_endpoints["filler"]
    start_ms = sim.model.time_ms
    async with _modbus(endpoint.host, endpoint.port) as client:
        first = (await client.read_input_registers(4, count=2, device_id=1)).registers
        task = asyncio.create_task(sim.run(), name="test.sim")
        try:
            await until(lambda: sim.model.time_ms >= start_ms + 1_000)
            # speed 1: a second of model time needs about a second of real time
            assert sim.model.time_ms - start_ms < 3_000
            changed = False
            async with asyncio.timeout(5):
                while not changed:
                    await asyncio.sleep(0.05)
                    changed = (await client.read_input_registers(4, count=2, device_id=1)).registers != first
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_speed_scales_the_clock():
    async with SimulatedPlant(settings=SimSection(speed=50.0), period_s=0.05) as sim:
        task = asyncio.create_task(sim.run(), name="test.sim-fast")
        loop = asyncio.get_running_loop()
        began = loop.time()
        try:
            await until(lambda: sim.model.time_ms >= 10_000)
            assert loop.time() - began < 1.0  # 10 s of plant in well under a second
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_a_stopped_plc_refuses_and_comes_back_on_its_port():
    model = PlantModel(seed=3)
    async with ModbusPlant(machines=("filler", "capper")) as plcs:
        await plcs.update(model.snapshot())
        endpoint = plcs.endpoints["capper"]
        await plcs.stop_plc("capper")
        client = AsyncModbusTcpClient(endpoint.host, port=endpoint.port, timeout=1, retries=0, reconnect_delay=0)
        assert not await client.connect()
        client.close()
        await plcs.update(model.snapshot())  # a stopped PLC is skipped, the others still update
        await plcs.start_plc("capper")
        assert plcs.endpoints["capper"].port == endpoint.port
        await plcs.update(model.snapshot())
        async with _modbus(endpoint.host, endpoint.port) as client:
            state = await client.read_input_registers(0, count=2, device_id=1)
            assert state.registers[1] == int(model.snapshot().machines["capper"].state)
        with pytest.raises(ValueError, match="no simulated PLC 'labeler'"):
            await plcs.stop_plc("labeler")


async def test_opcua_restart_and_revoked_node():
    model = PlantModel(seed=3)
    async with OpcUaPlant(machines=("wrapper",)) as server:
        await server.update(model.snapshot())
        endpoint = server.endpoint
        node_id = opcua_node_id("wrapper", "State")
        async with Client(endpoint, timeout=5) as client:
            assert await client.get_node(node_id).read_value() in {int(s) for s in MachineState}
            await server.remove_node("wrapper", "State")
            with pytest.raises(BadNodeIdUnknown):
                await client.get_node(node_id).read_value()
        await server.restart()
        assert server.endpoint == endpoint
        await server.update(model.snapshot())
        async with Client(endpoint, timeout=5) as client:
            assert await client.get_node(node_id).read_value() == int(model.snapshot().machines["wrapper"].state)


async def _changes(sub: Subscription, count: int) -> dict[str, ua.DataValue]:
    """The next ``count`` data changes, by node id; fails if fewer come within 5 s or a node's comes twice."""
    changes: dict[str, ua.DataValue] = {}
    async with asyncio.timeout(5):
        while len(changes) < count:
            event = await sub.next_event()
            assert isinstance(event, DataChangeEvent)
            node_id = event.node.nodeid.to_string()
            assert node_id not in changes, f"{node_id} changed twice"
            changes[node_id] = event.data.monitored_item.Value
    return changes


async def test_opcua_subscribers_get_each_changed_value_once_typed_good_and_stamped_with_its_refresh():
    model = PlantModel(seed=3)
    metrics = {opcua_node_id("wrapper", m.name): m for m in MACHINE_METRICS["wrapper"]}
    async with OpcUaPlant(machines=("wrapper",)) as server, Client(server.endpoint, timeout=5) as client:
        await server.update(model.snapshot())
        sub = await client.create_subscription(50)
        await sub.subscribe_data_change([client.get_node(node_id) for node_id in metrics])
        await _changes(sub, len(metrics))  # the first value of each
        before = model.snapshot().machines["wrapper"]
        model.advance(5_000)
        after = model.snapshot().machines["wrapper"]
        moved = {node for node, m in metrics.items() if metric_value(before, m.name) != metric_value(after, m.name)}
        assert moved, "the model should move in 5 s"
        start = dt.datetime.now(dt.UTC)
        await server.update(model.snapshot())
        end = dt.datetime.now(dt.UTC)
        changes = await _changes(sub, len(moved))
        assert set(changes) == moved
        for node_id, data in changes.items():
            metric = metrics[node_id]
            assert data.Value is not None
            assert data.Value.VariantType is ua.VariantType[metric.datatype], node_id
            want = metric_value(after, metric.name)
            assert data.Value.Value == (pytest.approx(want, rel=1e-6) if isinstance(want, float) else want), node_id
            assert data.StatusCode is not None
            assert data.StatusCode.is_good()
            assert data.SourceTimestamp is not None
            assert data.SourceTimestamp == data.ServerTimestamp
            assert start <= data.SourceTimestamp.replace(tzinfo=dt.UTC) <= end
            read = await client.get_node(node_id).read_data_value()
            assert (read.Value, read.SourceTimestamp) == (data.Value, data.SourceTimestamp)
        await server.update(model.snapshot())  # nothing moved: nothing written, nothing sent
        assert await sub.next_event(timeout=0.3) is None


async def test_a_busy_port_is_a_clear_error(sim):
    taken = sim.modbus_endpoints["filler"].port
    with pytest.raises(BridgeError, match=f"modbus://127.0.0.1:{taken}") as caught:
        async with ModbusPlant(first_port=taken, machines=("filler",)):
            pass
    assert "PLC filler" in str(caught.value)

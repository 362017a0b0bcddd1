"""What births carry, and that no DATA is older than its birth: the demo's real bridges through a real broker.

The Modbus bridge reads the simulated bottling PLCs and the OPC UA bridge the packaging server
(``bridges/sim``), both running in real time (the plant quickened and read as much more often: ``sim_plant``);
Mosquitto carries their Sparkplug to an independent host (``spb_host``). A scripted source covers a metric whose
first read failed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bridges.registry import build_edge_node
from bridges.sim.service import SimulatedPlant
from bridges.testing import ScriptedSource
from model.bridges import ModbusBridgeConfig, OpcUaBridgeConfig
from model.envelope import Quality
from tests.bridges.edge.conftest import edge_config, running_edge
from tests.bridges.edge.spb_host import DOUBLE, Received, SpbHost, quality_of, until
from tests.bridges.sim.fixtures import read_quicker
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.running import running
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl

pytestmark = pytest.mark.asyncio(loop_scope="module")  # the simulated plant's loop: one plant for the module


async def _grows(host: SpbHost, kind: str, by: int, *, what: str) -> None:
    """Wait until ``by`` more messages of ``kind`` have come from now."""
    want = host.count(kind) + by
    await until(lambda: host.count(kind) >= want, what=what)


def _problems(messages: list[Received]) -> list[str]:
    """Nulls in a DBIRTH, and DDATA samples stamped at or before their metric's stamp in the DBIRTH they follow.

    Live DDATA must be newer than the birth; historical DDATA (store-and-forward) may be older, but
    must never repeat the very sample the birth carried.
    """
    out: list[str] = []
    born: dict[tuple[str | None, str], int] = {}
    for r in messages:
        if r.kind == "DBIRTH":
            out += [f"DBIRTH {r.device}: {m.name} is null" for m in r.payload.metrics if m.is_null]
            born.update({(r.device, m.name): m.timestamp for m in r.payload.metrics})
        elif r.kind == "DDATA":
            for name, _value, historical, ts in r.resolved:
                birth = born[(r.device, name)]
                if ts == birth or (ts < birth and not historical):
                    out.append(f"DDATA {r.device}: {name} stamped {birth - ts} ms before its DBIRTH ({historical=})")
    return out


@pytest.mark.parametrize("kind", ["modbus", "opcua"])
async def test_births_carry_first_readings_and_data_is_never_older(
    mosquitto: Mosquitto, spb_host: SpbHost, group: str, sim_plant: SimulatedPlant, tmp_path: Path, kind: str
) -> None:
    wanted = ModbusBridgeConfig if kind == "modbus" else OpcUaBridgeConfig
    config = next(c for c in sim_plant.bridge_configs() if isinstance(c, wanted))
    config = read_quicker(config).model_copy(update={"edge": edge_config(group, first_reading_wait_s=5.0)})
    clients = network_clients(BrokerUrl(port=mosquitto.port))
    devices = len(config.devices)
    for start in range(3):
        async with running(build_edge_node(config, clients, tmp_path)):
            await _grows(spb_host, "DBIRTH", devices, what=f"births of start {start}")
            await _grows(spb_host, "DDATA", devices * 2, what="data after the births")
            if start == 2:
                spb_host.rebirth(config.node_id)
                await _grows(spb_host, "DBIRTH", devices, what="births after a rebirth")
                await _grows(spb_host, "DDATA", devices * 2, what="data after the rebirth")
        await until(lambda: spb_host.count("NDEATH") == start + 1, what="NDEATH on stop")  # noqa: B023 (awaited here)
    with spb_host.lock:
        received = list(spb_host.received)
    assert _problems(received) == []
    assert spb_host.violations == []


async def test_a_metric_born_null_gets_its_first_value_after_its_birth(
    mosquitto: Mosquitto, spb_host: SpbHost, group: str, source: ScriptedSource, tmp_path: Path
) -> None:
    """A failed first read is born null, Double, quality bad; its first good value comes as DATA stamped after."""
    source.read("press", {"Temp": None}, quality=Quality.bad)
    source.read("press", {"Count": 1, "Setpoint": 1.5, "Mode": "auto"})
    async with running_edge(mosquitto.port, edge_config(group), source, tmp_path):
        await until(lambda: spb_host.count("DBIRTH") == 2, what="births (the oven never read)")
        press = {m.name: m for m in spb_host.of("DBIRTH", "press")[0].payload.metrics}
        oven = {m.name: m for m in spb_host.of("DBIRTH", "oven")[0].payload.metrics}
        for metric in (press["Temp"], oven["Temp"]):
            assert (metric.is_null, metric.datatype, quality_of(metric)) == (True, DOUBLE, 0)
        # readings taken before the births were built but reported after them (in flight)
        source.read("press", {"Temp": 21.0}, timestamp_ms=press["Temp"].timestamp - 5)
        source.read("oven", {"Temp": 180.0}, timestamp_ms=oven["Temp"].timestamp - 50)
        await until(lambda: spb_host.count("DDATA") == 2, what="the first good values")
        press_data, oven_data = spb_host.of("DDATA", "press")[0], spb_host.of("DDATA", "oven")[0]
        assert [(n, v, ts) for n, v, _h, ts in press_data.resolved] == [("Temp", 21.0, press["Temp"].timestamp + 1)]
        assert [(n, v, ts) for n, v, _h, ts in oven_data.resolved] == [("Temp", 180.0, oven["Temp"].timestamp + 1)]
    assert spb_host.violations == []

"""The demo's warehouse climate sensors register with the LwM2M server edge node and report; they leave on stop.

On the embedded broker and on Mosquitto (the reference), each checked by the independent Sparkplug test host.
"""

from __future__ import annotations

import functools
from pathlib import Path

from bridges.sim.lwm2m_sensors import SENSORS, WarehouseSensors
from tests.bridges.edge.spb_host import BOOLEAN, until
from tests.bridges.lwm2m.rig import Rig, running
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.running import running_task
from uns.broker import EmbeddedBroker


def _readings(rig: Rig, cell: str) -> bool:
    return len(rig.values("Temperature", cell)) >= 2


async def test_warehouse_sensors_feed_the_lwm2m_edge_node(broker: EmbeddedBroker, tmp_path: Path) -> None:
    await _sensors_through(broker.url.port, tmp_path)


async def test_warehouse_sensors_through_mosquitto(mosquitto: Mosquitto, tmp_path: Path) -> None:
    await _sensors_through(mosquitto.port, tmp_path)


async def _sensors_through(port: int, tmp_path: Path) -> None:
    async with WarehouseSensors(bind="127.0.0.1", seed=7) as sensors:
        config = sensors.bridge_config()
        assert config.port == sensors.port != 0
        async with running(port, config, tmp_path) as rig:
            async with running_task(sensors, name="test.sensors"):
                for cell in SENSORS:
                    await until(functools.partial(rig.host.of, "DBIRTH", cell), what=f"{cell} DBIRTH")
                    await until(functools.partial(_readings, rig, cell), what=f"{cell} readings")
                    temperatures = rig.values("Temperature", cell)
                    humidities = rig.values("Humidity", cell)
                    assert all(isinstance(t, float) and 15.0 < t < 23.0 for t in temperatures), temperatures
                    assert all(isinstance(h, float) and 40.0 < h < 60.0 for h in humidities), humidities
                    assert set(rig.values("Location", cell)) == {cell}
                    born = {name: value for name, value, _, _ in rig.host.of("DBIRTH", cell)[0].resolved}
                    assert None not in born.values(), born  # the first reads are held until all answered
                rig.dcmd("Command/Reboot", True, BOOLEAN, device="climate-north")
                north = sensors.clients["climate-north"]
                await until(lambda: north.executed == [(3, 0, 4)], what="the north sensor rebooted")
            for cell in SENSORS:  # de-registered on stop: each device's DDEATH
                await until(functools.partial(rig.host.of, "DDEATH", cell), what=f"{cell} DDEATH")
    assert rig.host.violations == []

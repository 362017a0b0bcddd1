"""The demo of ``uns up`` (unless ``--no-demo``) and ``uns sim``: the simulated plant and its business systems.

Imported only when the demo runs: its simulated PLCs, OPC UA server, sensors and business systems bring their
server libraries (asyncua's address space, pymodbus's and snap7's servers, uvicorn apps), which a production
hub never uses.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Mapping

from bridges.sim.layout import UTILITY_KINDS
from bridges.sim.lorawan_meter import LorawanMeterSim
from bridges.sim.lwm2m_sensors import WarehouseSensors
from bridges.sim.serial_palletizing import PalletScale
from bridges.sim.service import SimulatedPlant
from demo.business import DemoBusiness
from demo.systems import DemoSystems
from hub.parts import Part
from model.bridges import BridgeConfig
from model.config import Settings
from model.equipment import Plant
from uns.connect import ClientFactory

__all__ = ["Demo", "enter_demo", "enter_sim", "sim_endpoints"]


@dataclasses.dataclass(slots=True)
class Demo:
    """What the demo adds to a hub: its parts, the bridges reading it, its ready-line endpoints and health."""

    parts: list[Part] = dataclasses.field(default_factory=list)
    bridges: list[BridgeConfig] = dataclasses.field(default_factory=list)
    endpoints: dict[str, str | None] = dataclasses.field(default_factory=dict)
    health: dict[str, Callable[[], Mapping[str, object]]] = dataclasses.field(default_factory=dict)


async def enter_sim(stack: contextlib.AsyncExitStack, settings: Settings) -> SimulatedPlant:
    """The simulated plant's PLCs and OPC UA server, serving until ``stack`` closes."""
    return await stack.enter_async_context(SimulatedPlant(settings=settings.sim))


def sim_endpoints(sim: SimulatedPlant) -> str:
    """The simulated plant's servers as the ready line names them."""
    ports = ",".join(str(endpoint.port) for endpoint in sim.modbus_endpoints.values())
    host = next(iter(sim.modbus_endpoints.values())).host
    utilities = "".join(f" {UTILITY_KINDS[m]}://{h}:{p}" for m, (h, p) in sim.utility_endpoints.items())
    return f"modbus://{host}:{{{ports}}} {sim.opcua_endpoint}{utilities}"


async def enter_demo(
    stack: contextlib.AsyncExitStack, settings: Settings, plant: Plant, clients: ClientFactory
) -> Demo:
    """The whole demo, entered on ``stack``: the plant, its sensors, scale and meter, and the business systems."""
    demo = Demo()
    host_id = settings.host.host_id
    sim = await enter_sim(stack, settings)
    demo.parts.append(sim)
    demo.bridges += [_demo_bridge(config, host_id) for config in sim.bridge_configs()]
    demo.endpoints["sim"] = sim_endpoints(sim)
    # the warehouse's climate sensors: LwM2M clients of the demo's LwM2M server edge node
    sensors = await stack.enter_async_context(WarehouseSensors(bind=settings.sim.bind, seed=settings.sim.seed))
    demo.parts.append(sensors)
    demo.bridges.append(_demo_bridge(sensors.bridge_config(), host_id))
    demo.endpoints["lwm2m"] = sensors.server_url
    # line 3's pallet scale (MT-SICS on a pty): the serial source weighs each pallet into a lot for the MES
    scale = await stack.enter_async_context(PalletScale.at_palletizer(sim, seed=settings.sim.seed))
    demo.parts.append(scale)
    demo.bridges.append(_demo_bridge(scale.bridge_config(), host_id))
    # the site's LoRaWAN energy meter: a simulated ChirpStack publishing its uplinks into this broker
    meter = await stack.enter_async_context(LorawanMeterSim(clients=clients, seed=settings.sim.seed))
    demo.parts.append(meter)
    demo.bridges.append(_demo_bridge(meter.bridge_config(host_id), host_id))
    # the demo's ERP, QMS (REST) and CMMS (SQL), read into the MES by HTTP and SQL sources; operators on MQTT
    systems = await stack.enter_async_context(_demo_systems(settings))
    demo.parts.append(systems)
    demo.bridges += systems.connectors(host_id)
    demo.endpoints["erp"], demo.endpoints["qms"] = systems.erp_url, systems.qms_url
    demo.endpoints["cmms"] = str(systems.cmms.database.path)
    business = await stack.enter_async_context(_demo_business(settings, plant, clients, systems))
    demo.parts.append(business)
    demo.health["demo-business"] = business.health
    demo.health["demo-systems"] = systems.health
    return demo


def _demo_bridge(config: BridgeConfig, host_id: str) -> BridgeConfig:
    """A demo bridge that honours this hub's Sparkplug host id."""
    edge = config.edge.model_copy(update={"primary_host_id": host_id})
    return config.model_copy(update={"edge": edge})


def _demo_systems(settings: Settings) -> DemoSystems:
    sim = settings.sim
    return DemoSystems(
        directory=settings.data_dir / "demo", bind=sim.bind, erp_port=sim.erp_port, qms_port=sim.qms_port
    )


def _demo_business(settings: Settings, plant: Plant, clients: ClientFactory, systems: DemoSystems) -> DemoBusiness:
    site = plant.enterprise.sites[0] if plant.enterprise.sites else None
    timezone = site.timezone if site else "UTC"
    return DemoBusiness(
        plant=plant, clients=clients, systems=systems, settings=settings.sim, tz=timezone, seed=settings.sim.seed
    )

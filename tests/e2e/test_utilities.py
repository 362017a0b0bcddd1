"""The demo's utilities area end to end: simulated S7, SLMP, ... PLCs -> their bridges -> Sparkplug -> Mosquitto.

Every message of the utilities' edge nodes is checked against Sparkplug 3.0 by an independent host
(tests/bridges/edge/spb_host.py: raw paho-mqtt and the generated protobuf, none of our host code).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from bridges.registry import build_edge_node
from bridges.sim.layout import GROUP, MACHINE_METRICS, UTILITY_MACHINES, utility_node
from bridges.sim.rates import RUN_HOURS_DEADBAND_H, SLOW_POLL_S
from bridges.sim.service import SimulatedPlant
from bridges.sim.utilities import UTILITY_PLANTS
from model.config import SimSection
from tests.bridges.edge.spb_host import FLOAT, SpbHost, until
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.running import running
from uns.connect import network_clients
from uns.mqtt.types import BrokerUrl
from uns.sparkplug import sparkplug_b_pb2 as pb

_IN_DEMO = ("compressor", "boiler", "chiller", "pump")
_SPEED = 10.0
_HOUR_METER_MOVES_S = RUN_HOURS_DEADBAND_H * 3600 / _SPEED + 2 * SLOW_POLL_S + 5.0
"""An hour meter is reported past its deadband (36 plant s, 3.6 s at x10) and read in the slow group (5 s):
after its first value the next can take the deadband plus two slow polls, over the edge tests' 10 s."""
"""Every utility: S7-1500, ControlLogix, iQ-R and NJ, each read by its own edge node."""


def _values(host: SpbHost, machine: str) -> dict[str, object]:
    """The latest value of each metric of a device, from its births and data."""
    latest: dict[str, object] = {}
    for message in host.of("DBIRTH", machine) + host.of("DDATA", machine):
        latest.update({name: value for name, value, _historical, _ts in message.resolved})
    return latest


async def test_utilities_are_live_from_their_own_edge_nodes_without_a_spec_violation(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    assert tuple(u.machine for u in UTILITY_PLANTS) == _IN_DEMO
    host = SpbHost(mosquitto.port, GROUP, "uns-hub")  # the demo bridges honour the hub's host id
    await host.start()
    try:
        async with (
            running(SimulatedPlant(settings=SimSection(seed=42, speed=_SPEED)), name="tests.utilities.sim") as sim,
            contextlib.AsyncExitStack() as stack,
        ):
            configs = [c for c in sim.bridge_configs() if c.node_id.endswith("-utilities")]
            assert [c.node_id for c in configs] == [utility_node(m) for m in UTILITY_MACHINES if m in _IN_DEMO]
            clients = network_clients(BrokerUrl(port=mosquitto.port))
            for config in configs:
                node = build_edge_node(config, clients, tmp_path)
                await stack.enter_async_context(running(node, name=f"tests.{node.name}"))
            for machine in _IN_DEMO:
                await until(_all_read(host, machine), what=f"every metric of the {machine} read")
            # every hour meter from its value now: the machines run side by side, so their waits overlap
            moving = {machine: _moving(host, machine, "Counters/RunHours") for machine in _IN_DEMO}
            for machine, moved in moving.items():
                await until(moved, within_s=_HOUR_METER_MOVES_S, what=f"the {machine}'s hour meter moving")
            # a DCMD reaches the machine model through the bridge and the simulated PLC (all four sent, then awaited)
            written: dict[str, Callable[[], bool]] = {}
            for machine in _IN_DEMO:
                setpoint = next(m.name for m in MACHINE_METRICS[machine] if m.name.startswith("Setpoint/"))
                process_value = setpoint.removeprefix("Setpoint/")
                wanted = round(sim.model.snapshot().machines[machine].setpoints[process_value] * 0.9, 1)
                metric = pb.Payload.Metric(name=setpoint, datatype=FLOAT, float_value=wanted)
                host.dcmd(utility_node(machine), machine, [metric])
                written[f"{machine} {setpoint}"] = _written(sim, machine, process_value, wanted)
            for what, done in written.items():
                await until(done, what=f"{what} written")
    finally:
        host.stop()
    assert {r.node for r in host.of("NBIRTH")} == {utility_node(m) for m in _IN_DEMO}
    assert host.violations == []


def _all_read(host: SpbHost, machine: str) -> Callable[[], bool]:
    names = {metric.name for metric in MACHINE_METRICS[machine]}
    return lambda: names <= {name for name, value in _values(host, machine).items() if value is not None}


def _moving(host: SpbHost, machine: str, name: str) -> Callable[[], bool]:
    first = _values(host, machine)[name]
    return lambda: _values(host, machine)[name] != first


def _written(sim: SimulatedPlant, machine: str, name: str, wanted: float) -> Callable[[], bool]:
    return lambda: abs(sim.model.snapshot().machines[machine].setpoints[name] - wanted) < 1e-3

"""The demo's simulated network server and energy meter: ChirpStack's own schema reads what it publishes, and the
demo's connector turns it into a live Sparkplug device whose relay a DCMD opens."""

from __future__ import annotations

from pathlib import Path

from chirpstack_api import integration  # type: ignore[import-untyped]  # no py.typed (test-only)
from google.protobuf import json_format

from bridges.lorawan.lpp import decode_lpp
from bridges.sim.lorawan_meter import DEVICE, NODE, LorawanMeterSim, _Meter, demo_bridge
from tests.bridges.edge.spb_host import BOOLEAN, SpbHost, until
from tests.bridges.lorawan.running import last, running
from tests.fixtures.recording import recording
from tests.fixtures.running import running_task
from uns.broker import EmbeddedBroker
from uns.connect import network_clients
from uns.mqtt.client import MqttClient
from uns.sparkplug import sparkplug_b_pb2 as pb


def test_the_same_seed_gives_the_same_readings() -> None:
    one, two, other = _Meter(7), _Meter(7), _Meter(8)
    frames = [one.frame(i * 10.0, 10.0) for i in range(5)]
    assert frames == [two.frame(i * 10.0, 10.0) for i in range(5)]
    assert frames != [other.frame(i * 10.0, 10.0) for i in range(5)]
    reading = decode_lpp(frames[0])
    assert set(reading) == {"voltage_1", "current_2", "frequency_3", "energy_4", "analog_in_5"}
    assert 225 < reading["voltage_1"] < 235  # type: ignore[operator]
    assert 49.9 < reading["frequency_3"] < 50.1  # type: ignore[operator]


async def test_the_demo_meter_is_live_its_events_read_by_chirpstack_s_schema_and_its_relay_commanded(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    host = SpbHost(broker.url.port, "acme-dallas", "lora-sim-host")
    await host.start(online=True)
    clients = network_clients(broker.url)
    config = demo_bridge("lora-sim-host", interval_s=0.2)
    config = config.model_copy(update={"edge": config.edge.model_copy(update={"first_reading_wait_s": 0.5})})
    try:
        async with (
            MqttClient(url=broker.url, client_id="wiretap") as tap,
            running(config, broker.url.port, tmp_path),
            LorawanMeterSim(clients=clients, seed=7, interval_s=0.2) as sim,
            recording(tap, ["application/+/device/+/event/+"], name="test.tap") as tapped,
            running_task(sim, name="test.sim"),
        ):
            seen = tapped.messages
            await until(lambda: isinstance(last(host, DEVICE, "Energy"), float), what="the meter's energy")
            first = last(host, DEVICE, "Energy")
            await until(lambda: last(host, DEVICE, "Energy") != first, what="the energy counting")
            assert isinstance(power := last(host, DEVICE, "Power"), float)
            assert power > 20
            assert last(host, DEVICE, "Battery/ExternalPower") is True
            relay = pb.Payload.Metric(name="Command/Relay", datatype=BOOLEAN, boolean_value=False)
            host.dcmd(NODE, DEVICE, [relay])
            await until(lambda: last(host, DEVICE, "LoRaWAN/Acked") == 1, what="the downlink acknowledged")
            await until(lambda: abs(last(host, DEVICE, "Power") - 0.2) < 1e-6, what="the load off")  # type: ignore[operator]
    finally:
        host.stop()
    assert host.violations == []
    born = {name for message in host.of("DBIRTH", DEVICE) for name, *_ in message.resolved}
    assert "Battery/ExternalPower" in born
    assert "Battery/Level" not in born  # mains powered: no battery level that would stay null
    schema = {"up": integration.UplinkEvent, "status": integration.StatusEvent, "ack": integration.AckEvent}
    for message in seen:
        kind = message.topic.rsplit("/", 1)[-1]
        json_format.Parse(message.payload, schema[kind]())  # refuses any field ChirpStack's schema has not
    assert {m.topic.rsplit("/", 1)[-1] for m in seen} == {"up", "status", "ack"}

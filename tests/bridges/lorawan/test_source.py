"""The LoRaWAN connector as a Sparkplug edge node: ChirpStack and The Things Stack events published into real brokers.

Every message of the edge node is checked against Sparkplug 3.0 by an independent host
(tests/bridges/edge/spb_host.py: raw paho-mqtt and the generated protobuf, none of our host code).
"""

from __future__ import annotations

from pathlib import Path

import orjson
from chirpstack_api import integration  # type: ignore[import-untyped]  # no py.typed (test-only)

from model.bridges.lorawan import LorawanBridgeConfig
from tests.bridges.edge.spb_host import BOOLEAN, STRING, SpbHost, until
from tests.bridges.lorawan import chirpstack as cs
from tests.bridges.lorawan.running import last, running
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.recording import recording
from uns.broker import EmbeddedBroker
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl
from uns.sparkplug import sparkplug_b_pb2 as pb

METER, SENSOR = "70B3D57ED0051A01", "70B3D57ED0051A02"


def _chirpstack(port: int, host_id: str, **device: object) -> LorawanBridgeConfig:
    return LorawanBridgeConfig.model_validate(
        {
            "name": "lora",
            "edge": {"group": "env", "primary_host_id": host_id, "first_reading_wait_s": 0.2},
            "server": {"flavour": "chirpstack", "application_id": cs.APP, "host": "127.0.0.1", "port": port},
            "devices": [
                {
                    "id": "meter", "dev_eui": METER, "codec": "cayenne_lpp",
                    "metrics": [
                        {"path": "$.voltage_1", "name": "Voltage", "unit": "V"},
                        {"path": "$.energy_4", "name": "Energy", "unit": "kWh"},
                        {"path": "$.analog_in_5", "name": "Power", "unit": "kW"},
                    ],
                    "downlinks": [
                        {"name": "Command/Relay", "f_port": 10, "field": "digital_out_3", "confirmed": True},
                        {"name": "Command/Raw", "type": "String", "f_port": 11, "encoding": "raw"},
                        {"name": "Command/Interval", "type": "Int32", "f_port": 12, "encoding": "server",
                         "field": "interval_s"},
                    ],
                    **device,
                },
                {"id": "sensor", "dev_eui": SENSOR, "metrics": [{"path": "$.temperature", "name": "Temperature"}]},
            ],
        }
    )  # fmt: skip


def _metric(name: str, datatype: int, value: object) -> pb.Payload.Metric:
    metric = pb.Payload.Metric(name=name, datatype=datatype)
    if datatype == BOOLEAN:
        metric.boolean_value = bool(value)
    elif datatype == STRING:
        metric.string_value = str(value)
    else:
        metric.int_value = int(value)  # type: ignore[call-overload]
    return metric


def _refusals(host: SpbHost) -> list[object]:
    return [v for v, _ in host.values("network-server", "Status/LastRefusal", kinds=("DDATA",)) if v]


async def test_chirpstack_uplinks_status_and_bad_events_through_the_embedded_broker(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    host = SpbHost(broker.url.port, "env", "lora-host")
    await host.start(online=True)
    config = _chirpstack(broker.url.port, "lora-host")
    try:
        async with (
            MqttClient(url=broker.url, client_id="chirpstack") as server,
            running(config, broker.url.port, tmp_path) as source,
            recording(
                server, [f"application/{cs.APP}/device/+/command/down"], name="test.lorawan.downlinks"
            ) as listened,
        ):
            downlinks = listened.messages
            await until(lambda: host.of("DBIRTH", "meter"), what="the meter's DBIRTH")
            lpp = bytes.fromhex("01741676048301E2400502076C")  # 57.5 V, 1234.56 kWh, 19.00 kW
            first = cs.up(METER, 7, data=lpp, rssi=(-97, -64), snr=(-3.5, 8.25), dedup="dd-1")
            await server.publish(cs.topic(METER, "up"), first, qos=1)
            await until(lambda: last(host, "meter", "Energy") == 1234.56, what="Energy from Cayenne LPP")
            assert (last(host, "meter", "Voltage"), last(host, "meter", "Power")) == (57.5, 19.0)
            assert (last(host, "meter", "Radio/RSSI"), last(host, "meter", "Radio/SNR")) == (-64, 8.25)
            assert (last(host, "meter", "Radio/FCnt"), last(host, "meter", "Radio/Gateways")) == (7, 2)

            await server.publish(cs.topic(METER, "up"), first, qos=1)  # delivered twice: the same dedup id
            await until(lambda: last(host, "meter", "LoRaWAN/Duplicates") == 1, what="the duplicate counted")
            # the device restarted its session: counter 2 after 7, a new value, counted as a reset
            again = cs.up(METER, 2, data=bytes.fromhex("048301E2A4"), dedup="dd-2")  # 1235.56 kWh
            await server.publish(cs.topic(METER, "up"), again, qos=1)
            await until(lambda: last(host, "meter", "Energy") == 1235.56, what="the value after the reset")
            assert last(host, "meter", "LoRaWAN/FCntResets") == 1
            assert last(host, "meter", "LoRaWAN/Uplinks") == 2

            # decoded by the network server's codec: the object is used, the connector's codec not at all
            await server.publish(cs.topic(SENSOR, "up"), cs.up(SENSOR, 1, data=b"\xff", obj={"temperature": 21.5}))
            await until(lambda: last(host, "sensor", "Temperature") == 21.5, what="the server-decoded value")

            await server.publish(cs.topic(METER, "status"), cs.status(METER, battery=87.5, margin=9), qos=1)
            await until(lambda: last(host, "meter", "Battery/Level") == 87.5, what="the battery level")
            assert last(host, "meter", "Radio/Margin") == 9
            warning = cs.log(METER, code=integration.UPLINK_F_CNT_RESET, description="frame-counter reset")
            await server.publish(cs.topic(METER, "log"), warning, qos=1)
            await until(
                lambda: last(host, "meter", "LoRaWAN/LastLog") == "WARNING UPLINK_F_CNT_RESET: frame-counter reset",
                what="the log line",
            )

            # bad input: refused naming topic and field, counted; the good event after it goes through
            bad = orjson.loads(cs.up(METER, 9, data=b"")) | {"fCnt": "many"}
            await server.publish(cs.topic(METER, "up"), orjson.dumps(bad), qos=1)
            await until(lambda: last(host, "network-server", "Status/Refused") == 1, what="the refusal")
            await until(lambda: _refusals(host), what="the refusal's reason")
            assert _refusals(host)[-1] == f"{cs.topic(METER, 'up')}: $.fCnt: 'many' is not an integer"
            short = cs.up(METER, 10, data=bytes.fromhex("0483 01E2"), dedup="dd-3")  # energy cut short
            await server.publish(cs.topic(METER, "up"), short, qos=1)
            await until(lambda: len(_refusals(host)) == 2, what="the second refusal's reason")
            assert _refusals(host)[-1] == (
                f"{cs.topic(METER, 'up')}: $.data: Cayenne LPP byte 2: energy on channel 4 needs 3 bytes, "
                "the frame has 2"
            )
            stranger = cs.up("0000000000000099", 1, data=b"")
            await server.publish(cs.topic("0000000000000099", "up"), stranger, qos=1)
            await until(lambda: last(host, "network-server", "Status/UnknownDevices") == 1, what="the stranger")
            assert last(host, "network-server", "Status/Refused") == 2
            assert last(host, "meter", "Radio/FCnt") == 10  # its radio metrics are good: kept
            assert last(host, "meter", "Energy") == 1235.56

            # DCMD -> downlinks, read back with ChirpStack's own schema
            host.dcmd(config.node_id, "meter", [_metric("Command/Relay", BOOLEAN, True)])
            host.dcmd(config.node_id, "meter", [_metric("Command/Raw", STRING, "beef")])
            host.dcmd(config.node_id, "meter", [_metric("Command/Interval", 3, 300)])
            host.dcmd(config.node_id, "meter", [_metric("Command/Raw", STRING, "not hex")])
            await until(lambda: len(downlinks) == 3, what="three downlinks")
            await server.publish(cs.topic(METER, "ack"), cs.ack(METER, acknowledged=True), qos=1)
            await until(lambda: last(host, "meter", "LoRaWAN/Acked") == 1, what="the ack counted")
            assert source.counts["downlinks_refused"] == 1
    finally:
        host.stop()
    assert {m.topic for m in downlinks} == {f"application/{cs.APP}/device/{METER.lower()}/command/down"}
    commands = [cs.down_command(m.payload) for m in downlinks]
    assert [(c.dev_eui, c.f_port, c.confirmed, c.data) for c in commands] == [
        (METER.lower(), 10, True, bytes([3, 1, 1])),  # Cayenne LPP digital output 1 on channel 3
        (METER.lower(), 11, False, b"\xbe\xef"),
        (METER.lower(), 12, False, b""),
    ]
    assert dict(commands[2].object) == {"interval_s": 300}  # for ChirpStack's codec to encode
    assert all(c.id for c in commands)
    assert host.violations == []


async def test_a_silent_device_goes_stale_and_is_born_again_when_heard(broker: EmbeddedBroker, tmp_path: Path) -> None:
    host = SpbHost(broker.url.port, "env", "lora-host-2")
    await host.start(online=True)
    config = _chirpstack(broker.url.port, "lora-host-2", expected_interval_s=1.0)
    config = config.model_copy(
        update={"stale_after_missed": 1.5, "edge": config.edge.model_copy(update={"first_reading_wait_s": 0.1})}
    )
    try:
        async with (
            MqttClient(url=broker.url, client_id="chirpstack-2") as server,
            running(config, broker.url.port, tmp_path),
        ):
            await until(lambda: host.of("NBIRTH"), what="the NBIRTH")
            await server.publish(cs.topic(METER, "up"), cs.up(METER, 1, data=bytes.fromhex("0502076C")), qos=1)
            await until(lambda: last(host, "meter", "Power") == 19.0, what="a first value")
            await until(lambda: host.of("DDEATH", "meter"), what="DDEATH after 1.5 s of silence")
            births = len(host.of("DBIRTH", "meter"))
            await server.publish(cs.topic(METER, "up"), cs.up(METER, 2, data=bytes.fromhex("05020834")), qos=1)
            await until(lambda: len(host.of("DBIRTH", "meter")) > births, what="the meter born again")
            await until(lambda: last(host, "meter", "Power") == 21.0, what="the new value")
    finally:
        host.stop()
    # the sensor was never heard: born without a value (or not at all, once past its interval), never a reading
    assert {v for v, _ in host.values("sensor", "Temperature", kinds=("DBIRTH", "DDATA"))} <= {None}
    assert host.violations == []


async def test_the_things_stack_documented_messages_through_mosquitto(mosquitto: Mosquitto, tmp_path: Path) -> None:
    host = SpbHost(mosquitto.port, "env", "lora-host-3")
    await host.start(online=True)
    config = LorawanBridgeConfig.model_validate(
        {
            "name": "ttn",
            "edge": {"group": "env", "primary_host_id": "lora-host-3", "first_reading_wait_s": 0.2},
            "server": {"flavour": "tts", "application_id": "app1@tenant1", "host": "127.0.0.1",
                       "port": mosquitto.port, "client_id": "uns-lorawan-tts-test"},
            "devices": [
                {"id": "uno", "dev_eui": "0004A30B001C0530", "device_id": "dev1",
                 "metrics": [{"path": "$.temperature", "name": "Temperature"},
                             {"path": "$.luminosity", "name": "Luminosity"}],
                 "downlinks": [{"name": "Command/Raw", "type": "String", "f_port": 15, "encoding": "raw",
                                "confirmed": True}]},
            ],
        }
    )  # fmt: skip
    url = BrokerUrl(port=mosquitto.port)
    try:
        async with (
            MqttClient(url=url, client_id="tts") as server,
            running(config, mosquitto.port, tmp_path),
            recording(server, ["v3/app1@tenant1/devices/+/down/push"], name="test.lorawan.tts-downlinks") as listened,
        ):
            pushed = listened.messages
            await until(lambda: host.of("DBIRTH", "uno"), what="the device's DBIRTH")
            await server.publish("v3/app1@tenant1/devices/dev1/up", cs.tts("tts_up.json"), qos=1)
            await until(lambda: last(host, "uno", "Luminosity") == 0.64, what="the decoded payload")
            assert (last(host, "uno", "Temperature"), last(host, "uno", "Radio/RSSI")) == (1.0, -35)
            assert (last(host, "uno", "Radio/SNR"), last(host, "uno", "Radio/DataRate")) == (5.0, 7)
            host.dcmd(config.node_id, "uno", [_metric("Command/Raw", STRING, "BEEF")])
            await until(lambda: pushed, what="the down/push")
            await server.publish("v3/app1@tenant1/devices/dev1/down/ack", cs.tts("tts_down_ack.json"), qos=1)
            await until(lambda: last(host, "uno", "LoRaWAN/Acked") == 1, what="the documented ack")
            await server.publish("v3/app1@tenant1/devices/dev1/down/failed", cs.tts("tts_down_failed.json"))
            await until(
                lambda: last(host, "uno", "LoRaWAN/LastDownlink") == "failed: application downlink payload is too long",
                what="the documented failure",
            )
    finally:
        host.stop()
    [push] = pushed
    assert push.topic == "v3/app1@tenant1/devices/dev1/down/push"
    documented = orjson.loads(cs.tts("tts_down_push.json"))["downlinks"][0]
    sent = orjson.loads(push.payload)["downlinks"][0]
    assert sent == {"f_port": 15, "frm_payload": "vu8=", "priority": "NORMAL", "confirmed": True}
    assert set(sent) <= set(documented)  # the documented shape, with the raw payload instead of an object
    assert host.violations == []


async def test_uplinks_sent_while_the_connector_is_down_arrive_after_its_restart(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    host = SpbHost(mosquitto.port, "env", "lora-host-4")
    await host.start(online=True)
    config = _chirpstack(mosquitto.port, "lora-host-4").model_copy()
    lpp = bytes.fromhex("0502076C")
    try:
        async with MqttClient(url=BrokerUrl(port=mosquitto.port), client_id="chirpstack-4") as server:
            async with running(config, mosquitto.port, tmp_path):
                for f_cnt in range(1, 6):
                    await server.publish(cs.topic(METER, "up"), cs.up(METER, f_cnt, data=lpp), qos=1)
                await until(lambda: last(host, "meter", "Radio/FCnt") == 5, what="the first five")
            for f_cnt in range(6, 16):  # the connector is away: its persistent session at the broker queues them
                await server.publish(cs.topic(METER, "up"), cs.up(METER, f_cnt, data=lpp), qos=1)
            async with running(config, mosquitto.port, tmp_path):
                await until(lambda: last(host, "meter", "Radio/FCnt") == 15, what="the queued ten")
    finally:
        host.stop()
    seen = {v for v, _ in host.values("meter", "Radio/FCnt", kinds=("DBIRTH", "DDATA"))}
    assert set(range(1, 16)) <= seen
    assert host.violations == []

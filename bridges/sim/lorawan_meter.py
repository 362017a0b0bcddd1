"""The demo's LoRaWAN energy meter: a simulated ChirpStack v4 publishing the meter's uplinks into the hub's broker.

The meter (a three-phase meter with a LoRaWAN radio, mains powered) sends a Cayenne LPP frame every
``interval_s``: phase voltage (channel 1), current (2), frequency (3), energy (4, kWh, rolling over
past 80,000 as a 3-byte register does) and power (5, kW, as an analog input). The simulated network
server wraps each in the JSON its MQTT integration publishes on
``application/<id>/device/<devEui>/event/up`` (no device-profile codec: the connector decodes the
LPP itself), answers every sixth uplink with a ``status`` event, and takes downlinks from
``.../command/down``: Cayenne LPP ``digital_out_1`` opens (0) or closes (1) the meter's load relay,
acknowledged with an ``ack`` event. Seeded: the same seed gives the same readings.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import math
import random
import uuid
from typing import Self

import orjson

from bridges.lorawan.lpp import LppError, decode_lpp, encode_lpp
from bridges.sim.layout import GROUP
from model.bridges.common import EdgeNodeConfig
from model.bridges.lorawan import LorawanBridgeConfig
from uns.clock import at_epoch_ms, now_ms
from uns.connect import ClientFactory
from uns.mqtt.types import PubSub

__all__ = [
    "APPLICATION_ID",
    "DEVICE",
    "METER_EUI",
    "NODE",
    "LorawanMeterSim",
    "chirpstack_event",
    "demo_bridge",
]

log = logging.getLogger(__name__)

APPLICATION_ID = "5f0c8a7e-2d4b-4e61-9a3c-7b1e0d2f4a60"
"""The simulated ChirpStack application of the environmental monitoring devices."""
METER_EUI = "70B3D57ED0051A01"
DEVICE = "main-meter"
"""The meter's Sparkplug device id (and cell id in the demo plant)."""
NODE = "lorawan-environment"
"""The LoRaWAN connector's edge node id in the demo."""
_ROLLOVER_KWH = 80_000.0
_STATUS_EVERY = 6


def chirpstack_event(dev_eui: str, application_id: str, body: dict[str, object], *, at_ms: int) -> bytes:
    """An integration event as ChirpStack v4's JSON marshaler writes it: ``body`` plus time and deviceInfo."""
    moment = at_epoch_ms(at_ms)
    info = {
        "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242", "tenantName": "ChirpStack",
        "applicationId": application_id, "applicationName": "environment",
        "deviceProfileId": "0b7e7cb8-6c0f-4a8e-9d2f-3e5a1c9b7d40", "deviceProfileName": "energy-meter",
        "deviceName": "main-meter", "devEui": dev_eui.lower(), "deviceClassEnabled": "CLASS_A", "tags": {},
    }  # fmt: skip
    return orjson.dumps({"time": moment.isoformat().replace("+00:00", "Z"), "deviceInfo": info, **body})


class _Meter:
    """The meter's readings: a slow daily-like swing of the load, noise, and the relay."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(f"{seed}:lorawan-meter")  # noqa: S311  (simulation noise; its own generator)
        self.energy_kwh = 12_000.0 + self._random.uniform(0, 500)
        self.relay = True
        self.f_cnt = 0

    def frame(self, elapsed_s: float, interval_s: float) -> bytes:
        load = 38.0 + 6.0 * math.sin(elapsed_s / 600.0) + self._random.gauss(0, 0.8)
        power_kw = max(0.0, load) if self.relay else 0.2  # the meter's own electronics
        self.energy_kwh = (self.energy_kwh + power_kw * interval_s / 3600.0) % _ROLLOVER_KWH
        voltage = 230.0 + self._random.gauss(0, 1.2)
        current = power_kw * 1000.0 / (3 * voltage * 0.95)
        frequency = 50.0 + self._random.gauss(0, 0.02)
        return encode_lpp(
            {
                "voltage_1": round(voltage, 2),
                "current_2": round(current, 2),
                "frequency_3": round(frequency, 2),
                "energy_4": round(self.energy_kwh, 2),
                "analog_in_5": round(power_kw, 2),
            }
        )


class LorawanMeterSim:
    """The simulated network server with its one meter, as a long-lived part of ``uns up``.

    Args:
        clients: the hub's broker (the network server's MQTT integration publishes there).
        seed: the demo's seed.
        interval_s: real seconds between uplinks (a real meter: 5 to 15 minutes).
    """

    name = "lorawan-sim"

    def __init__(self, *, clients: ClientFactory, seed: int, interval_s: float = 10.0) -> None:
        self._clients = clients
        self._interval_s = interval_s
        self.meter = _Meter(seed)
        self._client: PubSub | None = None
        self._stack = contextlib.AsyncExitStack()
        self.uplinks = 0
        self.downlinks = 0

    def bridge_config(self, primary_host_id: str) -> LorawanBridgeConfig:
        """The connector that reads this network server (its devices' expected interval is ours)."""
        return demo_bridge(primary_host_id, interval_s=self._interval_s)

    @property
    def uplink_topic(self) -> str:
        """Where the meter's uplinks are published."""
        return f"application/{APPLICATION_ID}/device/{METER_EUI.lower()}/event/up"

    async def __aenter__(self) -> Self:
        async with contextlib.AsyncExitStack() as stack:
            client = await stack.enter_async_context(self._clients(client_id="uns-sim-chirpstack"))
            await client.subscribe([f"application/{APPLICATION_ID}/device/+/command/down"], qos=1)
            self._stack = stack.pop_all()
        self._client = client
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._client = None
        await self._stack.aclose()

    async def run(self) -> None:
        """Send uplinks every ``interval_s`` and apply downlinks, until cancelled."""
        client = self._client
        if client is None:
            raise RuntimeError("LorawanMeterSim.run() needs `async with` first")
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._uplinks(client), name="uns.lorawan-sim.uplinks")
            tasks.create_task(self._downlinks(client), name="uns.lorawan-sim.downlinks")

    async def _uplinks(self, client: PubSub) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        while True:
            await self.send_uplink(client, loop.time() - start)
            await asyncio.sleep(self._interval_s)

    async def send_uplink(self, client: PubSub, elapsed_s: float) -> None:
        """One uplink (and every sixth a status event), at QoS 1 as ChirpStack publishes them."""
        meter = self.meter
        meter.f_cnt += 1
        data = meter.frame(elapsed_s, self._interval_s)
        at = now_ms()
        body: dict[str, object] = {
            "deduplicationId": str(uuid.uuid4()), "devAddr": "01fa3b2c", "adr": True, "dr": 5, "fCnt": meter.f_cnt,
            "fPort": 1, "confirmed": False, "data": base64.b64encode(data).decode(),
            "rxInfo": [{"gatewayId": "0016c001f153a000", "uplinkId": meter.f_cnt, "rssi": -71 - meter.f_cnt % 5,
                        "snr": 8.5 - (meter.f_cnt % 3) * 0.25, "channel": 2, "crcStatus": "CRC_OK"}],
            "txInfo": {"frequency": 868_500_000, "modulation": {"lora": {"bandwidth": 125_000, "spreadingFactor": 7,
                                                                          "codeRate": "CR_4_5"}}},
        }  # fmt: skip
        await client.publish(self.uplink_topic, chirpstack_event(METER_EUI, APPLICATION_ID, body, at_ms=at), qos=1)
        self.uplinks += 1
        if meter.f_cnt % _STATUS_EVERY == 1:
            status = {"deduplicationId": str(uuid.uuid4()), "margin": 9, "externalPowerSource": True,
                      "batteryLevelUnavailable": True, "batteryLevel": 0.0}  # fmt: skip
            topic = self.uplink_topic.removesuffix("/up") + "/status"
            await client.publish(topic, chirpstack_event(METER_EUI, APPLICATION_ID, status, at_ms=at), qos=1)

    async def _downlinks(self, client: PubSub) -> None:
        async for message in client.messages():
            try:
                command = orjson.loads(message.payload)
                frame = decode_lpp(base64.b64decode(command.get("data") or ""))
            except (orjson.JSONDecodeError, ValueError, LppError, AttributeError) as exc:
                log.warning("simulated network server: downlink on %s ignored: %s", message.topic, exc)
                continue
            if "digital_out_1" in frame:
                self.meter.relay = bool(frame["digital_out_1"])
                log.info("simulated energy meter: load relay %s", "closed" if self.meter.relay else "open")
            self.downlinks += 1
            acked = {"deduplicationId": str(uuid.uuid4()), "queueItemId": str(command.get("id", "")),
                     "acknowledged": True, "fCntDown": self.downlinks}  # fmt: skip
            topic = f"application/{APPLICATION_ID}/device/{METER_EUI.lower()}/event/ack"
            await client.publish(topic, chirpstack_event(METER_EUI, APPLICATION_ID, acked, at_ms=now_ms()), qos=1)


def demo_bridge(primary_host_id: str, *, interval_s: float = 10.0) -> LorawanBridgeConfig:
    """The LoRaWAN connector reading the simulated network server through the hub's own broker."""
    return LorawanBridgeConfig.model_validate(
        {
            "name": NODE,
            "edge": EdgeNodeConfig(group=GROUP, primary_host_id=primary_host_id),
            "server": {"flavour": "chirpstack", "application_id": APPLICATION_ID},
            "devices": [
                {
                    "id": DEVICE, "dev_eui": METER_EUI, "codec": "cayenne_lpp", "expected_interval_s": interval_s,
                    "battery": False,
                    "metrics": [
                        {"path": "$.voltage_1", "name": "Voltage", "unit": "V", "type": "Float"},
                        {"path": "$.current_2", "name": "Current", "unit": "A", "type": "Float"},
                        {"path": "$.frequency_3", "name": "Frequency", "unit": "Hz", "type": "Float"},
                        {"path": "$.energy_4", "name": "Energy", "unit": "kWh"},
                        {"path": "$.analog_in_5", "name": "Power", "unit": "kW", "type": "Float"},
                    ],
                    "downlinks": [{"name": "Command/Relay", "f_port": 10, "field": "digital_out_1"}],
                }
            ],
        }
    )  # fmt: skip

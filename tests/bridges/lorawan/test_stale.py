"""A silent LoRaWAN device goes stale in the UNS: the connector's DDEATH, the host's stale mark."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from model.bridges.lorawan import LorawanBridgeConfig
from tests.bridges.lorawan import chirpstack as cs
from tests.bridges.lorawan.running import running
from tests.fixtures.hub import running_host
from tests.fixtures.waiting import until
from uns.mqtt.client import MqttClient
from uns.mqtt.types import BrokerUrl

EUI = "70B3D57ED0051A0C"


async def test_a_silent_device_s_values_go_stale_at_the_host_and_good_again_when_heard(tmp_path: Path) -> None:
    async with running_host("embedded", None, tmp_path) as hub:
        url = BrokerUrl.from_str(hub.url)
        config = LorawanBridgeConfig.model_validate(
            {
                "name": hub.node,
                "edge": {"group": hub.group, "primary_host_id": None, "first_reading_wait_s": 0.2},
                "server": {"flavour": "chirpstack", "application_id": cs.APP},  # the hub's broker
                "stale_after_missed": 2.0,
                "devices": [{"id": "filler", "dev_eui": EUI, "expected_interval_s": 0.5,
                             "metrics": [{"path": "$.temperature_3", "name": "Temp"}]}],
            }
        )  # fmt: skip
        topic = f"{hub.cell}/data/Temp"
        seen: list[dict[str, object]] = []
        async with MqttClient(url=url, client_id="uns-reader") as reader, MqttClient(url=url, client_id="lns") as lns:
            await reader.subscribe([topic], qos=1)

            async def read() -> None:
                async for message in reader.messages():
                    seen.append(orjson.loads(message.payload))

            task = asyncio.create_task(read(), name="test.uns-reader")
            try:
                async with running(config, url.port, tmp_path):
                    await lns.publish(cs.topic(EUI, "up"), cs.up(EUI, 1, data=bytes.fromhex("03670110")), qos=1)
                    await until(lambda: any(e["value"] == 27.2 and e["quality"] == "good" for e in seen),
                                what="27.2 degC, good")  # fmt: skip
                    # no uplink for 2 x 0.5 s: DDEATH, and the host marks the last value stale
                    await until(lambda: seen[-1]["quality"] == "stale", what="the value stale", within_s=10)
                    assert seen[-1]["value"] == 27.2
                    await lns.publish(cs.topic(EUI, "up"), cs.up(EUI, 2, data=bytes.fromhex("036700FF")), qos=1)
                    await until(lambda: seen[-1] == seen[-1] | {"value": 25.5, "quality": "good"}, what="heard again")
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

"""The demo's pallet scale: each pallet the model completes is weighed into one lot, through the serial source."""

from __future__ import annotations

from pathlib import Path

import orjson

from bridges.registry import build_edge_node
from bridges.sim.serial_palletizing import PALLETIZER_PATH, SCALE_DEVICE, SERIAL_NODE, PalletScale
from tests.bridges.edge.spb_host import SpbHost, until
from tests.fixtures.recording import recording
from tests.fixtures.running import running, running_task
from uns.broker import EmbeddedBroker
from uns.connect import network_clients
from uns.mqtt.client import MqttClient


async def test_each_pallet_is_weighed_into_one_lot(broker: EmbeddedBroker, tmp_path: Path) -> None:
    counter = [4_294_967_295]  # the model's 32-bit pallet counter, about to roll over
    host = SpbHost(broker.url.port, "acme-dallas", "uns-hub")
    await host.start(online=True)
    async with (
        PalletScale(pallets=lambda: counter[0], seed=7, settle_s=0.3, on_scale_s=0.6) as pallets,
        MqttClient(url=broker.url, client_id="mes") as listener,
        recording(listener, [f"{PALLETIZER_PATH}/mes/lot_production"], name="tests.listen") as listened,
    ):
        seen = listened.messages
        node = build_edge_node(pallets.bridge_config(), network_clients(broker.url), tmp_path)
        try:
            async with running(node, name="tests.node"), running_task(pallets, name="tests.pallets"):
                await until(lambda: host.of("DBIRTH", SCALE_DEVICE), what="the scale born")
                await until(lambda: len(seen) == 1, what="the lot of the pallet on its way at the start")
                counter[0] = 0  # one more pallet completed (and the counter rolled over)
                await until(lambda: len(seen) == 2, what="the next pallet's lot")
        finally:
            host.stop()
    bodies = [orjson.loads(message.payload) for message in seen]
    assert all(780.0 < body["quantity"] < 820.0 for body in bodies)
    assert [body["unit"] for body in bodies] == ["kg", "kg"]
    assert bodies[0]["lot_id"].startswith("PAL-L3-")
    assert bodies[0]["event_id"] != bodies[1]["event_id"]
    assert {body["source"] for body in bodies} == {SERIAL_NODE}
    assert pallets.weighed == 2
    assert host.violations == []

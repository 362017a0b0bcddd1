"""MQTT.js 5.x (npm mqtt, nobody here wrote it) against the running hub, over TCP and over WebSocket."""

from __future__ import annotations

import json
import time

import pytest

from tests.peers.hub_rig import PeerHub
from tests.peers.node_peer import node_peer
from uns.mqtt import MqttClient
from uns.mqtt.types import BrokerUrl

# checked before the hub starts: without node a fresh machine skips at once, naming the install
pytestmark = pytest.mark.requires("node", "peer-packages")

CELL = "acme/dallas/bottling/line1/filler"


def _envelope(value: object, datatype: str) -> bytes:
    return json.dumps(
        {"value": value, "timestamp_ms": time.time_ns() // 1_000_000, "quality": "good", "datatype": datatype}
    ).encode()


@pytest.mark.parametrize("transport", ["tcp", "ws"])
async def test_mqtt_js_reads_retained_envelopes_and_publishes_into_the_uns(peer_hub: PeerHub, transport: str) -> None:
    retained = f"{CELL}/data/PeerProbe"
    async with MqttClient(url=BrokerUrl.from_str(peer_hub.mqtt), client_id="peer-probe") as ours:
        await ours.publish(retained, _envelope(72.5, "Double"), qos=1, retain=True)
    published = f"{CELL}/data/FromMqttJs"
    plan = {
        "url": peer_hub.mqtt if transport == "tcp" else peer_hub.ws,
        "subscribe": [f"{peer_hub.enterprise}/#"],
        # a plain value, as Node-RED and most MQTT.js code send it: no datatype, no timestamp (point 9)
        "publish": [{"topic": published, "payload": '{"value": 21.5}', "retain": True}],
        "until": published,  # its own publish, back through the broker
        "timeoutMs": 5000,
    }
    async with node_peer("mqtt_peer.js", json.dumps(plan)) as client:
        events = await client.all_events()
    assert [e["event"] for e in events][-1] == "done", events
    assert events[0]["event"] == "connack", events
    messages = {e["topic"]: e for e in events if e["event"] == "message"}
    assert messages[retained]["retain"] is True  # delivered as retained on subscribe
    assert json.loads(str(messages[retained]["payload"]))["value"] == 72.5
    assert json.loads(str(messages[published]["payload"]))["value"] == 21.5
    # the value MQTT.js published is in the UNS: stored by the historian as the series' latest, its
    # datatype inferred from the JSON number
    await peer_hub.wait_last(
        published,
        lambda rows: [(r["value"], r["datatype"], r["quality"]) for r in rows] == [(21.5, "Double", "good")],
        what="MQTT.js's value in the historian",
    )


@pytest.mark.parametrize("transport", ["tcp", "ws"])
async def test_mqtt_js_with_protocol_version_5_is_refused_at_once(peer_hub: PeerHub, transport: str) -> None:
    # The embedded broker speaks MQTT 3.1.1 only. A v5 CONNECT must get CONNACK 0x01 (unacceptable
    # protocol version, MQTT-3.1.2-2) at once. EXPECTATION OF ISSUE 12 POINT 5 (the broker's fix):
    # before it, the v5 properties were read as the client id and the client hung 10 s for nothing.
    plan = {
        "url": peer_hub.mqtt if transport == "tcp" else peer_hub.ws,
        "protocolVersion": 5,
        "properties": {"sessionExpiryInterval": 300, "receiveMaximum": 100},  # what made the 3.1.1 parser wait
        "timeoutMs": 3000,
    }
    async with node_peer("mqtt_peer.js", json.dumps(plan)) as client:
        events = await client.all_events()
    ended = next(e for e in events if e["event"] in ("error", "close", "connack", "timeout"))
    assert ended["event"] in ("error", "close"), f"a v5 client must be refused, not {ended}: {events}"
    assert float(str(ended["ms"])) < 1000, f"refused after {ended['ms']} ms, not at once: {events}"
    refusal = next((e for e in events if e["event"] == "error"), None)
    assert refusal is not None, f"no CONNACK refusal, only a closed socket: {events}"
    assert refusal["code"] in (1, 132), refusal  # 0x01 as MQTT.js reports the 3.1.1 code; 0x84 in v5 terms

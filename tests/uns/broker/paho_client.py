"""A paho-mqtt client driven from async tests: paho runs in its own thread, the test awaits conditions."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from tests.fixtures.waiting import until
from uns.mqtt.types import BrokerUrl, Message

__all__ = ["Paho"]


class Paho:
    """One paho client; ``received`` collects every message it gets."""

    def __init__(
        self,
        url: BrokerUrl,
        client_id: str,
        *,
        username: str | None = None,
        password: str | None = None,
        transport: str = "tcp",
        ws_port: int | None = None,
        clean_session: bool = True,
        protocol: MQTTProtocolVersion = mqtt.MQTTv311,
    ) -> None:
        self.url = url
        self.port = ws_port if ws_port is not None else url.port
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=None if protocol == mqtt.MQTTv5 else clean_session,  # MQTT 5 has clean start instead
            transport=transport,  # type: ignore[arg-type]
            reconnect_on_failure=False,
            protocol=protocol,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client_id = client_id
        self.received: list[Message] = []
        self.connack: int | None = None
        self.disconnected = threading.Event()
        self.granted: dict[int, list[int]] = {}
        self.acked: set[int] = set()
        self._lock = threading.Lock()
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        self.client.on_disconnect = self._on_disconnect

    def _on_connect(self, client: object, userdata: object, flags: object, rc: ReasonCode, props: object) -> None:
        self.connack = int(rc.value)

    def _on_message(self, client: object, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append(
                Message(topic=msg.topic, payload=bytes(msg.payload), qos=msg.qos, retain=bool(msg.retain))
            )

    def _on_subscribe(self, client: object, userdata: object, mid: int, codes: list[ReasonCode], props: object) -> None:
        self.granted[mid] = [int(code.value) for code in codes]

    def _on_publish(self, client: object, userdata: object, mid: int, rc: object, props: object) -> None:
        self.acked.add(mid)

    def _on_disconnect(self, client: object, userdata: object, flags: object, rc: object, props: object) -> None:
        self.disconnected.set()

    def will_set(self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False) -> None:
        """Set the will before connecting."""
        self.client.will_set(topic, payload, qos=qos, retain=retain)

    async def connect(self, *, expect_ok: bool = True) -> int:
        """Connect and wait for CONNACK; returns the (MQTT 5 style) reason code, 0 = accepted."""
        self.client.connect_async(self.url.host, self.port, keepalive=30)
        self.client.loop_start()
        await until(
            lambda: self.connack is not None or self.disconnected.is_set(), what=f"CONNACK for {self.client_id}"
        )
        code = self.connack if self.connack is not None else -1
        if expect_ok:
            assert code == 0, f"{self.client_id}: connect refused with {code}"
        return code

    async def subscribe(self, topic_filter: str, qos: int = 1) -> int:
        """Subscribe and return the granted QoS (128 = refused)."""
        _result, sent_mid = self.client.subscribe(topic_filter, qos=qos)
        assert sent_mid is not None
        mid: int = sent_mid
        await until(lambda: mid in self.granted, what=f"SUBACK for {topic_filter}")
        return self.granted[mid][0]

    async def publish(self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False) -> None:
        """Publish and wait until paho has sent it (QoS 0) or got its ack (QoS 1/2)."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        await until(lambda: info.mid in self.acked, what=f"publish of {topic}")

    def topics(self) -> list[str]:
        """Topics received so far, in order."""
        with self._lock:
            return [message.topic for message in self.received]

    async def wait_messages(self, count: int, *, deadline_s: float = 5.0) -> list[Message]:
        """Wait until ``count`` messages arrived and return them all."""
        await until(
            lambda: len(self.received) >= count, within_s=deadline_s, what=f"{count} messages at {self.client_id}"
        )
        with self._lock:
            return list(self.received)

    def kill(self) -> None:
        """Drop the TCP connection without DISCONNECT (the broker must publish the will)."""
        sock = self.client.socket()
        self.client.loop_stop()
        if sock is not None:
            sock.close()

    def close(self) -> None:
        """Disconnect cleanly and stop paho's thread."""
        if self.client.is_connected():
            self.client.disconnect()
        self.client.loop_stop()

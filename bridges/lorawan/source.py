"""The LoRaWAN source: a network server's MQTT integration read into Sparkplug devices, DCMD sent as downlinks.

Its subscription is a persistent session (``clean_session`` false, QoS 1, a stable client id) at the
integration's broker, and an event is acknowledged only once the edge node took its samples (it
asks for the next event only after handling one), so a connector that is down or killed loses
nothing the broker accepted: the events come again, and a re-delivered uplink is recognised as a
duplicate by its id. A device silent past its expected interval is reported down (DDEATH: its
values go stale at the host) until its next uplink births it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Self

from bridges.json_paths import MISSING, JsonPath, convert
from bridges.lorawan.codec import PayloadCodec, load_codec
from bridges.lorawan.downlink import DownlinkRefused, downlink_message
from bridges.lorawan.events import (
    DownlinkResult,
    EventRefused,
    Ignored,
    Join,
    LogLine,
    NetworkEvent,
    Status,
    Uplink,
    parse_chirpstack,
    parse_tts,
)
from bridges.lorawan.lpp import LppError
from bridges.lorawan.tracker import COUNTERS, UplinkTracker
from bridges.source import DeviceDown, Sample, Samples, SourceEvent, SourceTasks, TagSpec
from bridges.status import StatusDevice, camel
from model.bridges.lorawan import STATUS_DEVICE, LorawanBridgeConfig, LorawanDevice, LorawanDownlink
from model.envelope import Quality
from uns.clock import now_ms
from uns.connect import ClientFactory
from uns.errors import BridgeError
from uns.logs import RateLimitedLog
from uns.mqtt.types import Message, PubSub
from uns.sparkplug import DataType, MetricValue

__all__ = ["DEVICE_TAGS", "STATUS_COUNTERS", "LorawanSource"]

log = logging.getLogger(__name__)

DEVICE_TAGS: tuple[tuple[str, DataType, str | None], ...] = (
    ("Radio/RSSI", DataType.Int32, "dBm"),
    ("Radio/SNR", DataType.Float, "dB"),
    ("Radio/FCnt", DataType.UInt32, None),
    ("Radio/DataRate", DataType.UInt32, None),
    ("Radio/Gateways", DataType.UInt32, None),
    ("Radio/Margin", DataType.Int32, "dB"),
    ("Battery/Level", DataType.Float, "%"),
    ("Battery/ExternalPower", DataType.Boolean, None),
    *((f"LoRaWAN/{camel(c)}", DataType.Int64, None) for c in COUNTERS),
    ("LoRaWAN/LastDownlink", DataType.String, None),
    ("LoRaWAN/LastLog", DataType.String, None),
)
"""What the connector reports of every device beside its decoded metrics: radio, battery, counters."""
STATUS_COUNTERS = ("events", "refused", "ignored", "unknown_devices", "downlinks", "downlinks_refused")
"""The status device's counters (``Status/<CamelCase>``)."""

_TICK_S = 1.0  # silence checks and status refreshes this often
_FIELD_OF_DATA = {"chirpstack": "$.data", "tts": "$.uplink_message.frm_payload"}


_COUNTER_NAMES = tuple((c, f"LoRaWAN/{camel(c)}") for c in COUNTERS)


@dataclasses.dataclass(frozen=True, slots=True)
class _Device:
    config: LorawanDevice
    codec: PayloadCodec
    paths: tuple[tuple[str, JsonPath, DataType], ...]
    downlinks: Mapping[str, LorawanDownlink]


class LorawanSource:
    """A ``Source`` for ``kind: lorawan``.

    Args:
        config: the connector's config.
        clients: MQTT clients of the integration's broker (the hub's when ``server.host`` is null).
    """

    def __init__(self, *, config: LorawanBridgeConfig, clients: ClientFactory) -> None:
        self.name = config.name
        self._config = config
        self._clients = clients
        tts = config.server.flavour == "tts"
        self._parse: Callable[[str, bytes], NetworkEvent] = parse_tts if tts else parse_chirpstack
        self._devices = {
            (d.tts_id if tts else d.dev_eui.upper()): _Device(
                config=d,
                codec=load_codec(d.codec),
                paths=tuple((m.name, JsonPath.from_str(m.path), DataType[m.type]) for m in d.metrics),
                downlinks={link.name: link for link in d.downlinks},
            )
            for d in config.devices
        }
        self._by_id = {device.config.id: device for device in self._devices.values()}
        self._tracker = UplinkTracker(
            devices=[
                (key, round(d.config.expected_interval_s * config.stale_after_missed * 1000))
                for key, d in self._devices.items()
            ],
            kept=config.dedupe_kept,
            now_ms=now_ms(),
        )
        self._status_device = StatusDevice(device=STATUS_DEVICE, counters=STATUS_COUNTERS)
        self.counts = self._status_device.counts
        self._warn = RateLimitedLog(log)
        self._stack = contextlib.AsyncExitStack()
        self._client: PubSub | None = None
        # one slot: a message is acknowledged after its samples were taken, so few are read ahead
        self._inbox: SourceTasks[Message] = SourceTasks(f"lorawan[{config.name}]", maxsize=1)

    @property
    def subscriptions(self) -> list[str]:
        """The integration topics the connector reads."""
        app = self._config.server.application_id
        if self._config.server.flavour == "tts":
            return [f"v3/{app}/devices/+/up", f"v3/{app}/devices/+/join", f"v3/{app}/devices/+/down/+"]
        return [f"application/{app}/device/+/event/+"]

    async def __aenter__(self) -> Self:
        async with contextlib.AsyncExitStack() as stack:
            client = await stack.enter_async_context(
                self._clients(client_id=self._config.session_id, clean_session=False, manual_ack=True)
            )
            await client.subscribe(self.subscriptions, qos=1)
            self._stack = stack.pop_all()
        self._client = client
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._inbox.stop()
        self._client = None
        await self._stack.aclose()

    def tags(self) -> Sequence[TagSpec]:
        """Each device's decoded metrics, its downlinks (writable), its radio, battery and counters; then the status."""
        tags: list[TagSpec] = []
        for device in self._devices.values():
            d = device.config
            tags += [TagSpec(d.id, m.name, DataType[m.type], m.unit, deadband=m.deadband) for m in d.metrics]
            tags += [TagSpec(d.id, link.name, DataType[link.type], writable=True) for link in d.downlinks]
            tags += [
                TagSpec(d.id, name, datatype, unit)
                for name, datatype, unit in DEVICE_TAGS
                if d.battery or name != "Battery/Level"
            ]
        return [*tags, *self._status_device.tags()]

    async def events(self) -> AsyncIterator[SourceEvent]:
        """Samples per event, ``DeviceDown`` for a device silent too long, the status device each second.

        The broker's messages are read by a task of their own into a one-slot queue (``SourceTasks``);
        each is acknowledged after its samples were taken by the consumer.
        """
        client = self._client
        if client is None:
            raise RuntimeError("LorawanSource.events() needs `async with source:` first")
        self._inbox.start(self._read(client), "read")
        try:
            yield self._status(now_ms())
            due = now_ms() + round(_TICK_S * 1000)
            while True:
                item: Message | None
                try:
                    # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
                    async with asyncio.timeout(_TICK_S):
                        item = await self._inbox.get()
                except TimeoutError:
                    item = None
                now = now_ms()
                if item is not None:
                    for batch in self._handle(item, now):
                        yield batch
                    client.ack(item)  # the consumer took every sample above
                if item is None or now >= due:  # once a tick, not per event: the check walks every device
                    due = now + round(_TICK_S * 1000)
                    for key, silent_ms in self._tracker.fell_silent(now_ms=now):
                        d = self._devices[key].config
                        reason = f"no uplink for {silent_ms / 1000:.0f} s (expected every {d.expected_interval_s:g} s)"
                        yield DeviceDown(d.id, reason)
                    yield self._status(now)
        finally:
            await self._inbox.stop()

    async def _read(self, client: PubSub) -> None:
        async for message in client.messages():  # an error ends the task: raised in events()
            await self._inbox.put(message)

    async def write(self, device: str, name: str, value: MetricValue) -> None:
        """A DCMD of a downlink metric: enqueued at the network server (QoS 1, awaited)."""
        known = self._by_id.get(device)
        spec = known.downlinks.get(name) if known is not None else None
        if known is None or spec is None:
            raise BridgeError(self.name, device, f"{name}: not a downlink of this device")
        client = self._client
        if client is None:
            raise BridgeError(self.name, device, f"{name}: not connected to the network server's broker")
        try:
            message = downlink_message(self._config.server, known.config, spec, known.codec, value)
        except DownlinkRefused as exc:
            self.counts["downlinks_refused"] += 1
            raise BridgeError(self.name, device, f"{name}: {exc}") from exc
        try:
            await client.publish(message.topic, message.payload, qos=1)
        except Exception as exc:  # the broker is away: the DCMD is refused and counted by the edge node
            raise BridgeError(self.name, device, f"{name}: downlink not enqueued: {exc!r}") from exc
        self.counts["downlinks"] += 1
        log.info("lorawan %s: downlink %s=%r to %s on %s", self.name, name, value, device, message.topic)

    # -- events ---------------------------------------------------------------------------------

    def _refuse(self, topic: str, field: str, reason: str) -> None:
        self._status_device.refused(f"{topic}: {field}: {reason}")
        self._warn.warning(f"refused|{field}", "lorawan %s: event refused: %s: %s: %s", self.name, topic, field, reason)

    def _handle(self, message: Message, now: int) -> list[Samples]:
        try:
            event = self._parse(message.topic, message.payload)
        except EventRefused as exc:
            self._refuse(exc.topic, exc.field, exc.reason)
            return []
        if isinstance(event, Ignored):
            self.counts["ignored"] += 1
            return []
        device = self._devices.get(event.device)
        if device is None:
            self.counts["unknown_devices"] += 1
            self._warn.warning(
                f"unknown|{event.device}", "lorawan %s: %s: device %s is not configured", self.name,
                message.topic, event.device,
            )  # fmt: skip
            return []
        self.counts["events"] += 1
        stamp = event.time_ms if event.time_ms is not None else now
        samples: list[Sample] = []
        if isinstance(event, Uplink):
            verdict = self._tracker.uplink(event.device, event.uplink_id, event.f_cnt, now_ms=now)
            if verdict.fresh:
                samples += self._uplink(message.topic, device, event, stamp)
        elif isinstance(event, Status):
            self._tracker.heard(event.device, now_ms=now)
            if event.battery_percent is not None and device.config.battery:
                samples.append(Sample("Battery/Level", event.battery_percent, stamp))
            samples.append(Sample("Battery/ExternalPower", event.external_power, stamp))
            if event.margin_db is not None:
                samples.append(Sample("Radio/Margin", event.margin_db, stamp))
        elif isinstance(event, Join):
            self._tracker.joined(event.device, now_ms=now)
        elif isinstance(event, DownlinkResult):
            self._tracker.devices[event.device].counts[event.outcome] += 1
            samples.append(Sample("LoRaWAN/LastDownlink", f"{event.outcome}: {event.detail}", now))
        elif isinstance(event, LogLine):
            quality = Quality.good if event.level == "INFO" else Quality.uncertain
            samples.append(Sample("LoRaWAN/LastLog", f"{event.level} {event.code}: {event.description}", now, quality))
        counts = self._tracker.devices[event.device].counts
        # the connector's own counts and lines are stamped when it learnt of them; what the device measured
        # carries the network server's time (right even for events a broker queued while the connector was away)
        samples += [Sample(name, counts[c], now) for c, name in _COUNTER_NAMES]
        return [Samples(device.config.id, samples)]

    def _uplink(self, topic: str, device: _Device, uplink: Uplink, stamp: int) -> list[Sample]:
        samples = [
            Sample("Radio/FCnt", uplink.f_cnt, stamp),
            Sample("Radio/Gateways", uplink.gateways, stamp),
        ]
        if uplink.rssi is not None:
            samples.append(Sample("Radio/RSSI", uplink.rssi, stamp))
        if uplink.snr is not None:
            samples.append(Sample("Radio/SNR", uplink.snr, stamp))
        if uplink.data_rate is not None and uplink.data_rate >= 0:
            samples.append(Sample("Radio/DataRate", uplink.data_rate, stamp))
        decoded = uplink.decoded
        if decoded is None:
            try:
                decoded = device.codec.decode(uplink.f_port, uplink.data)
            except LppError as exc:  # the offset is in the reason
                self._refuse(topic, _FIELD_OF_DATA[self._config.server.flavour], str(exc))
                return samples  # the radio metrics are good: kept
            except ValueError as exc:
                self._refuse(topic, _FIELD_OF_DATA[self._config.server.flavour], f"codec {device.config.codec}: {exc}")
                return samples
        for name, path, datatype in device.paths:
            found = path.find(decoded)
            if found is MISSING:
                continue  # this frame (another FPort, another frame type) does not carry it
            try:
                samples.append(Sample(name, convert(found, datatype), stamp))
            except ValueError as exc:
                self._refuse(topic, f"object {'$' + ''.join(_step(s) for s in path.steps)}", f"{name}: {exc}")
                samples.append(Sample(name, None, stamp, Quality.bad))
        return samples

    def _status(self, now: int) -> Samples:
        return self._status_device.samples(now)


def _step(step: str | int) -> str:
    return f"[{step}]" if isinstance(step, int) else f".{step}"

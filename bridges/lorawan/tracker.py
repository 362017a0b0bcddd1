"""Per-device uplink bookkeeping: duplicates, frame-counter resets, lost frames, silence (pure: given the time).

A LoRaWAN network server already refuses replayed frames, so what reaches the application twice is
the same uplink delivered again (an MQTT re-delivery, a second integration, a confirmed uplink sent
again): the same ChirpStack ``deduplicationId`` or The Things Stack ``as:up:`` id, or the frame
counter of the last uplink. A counter lower than the last means the device restarted its session
(a rejoin, or an ABP device that reset): counted, and taken as the new start. A join resets it too.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable

__all__ = ["COUNTERS", "DeviceCounts", "UplinkTracker", "Verdict"]

COUNTERS = ("uplinks", "duplicates", "f_cnt_resets", "frames_lost", "joins", "acked", "nacked", "sent", "failed")
"""Per-device counters, published as ``LoRaWAN/<CamelCase>``."""


@dataclasses.dataclass(slots=True)
class DeviceCounts:
    """What happened to one device since the connector started."""

    counts: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    last_f_cnt: int | None = None
    heard_ms: int = 0
    silent: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    """Whether an uplink is new, and what it told about the frame counter."""

    fresh: bool
    reset: bool = False
    lost: int = 0


class UplinkTracker:
    """Duplicates, counters and silence of a set of devices.

    Args:
        devices: the device keys (DevEUI or device id) and each one's silence limit in ms.
        kept: uplink ids remembered for duplicate detection.
        now_ms: the start: a device never heard is silent ``limit`` after it.
    """

    def __init__(self, *, devices: Iterable[tuple[str, int]], kept: int, now_ms: int) -> None:
        self._limits = dict(devices)
        self.devices = {key: DeviceCounts(heard_ms=now_ms) for key in self._limits}
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._kept = kept

    def uplink(self, device: str, uplink_id: str | None, f_cnt: int, *, now_ms: int) -> Verdict:
        """Record an uplink of a known device; a duplicate changes nothing but its counter."""
        state = self.devices[device]
        if (uplink_id is not None and uplink_id in self._seen) or f_cnt == state.last_f_cnt:
            state.counts["duplicates"] += 1
            return Verdict(fresh=False)
        if uplink_id is not None:
            self._seen[uplink_id] = None
            if len(self._seen) > self._kept:
                self._seen.popitem(last=False)
        last, state.last_f_cnt = state.last_f_cnt, f_cnt
        self.heard(device, now_ms=now_ms)
        state.counts["uplinks"] += 1
        if last is not None and f_cnt < last:
            state.counts["f_cnt_resets"] += 1
            return Verdict(fresh=True, reset=True)
        lost = f_cnt - last - 1 if last is not None else 0
        state.counts["frames_lost"] += lost
        return Verdict(fresh=True, lost=lost)

    def joined(self, device: str, *, now_ms: int) -> None:
        """The device joined again: its next uplink starts the counters from where it says."""
        state = self.devices[device]
        state.counts["joins"] += 1
        state.last_f_cnt = None
        self.heard(device, now_ms=now_ms)

    def heard(self, device: str, *, now_ms: int) -> bool:
        """The device said something; returns True if it was silent (it is back)."""
        state = self.devices[device]
        state.heard_ms = max(state.heard_ms, now_ms)
        back, state.silent = state.silent, False
        return back

    def fell_silent(self, *, now_ms: int) -> list[tuple[str, int]]:
        """Devices silent past their limit since the last call: (key, ms since last heard), each once per silence."""
        out = []
        for key, state in self.devices.items():
            if not state.silent and now_ms - state.heard_ms > self._limits[key]:
                state.silent = True
                out.append((key, now_ms - state.heard_ms))
        return out

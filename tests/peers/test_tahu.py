"""Eclipse Tahu's JS edge node (npm sparkplug-client 3.2.4, nobody here wrote it) against the running hub."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator

import pytest

from tests.fixtures.waiting import until
from tests.peers.hub_rig import PeerHub
from tests.peers.node_peer import NodePeer, node_peer
from tests.uns.host.raw_edge import Watcher

# checked before the hub starts: without node a fresh machine skips at once, naming the install
pytestmark = pytest.mark.requires("node", "peer-packages")

GROUP, NODE, DEVICE = "peers", "tahu1", "dev1"

# What tahu_edge.js sends last for each metric: (value, Sparkplug datatype). Temperature is a Float
# (32-bit): 101.9 must read back as the user wrote it, not as 101.9000015258789 (issue 12 point 8).
EXPECTED = {
    "Temperature": (101.9, "Float"),
    "Pressure": (2.5, "Double"),
    "Count": (-7, "Int32"),
    "Running": (False, "Boolean"),
    "Product": ("cola", "String"),
}


def _device_path(hub: PeerHub) -> str:
    # an unbound device: <enterprise>/unbound/<group>/<node>/<device> (docs/namespace.md)
    return f"{hub.enterprise}/unbound/{GROUP}/{NODE}/{DEVICE}"


@contextlib.asynccontextmanager
async def _tahu_on(hub: PeerHub) -> AsyncIterator[tuple[NodePeer, Watcher]]:
    """A watcher on the device's UNS topics and the hub's node record, then Tahu connected and its DDATA sent."""
    watcher = Watcher(hub.mqtt, [f"{_device_path(hub)}/#", f"{hub.enterprise}/hub/host/nodes/{GROUP}/{NODE}"])
    await watcher.start()
    try:
        async with node_peer("tahu_edge.js", hub.mqtt, GROUP, NODE, DEVICE) as tahu:
            # Tahu sends username "" and password "": anonymous where anonymous access is on (issue 12 point 2)
            await tahu.next_event("data", "error")
            assert tahu.events[-1]["event"] == "data", f"Tahu could not connect: {tahu.events}"
            yield tahu, watcher
    finally:
        watcher.stop()


def _envelopes(hub: PeerHub, watcher: Watcher) -> dict[str, dict[str, object]]:
    found = {name: watcher.json(f"{_device_path(hub)}/data/{name}") for name in EXPECTED}
    return {name: envelope for name, envelope in found.items() if envelope is not None}


def _shows(hub: PeerHub, watcher: Watcher, quality: str) -> bool:
    envelopes = _envelopes(hub, watcher)
    return len(envelopes) == len(EXPECTED) and all(
        (e["value"], e["datatype"], e["quality"]) == (*EXPECTED[name], quality) for name, e in envelopes.items()
    )


async def test_tahu_values_appear_on_their_isa95_topics_and_in_the_historian(peer_hub: PeerHub) -> None:
    async with _tahu_on(peer_hub) as (_tahu, watcher):
        await until(lambda: _shows(peer_hub, watcher, "good"), what="Tahu's DDATA values as good envelopes")
        now_ms = time.time() * 1000
        for name, envelope in _envelopes(peer_hub, watcher).items():
            assert envelope["unbound"] is True, name
            assert envelope["source"] == f"{GROUP}/{NODE}/{DEVICE}", name
            assert now_ms - 10_000 < float(str(envelope["timestamp_ms"])) <= now_ms, name
        # the raw text on the wire, as a subscriber's JSON parser sees it
        raw = watcher.last[f"{_device_path(peer_hub)}/data/Temperature"]
        assert re.search(rb'"value": ?101\.9[,}]', raw), raw

        want = {name: (*expected, "good") for name, expected in EXPECTED.items()}
        await peer_hub.wait_last(
            f"{_device_path(peer_hub)}/data/#",
            lambda rows: _by_metric(rows) == want,
            what="Tahu's values as the historian's latest",
        )


def _by_metric(rows: list[dict[str, object]]) -> dict[str, tuple[object, object, object]]:
    return {str(row["topic"]).rsplit("/", 1)[1]: (row["value"], row["datatype"], row["quality"]) for row in rows}


async def test_a_rebirth_request_from_the_hub_makes_tahu_rebirth(peer_hub: PeerHub) -> None:
    async with _tahu_on(peer_hub) as (tahu, watcher):
        record = f"{peer_hub.enterprise}/hub/host/nodes/{GROUP}/{NODE}"
        await until(lambda: (watcher.json(record) or {}).get("births") == 1, what="the hub's record of one birth")
        await peer_hub.rebirth(GROUP, NODE)
        await tahu.next_event("rebirth")
        assert (await tahu.next_event("birth"))["births"] == 2
        await until(lambda: (watcher.json(record) or {}).get("births") == 2, what="the hub's record of the rebirth")
        assert (watcher.json(record) or {}).get("online") is True
        # the birth re-sent the birth values: the UNS holds them, good
        birth = watcher.json(f"{_device_path(peer_hub)}/data/Product")
        assert birth is not None
        assert (birth["value"], birth["quality"]) == ("cola", "good")


async def test_killing_the_tahu_process_makes_its_metrics_stale(peer_hub: PeerHub) -> None:
    async with _tahu_on(peer_hub) as (tahu, watcher):
        await until(lambda: _shows(peer_hub, watcher, "good"), what="Tahu's values, good")
        good_ts = {name: e["timestamp_ms"] for name, e in _envelopes(peer_hub, watcher).items()}
        killed_ms = time.time() * 1000
        tahu.kill()  # SIGKILL: the broker publishes Tahu's will (NDEATH), the host marks the metrics stale
        await until(lambda: _shows(peer_hub, watcher, "stale"), what="every Tahu metric stale after kill -9")
        for name, envelope in _envelopes(peer_hub, watcher).items():
            # stamped when the hub learnt of the death, never before the good value it replaces (point 1)
            assert float(str(envelope["timestamp_ms"])) >= float(str(good_ts[name])), name
            assert float(str(envelope["timestamp_ms"])) >= killed_ms - 1000, name

        await peer_hub.wait_last(
            f"{_device_path(peer_hub)}/data/#",
            lambda rows: len(rows) == len(EXPECTED) and all(row["quality"] == "stale" for row in rows),
            what="the historian's latest values stale (issue 12 point 1)",
        )


async def test_a_tahu_node_born_again_with_its_tags_change_times_reads_good_again(peer_hub: PeerHub) -> None:
    """Births stamped with each tag's last change (Ignition's way), older than the death's stale marks: good again.

    The death's stale marks are stamped when the hub learnt of it; a birth whose metrics carry the time
    their values last changed (before that) must still end them in the UNS and the historian's latest,
    else a steady tag reads stale until it changes (docs/sparkplug-host.md, *A birth after stale marks*).
    """
    birth_only = {name: EXPECTED[name] for name in ("Pressure", "Product")}  # DATA never sends these two
    path = _device_path(peer_hub)
    watcher = Watcher(peer_hub.mqtt, [f"{path}/#"])
    await watcher.start()

    def shows(quality: str) -> bool:
        found = {name: watcher.json(f"{path}/data/{name}") for name in birth_only}
        return all(
            e is not None and (e["value"], e["datatype"], e["quality"]) == (*birth_only[n], quality)
            for n, e in found.items()
        )

    try:
        async with node_peer("tahu_edge.js", peer_hub.mqtt, GROUP, NODE, DEVICE) as tahu:
            await tahu.next_event("data", "error")
            await until(lambda: shows("good"), what="Tahu's birth values, good")
            changed_ms = int(float(str((watcher.json(f"{path}/data/Product") or {})["timestamp_ms"])))
            tahu.kill()
            await until(lambda: shows("stale"), what="Tahu's values stale after kill -9")
        marks = {name: float(str((watcher.json(f"{path}/data/{name}") or {})["timestamp_ms"])) for name in birth_only}
        # the same node started again: its births stamp the values with the first run's time, before the marks
        async with node_peer("tahu_edge.js", peer_hub.mqtt, GROUP, NODE, DEVICE, str(changed_ms)) as tahu:
            await tahu.next_event("data", "error")
            assert tahu.events[-1]["event"] == "data", f"Tahu could not connect again: {tahu.events}"
            await until(lambda: shows("good"), what="Tahu's birth values good again", within_s=10)
            for name in birth_only:
                envelope = watcher.json(f"{path}/data/{name}") or {}
                assert float(str(envelope["timestamp_ms"])) > marks[name], (name, envelope, marks)
            want = {name: (*expected, "good") for name, expected in birth_only.items()}
            await peer_hub.wait_last(
                f"{path}/data/#",
                lambda rows: {k: v for k, v in _by_metric(rows).items() if k in birth_only} == want,
                what="the historian's latest good again after the rebirth",
            )
    finally:
        watcher.stop()

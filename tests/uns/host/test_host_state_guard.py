"""A forged STATE on the host's own topic: the host re-asserts online at once and edge nodes resume.

Sparkplug 3.0 tck-id-message-flow-hid-sparkplug-state-message-delivered, on the embedded broker and
on Mosquitto, with the real EdgeNode honouring its primary host's STATE.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from bridges.testing import ScriptedSource
from tests.bridges.edge.conftest import TAGS, edge_config, running_edge
from tests.fixtures.hub import RunningHub
from tests.fixtures.waiting import until
from tests.uns.host.raw_edge import Watcher, now_ms
from uns.host.counters import HostCounters
from uns.host.state_guard import StateGuard
from uns.mqtt.types import BrokerUrl

_YEAR_MS = 365 * 24 * 3600 * 1000


def _temps(watcher: Watcher) -> list[str]:
    with watcher.lock:
        return [t for t in watcher.last if t.endswith("/data/Temp")]


def _port(url: str) -> int:
    return BrokerUrl.from_str(url).port


async def test_forged_offline_state_is_overwritten_and_the_edge_node_resumes(hub: RunningHub, tmp_path: Path) -> None:
    state_topic = hub.host.state_topic
    host_id = state_topic.rsplit("/", 1)[-1]
    source = ScriptedSource(name="scripted", tags=TAGS)
    config = edge_config(hub.group, primary_host_id=host_id)
    watcher = Watcher(hub.url, [state_topic, f"{hub.enterprise}/#"])
    await watcher.start()
    try:
        async with running_edge(_port(hub.url), config, source, tmp_path, node_id=hub.node) as node:
            source.read("press", {"Temp": 20.0, "Count": 1, "Setpoint": 1.0, "Mode": "auto"})
            await until(lambda: node.online, what="the edge node born")
            session = watcher.json(state_topic)
            assert session is not None
            assert session["online"] is True
            forged_ts = now_ms() + _YEAR_MS
            forged = orjson.dumps({"online": False, "timestamp": forged_ts})
            watcher.client.publish(state_topic, forged, qos=1, retain=True)
            forged_at = time.monotonic()
            await until(
                lambda: (
                    (watcher.json(state_topic) or {}).get("online") is True and watcher.json(state_topic) != session
                ),
                what="the host's online STATE again",
            )
            assert time.monotonic() - forged_at < 1.0
            # edge nodes only honour a STATE at least as new as the last: ours carries the forged time
            assert watcher.json(state_topic) == {"online": True, "timestamp": forged_ts}
            await until(lambda: hub.host.core.counters.rejected["foreign_state"] == 1, what="counted")
            # the edge node went offline (it honours its primary host) and comes back: births, then data
            await until(lambda: node.stats.births >= 2 and node.online, within_s=10, what="the edge node reborn")
            source.read("press", {"Temp": 42.5})
            await until(
                lambda: any((watcher.json(t) or {}).get("value") == 42.5 for t in _temps(watcher)),
                within_s=10,
                what="press Temp 42.5 republished after the forgery",
            )
    finally:
        watcher.stop()


_SESSION = 1_764_000_000_000


def _guard() -> tuple[StateGuard, HostCounters]:
    counters = HostCounters()
    return StateGuard(topic="spBv1.0/STATE/h", session_ms=_SESSION, counters=counters), counters


def test_state_guard_answers_all_but_its_own_state() -> None:
    guard, counters = _guard()
    ours = orjson.dumps({"online": True, "timestamp": _SESSION})
    assert guard.on_message(ours, _SESSION) is None
    # an earlier session's will (retained): answered with the session's timestamp, not counted
    old_will = orjson.dumps({"online": False, "timestamp": _SESSION - 1})
    assert orjson.loads(guard.on_message(old_will, _SESSION) or b"") == {"online": True, "timestamp": _SESSION}
    assert counters.rejected["foreign_state"] == 0
    # this session's own will, fired by the broker while we reconnected: the spec's same timestamp, uncounted
    assert orjson.loads(guard.on_message(orjson.dumps({"online": False, "timestamp": _SESSION}), 1) or b"") == {
        "online": True,
        "timestamp": _SESSION,
    }
    for junk in (b"OFFLINE", b"{}", b"\xff"):
        assert orjson.loads(guard.on_message(junk, _SESSION) or b"") == {"online": True, "timestamp": _SESSION}
    assert counters.rejected["foreign_state"] == 3
    # a newer forged STATE: the re-assertion carries its timestamp, and its echo is then ours
    newer = orjson.dumps({"online": False, "timestamp": _SESSION + 5})
    assert orjson.loads(guard.on_message(newer, _SESSION) or b"") == {"online": True, "timestamp": _SESSION + 5}
    assert guard.on_message(guard.online(), _SESSION) is None
    assert counters.rejected["foreign_state"] == 4


def test_a_reconnect_s_state_guard_leaves_an_earlier_session_s_online_state_alone() -> None:
    # each CONNECT stamps its will and birth afresh: the last session's online STATE, still retained when
    # the new one resubscribes, is older than ours and no forgery (edge nodes ignore it anyway)
    guard, counters = _guard()
    guard.new_session(_SESSION + 10)
    assert orjson.loads(guard.online()) == {"online": True, "timestamp": _SESSION + 10}
    assert guard.on_message(orjson.dumps({"online": True, "timestamp": _SESSION}), _SESSION + 10) is None
    # its will is still answered (not counted), and a newer online STATE is still a forgery
    old_will = orjson.dumps({"online": False, "timestamp": _SESSION})
    assert orjson.loads(guard.on_message(old_will, _SESSION + 10) or b"") == {
        "online": True,
        "timestamp": _SESSION + 10,
    }
    assert counters.rejected["foreign_state"] == 0
    newer = orjson.dumps({"online": True, "timestamp": _SESSION + 20})
    assert orjson.loads(guard.on_message(newer, _SESSION + 10) or b"") == {"online": True, "timestamp": _SESSION + 20}
    assert counters.rejected["foreign_state"] == 1

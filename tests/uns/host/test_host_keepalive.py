"""A pulled cable: the edge node's TCP connection goes silent, and its values turn stale in bounded time."""

from __future__ import annotations

import time

from tests.fixtures.hub import RunningHub
from tests.fixtures.mosquitto import KEEPALIVE_SLACK_S
from tests.fixtures.waiting import until
from tests.uns.host.raw_edge import DOUBLE, RawEdgeNode, Watcher, metric, now_ms

_KEEPALIVE = 1


async def test_silent_edge_node_goes_stale_within_one_and_a_half_keepalive(hub: RunningHub) -> None:
    watcher = Watcher(hub.url, [f"{hub.enterprise}/#"])
    await watcher.start()
    edge = RawEdgeNode(hub.url, hub.group, hub.node, keepalive=_KEEPALIVE)
    await edge.start()
    try:
        edge.nbirth([])
        edge.send("DBIRTH", [metric("Temp", 30.0, DOUBLE, alias=1)], device="filler")
        temp = f"{hub.cell}/data/Temp"
        await until(lambda: watcher.json(temp) is not None, what=temp)
        edge.go_silent()
        silent_at, silent_ms = time.monotonic(), now_ms()
        slack = 2.0 if hub.broker is not None else KEEPALIVE_SLACK_S
        bound = _KEEPALIVE * 1.5 + slack
        await until(lambda: watcher.json(temp)["quality"] == "stale", within_s=bound + 1, what="stale")  # type: ignore[index]
        assert time.monotonic() - silent_at <= bound
        assert watcher.json(temp)["value"] == 30.0  # type: ignore[index]
        # stamped when the broker gave up on the silent node, not when its will was registered (at connect)
        assert watcher.json(temp)["timestamp_ms"] >= silent_ms + _KEEPALIVE * 1000  # type: ignore[index,operator]
    finally:
        edge.kill()
        watcher.stop()

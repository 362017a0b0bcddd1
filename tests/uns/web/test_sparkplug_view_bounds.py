"""The web's Sparkplug view keeps what the host keeps, within the same bounds, and says what it refused.

Past a bound (edge nodes, host applications, devices per node, metrics per birth, names kept in
all) the view raises ``SparkplugError`` naming the topic and the bound (the cache counts it and logs
it rate-limited), marks the node degraded where it has one, and keeps tracking everyone else.
"""

from __future__ import annotations

import pytest

from uns.errors import SparkplugError
from uns.mqtt.types import Message
from uns.sparkplug import DataType, Metric, Payload, encode_payload, encode_state
from uns.web.cache import TopicCache
from uns.web.sparkplug_view import SparkplugView

T0 = 1_764_000_000_000


def _birth(seq: int, metrics: int) -> bytes:
    body = [Metric(name=f"M{i}", alias=i + 1, datatype=DataType.Double, value=float(i)) for i in range(metrics)]
    return encode_payload(Payload(timestamp=T0, seq=seq, metrics=body))


def test_a_birth_past_max_metrics_keeps_no_names_and_degrades_the_node() -> None:
    view = SparkplugView(max_metrics_per_birth=3)
    view.observe("spBv1.0/g/NBIRTH/n", _birth(0, 2), T0)
    with pytest.raises(SparkplugError, match="max_metrics_per_birth=3") as caught:
        view.observe("spBv1.0/g/DBIRTH/n/big", _birth(1, 4), T0)
    assert caught.value.topic == "spBv1.0/g/DBIRTH/n/big"
    (node,) = view.edge_nodes()
    assert node.degraded == {"g/n/big": "birth names not kept: 4 metrics, max_metrics_per_birth=3"}
    assert [(d.device_id, d.births) for d in node.devices] == [("big", 1)]  # the birth itself is counted
    view.observe("spBv1.0/g/DBIRTH/n/small", _birth(2, 3), T0)  # the others are served
    view.observe("spBv1.0/g/DBIRTH/n/big", _birth(3, 1), T0)  # a birth within the bound clears it
    assert view.edge_nodes()[0].degraded == {}


def test_nodes_devices_hosts_and_names_past_their_bounds_are_not_kept() -> None:
    view = SparkplugView(max_nodes=2, max_devices_per_node=1, max_hosts=1, max_series=5)
    view.observe("spBv1.0/g/NBIRTH/a", _birth(0, 2), T0)
    view.observe("spBv1.0/g/NBIRTH/b", _birth(0, 2), T0)
    with pytest.raises(SparkplugError, match="max_nodes=2"):
        view.observe("spBv1.0/g/NBIRTH/c", _birth(0, 1), T0)
    assert [n.edge_node_id for n in view.edge_nodes()] == ["a", "b"]
    view.observe("spBv1.0/g/DBIRTH/a/d1", _birth(1, 1), T0)
    with pytest.raises(SparkplugError, match="max_devices_per_node=1"):
        view.observe("spBv1.0/g/DBIRTH/a/d2", _birth(2, 1), T0)
    assert view.edge_nodes()[0].degraded == {"devices": "device not tracked: node has 1, max_devices_per_node=1"}
    with pytest.raises(SparkplugError, match="max_series=5"):  # 5 names kept: a, b and d1
        view.observe("spBv1.0/g/DBIRTH/b/d1", _birth(1, 1), T0)
    view.observe("spBv1.0/g/NBIRTH/b", _birth(0, 1), T0)  # a rebirth replaces its names: 4 kept
    view.observe("spBv1.0/g/DBIRTH/b/d1", _birth(1, 1), T0)
    view.observe("spBv1.0/STATE/h1", encode_state(True, T0), T0)
    with pytest.raises(SparkplugError, match="host application not tracked"):
        view.observe("spBv1.0/STATE/h2", encode_state(True, T0), T0)
    assert [h.host_id for h in view.hosts()] == ["h1"]


def test_the_cache_counts_what_its_view_refused_and_keeps_the_payload() -> None:
    cache = TopicCache(clients=None, sparkplug=SparkplugView(max_nodes=1))  # type: ignore[arg-type]
    cache.observe(Message("spBv1.0/g/NBIRTH/a", _birth(0, 1)), now_ms=T0)
    cache.observe(Message("spBv1.0/g/NBIRTH/b", _birth(0, 1)), now_ms=T0)
    assert cache.stats.sparkplug_errors == 1
    assert cache.payload("spBv1.0/g/NBIRTH/b") is not None
    assert len(cache.sparkplug) == 1

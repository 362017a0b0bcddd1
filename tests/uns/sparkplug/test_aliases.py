"""The one Sparkplug alias table (uns.sparkplug.aliases), and that host, edge node and web view keep it."""

from __future__ import annotations

from bridges.edge.session import EdgeSession
from tests.exports import assert_all_is_honest
from uns.host.tables import DeviceState, NodeState
from uns.sparkplug import DataType, Metric, Payload, SparkplugTopic, decode_payload, encode_payload
from uns.sparkplug.aliases import AliasTable, Born, born
from uns.web.sparkplug_view import SparkplugView


def test_exports() -> None:
    assert_all_is_honest("uns.sparkplug.aliases")


def _table() -> AliasTable[Born]:
    table: AliasTable[Born] = AliasTable()
    table.add("Temp", 7, born(DataType.Float))
    table.add("Mode", None, born(DataType.String))
    return table


def test_lookup_by_name_then_by_alias() -> None:
    table = _table()
    assert len(table) == 2
    assert table.lookup("Temp", None) == ("Temp", DataType.Float)
    assert table.lookup(None, 7) == ("Temp", DataType.Float)
    assert table.lookup("Mode", None) == ("Mode", DataType.String)
    assert table.lookup(None, 8) is None
    assert table.lookup(None, None) is None
    # a name decides: an unknown name is not rescued by a known alias
    assert table.lookup("Other", 7) is None
    table.clear()
    assert (len(table), table.lookup(None, 7), table.lookup("Temp", None)) == (0, None, None)


def test_born_entries_are_shared_per_datatype() -> None:
    assert born(DataType.Double) is born(DataType.Double)
    assert born(DataType.Double).datatype is DataType.Double


def test_decode_resolves_alias_only_data_through_the_table() -> None:
    data = encode_payload(Payload(seq=1, metrics=[Metric(alias=7, datatype=DataType.Float, value=2.5)]))
    decoded = decode_payload(data, topic="spBv1.0/g/DDATA/n/d", lookup=_table().lookup)
    assert [(m.name, m.datatype, m.value) for m in decoded.payload.metrics] == [("Temp", DataType.Float, 2.5)]
    unknown = encode_payload(Payload(seq=1, metrics=[Metric(alias=9, datatype=DataType.Float, value=2.5)]))
    assert decode_payload(unknown, topic="spBv1.0/g/DDATA/n/d", lookup=_table().lookup).problems


def test_host_edge_node_and_web_view_keep_the_one_table() -> None:
    assert isinstance(NodeState(path="a", bound=True).born, AliasTable)
    assert isinstance(DeviceState(path="a", bound=True).born, AliasTable)
    view = SparkplugView()
    view.observe(
        "spBv1.0/g/NBIRTH/n",
        encode_payload(Payload(seq=0, metrics=[Metric(name="Up", alias=1, datatype=DataType.Int64, value=1)])),
        1,
    )
    lookup = view.alias_lookup(SparkplugTopic.from_str("spBv1.0/g/NDATA/n"))
    assert lookup is not None
    assert isinstance(lookup.__self__, AliasTable)  # type: ignore[attr-defined]
    assert lookup(None, 1) == ("Up", DataType.Int64)
    session = EdgeSession(group="g", node_id="n", tags=[], heartbeat_ms=0)
    assert isinstance(session._node_metrics, AliasTable)

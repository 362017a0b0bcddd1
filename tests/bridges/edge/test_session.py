"""The pure core: aliases, seq, births, report by exception, commands (no I/O, no clock)."""

from __future__ import annotations

import math

import pytest

from bridges.edge.commands import Rebirth, Refused, Write
from bridges.edge.session import HEALTH_METRICS, EdgeSession
from bridges.source import Sample, Samples, TagSpec
from model.envelope import Quality
from uns.errors import BridgeError
from uns.mqtt.types import Message
from uns.sparkplug import DataType, Metric, Payload, encode_payload
from uns.sparkplug import sparkplug_b_pb2 as pb

TAGS = [
    TagSpec("d1", "Temp", DataType.Double, unit="degC", deadband=0.5),
    TagSpec("d1", "Count", DataType.Int64),
    TagSpec("d1", "Mode", DataType.String, writable=True),
    TagSpec("d1", "On", DataType.Boolean, writable=True),
    TagSpec("d2", "Temp", DataType.Float),
]


def session(heartbeat_ms: int = 0) -> EdgeSession:
    return EdgeSession(group="g", node_id="n", tags=TAGS, heartbeat_ms=heartbeat_ms)


def raw(message: Message) -> pb.Payload:
    p = pb.Payload()
    p.ParseFromString(message.payload)
    return p


def test_births_then_data_use_unique_aliases_and_seq_from_zero() -> None:
    s = session()
    births = s.births(bd_seq=7, now_ms=1000, health={"Bridge/Connected": True})
    assert [m.topic for m in births] == ["spBv1.0/g/NBIRTH/n", "spBv1.0/g/DBIRTH/n/d1", "spBv1.0/g/DBIRTH/n/d2"]
    payloads = [raw(m) for m in births]
    assert [p.seq for p in payloads] == [0, 1, 2]
    aliases = [m.alias for p in payloads for m in p.metrics if m.HasField("alias")]
    assert len(aliases) == len(set(aliases)) == 6 + 5  # health metrics, then the tags
    nbirth = {m.name: m for m in payloads[0].metrics}
    assert [name for name, m in nbirth.items() if not m.HasField("alias")] == ["bdSeq", "Node Control/Rebirth"]
    assert nbirth["bdSeq"].long_value == 7
    assert nbirth["Bridge/Connected"].boolean_value is True
    assert nbirth["Bridge/Errors"].is_null
    accepted = s.accept(Samples("d1", [Sample("Count", 3, 1005)]), now_ms=1006)
    (ddata,) = s.data("d1", accepted.metrics, now_ms=1006)
    p = raw(ddata)
    assert p.seq == 3
    assert [(m.HasField("name"), m.HasField("datatype"), m.long_value, m.timestamp) for m in p.metrics] == [
        (False, False, 3, 1005)
    ]


def test_seq_wraps_after_255() -> None:
    s = session()
    s.births(bd_seq=0, now_ms=0, health={})
    seqs = [raw(s.data("d1", s.accept(Samples("d1", [Sample("Count", i, i)]), now_ms=i).metrics, now_ms=i)[0]).seq
            for i in range(300)]  # fmt: skip
    assert seqs == [(3 + i) % 256 for i in range(300)]


def test_death_is_qos1_with_bdseq_and_no_seq() -> None:
    death = session().death(bd_seq=42, now_ms=5)
    assert (death.topic, death.qos, death.retain) == ("spBv1.0/g/NDEATH/n", 1, False)
    p = raw(death)
    assert not p.HasField("seq")
    assert [(m.name, m.datatype, m.long_value) for m in p.metrics] == [("bdSeq", 4, 42)]


@pytest.mark.parametrize(
    ("name", "values", "sent"),
    [
        ("Temp", [20.0, 20.4, 20.5, 20.51, 21.2], [20.0, 20.51, 21.2]),  # deadband 0.5: strictly more than
        ("Temp", [20.0, math.nan, math.nan, 1.0], [20.0, math.nan, 1.0]),
        ("Temp", [20.0, None, None, 20.0], [20.0, None, 20.0]),
        ("Count", [1, 1, 2, 2, 1], [1, 2, 1]),  # no deadband: any change
        ("Mode", ["a", "a", "b"], ["a", "b"]),
        ("On", [True, True, False, False], [True, False]),
    ],
)
def test_report_by_exception(name: str, values: list[object], sent: list[object]) -> None:
    s = session()
    out: list[object] = []
    for i, value in enumerate(values):
        out += [m.value for m in s.accept(Samples("d1", [Sample(name, value, i)]), now_ms=i).metrics]  # type: ignore[arg-type]
    assert [repr(v) for v in out] == [repr(v) for v in sent]


def test_quality_change_is_reported_and_carried_as_property() -> None:
    s = session()
    s.accept(Samples("d1", [Sample("Count", 1, 0)]), now_ms=0)
    (metric,) = s.accept(Samples("d1", [Sample("Count", 1, 1, Quality.uncertain)]), now_ms=1).metrics
    assert metric.properties is not None
    # Sparkplug 3.0's codes are 0, 192 and 500 only: uncertain goes as BAD, named
    assert metric.properties["Quality"].value == 0
    assert metric.properties["QualityName"].value == "uncertain"


@pytest.mark.parametrize(("gap_ms", "resent"), [(999, False), (1000, True)])
def test_heartbeat_resends_unchanged(gap_ms: int, resent: bool) -> None:
    s = session(heartbeat_ms=1000)
    s.births(bd_seq=0, now_ms=0, health={})
    s.accept(Samples("d1", [Sample("Count", 1, 0)]), now_ms=0)
    assert bool(s.accept(Samples("d1", [Sample("Count", 1, gap_ms)]), now_ms=gap_ms).metrics) is resent
    s2 = session(heartbeat_ms=1000)
    s2.accept(Samples("d1", [Sample("Count", 1, 0)]), now_ms=0)
    s2.births(bd_seq=0, now_ms=0, health={})
    assert bool(s2.heartbeat(now_ms=gap_ms)) is resent


def test_a_heartbeat_is_stamped_with_when_each_value_was_read() -> None:
    # stamped at the heartbeat, a value would be newer than a reading taken before it and not yet handed over
    s = session(heartbeat_ms=1000)
    s.accept(Samples("d1", [Sample("Count", 1, 250), Sample("Mode", "auto", 250)]), now_ms=300)
    s.births(bd_seq=0, now_ms=300, health={})
    s.accept(Samples("d1", [Sample("Count", 1, 900), Sample("Mode", "auto", 900)]), now_ms=950)  # unchanged
    (beat,) = s.heartbeat(now_ms=1400)
    assert [(m.long_value or m.string_value, m.timestamp) for m in raw(beat).metrics] == [(1, 900), ("auto", 900)]


def test_a_heartbeat_stamps_no_value_before_the_device_s_last_birth() -> None:
    # read long before the DBIRTH that re-announced it (an OPC UA value unchanged since): as of that DBIRTH,
    # newer than the stale mark a host made at the device's death, and the reading read later keeps its own time
    s = session(heartbeat_ms=1000)
    s.accept(Samples("d1", [Sample("Count", 1, 100), Sample("Mode", "auto", 100)]), now_ms=5000)
    s.births(bd_seq=0, now_ms=5000, health={})
    s.accept(Samples("d1", [Sample("Mode", "auto", 5500)]), now_ms=5600)  # unchanged, read after the birth
    (beat,) = s.heartbeat(now_ms=6000)
    assert [(m.long_value or m.string_value, m.timestamp) for m in raw(beat).metrics] == [(1, 5000), ("auto", 5500)]


@pytest.mark.parametrize(
    ("latencies", "sent"),
    [
        # the demo's jitter of a few ms is not news; 20 ms is the floor of the band, strictly more than it is
        pytest.param([1.0, 5.0, 0.0, 8.0, 21.0, 22.0, 25.0], [1.0, 22.0], id="jitter-then-a-slowdown"),
        pytest.param([1.0, 21.0], [1.0], id="20-ms-is-inside"),
        # above 100 ms the band is 20 % of the value last sent
        pytest.param([170.0, 165.0, 174.0, 204.0, 205.0, 140.0], [170.0, 205.0, 140.0], id="share-of-the-value"),
        pytest.param([None, None, 3.0, 3.0], [None, 3.0], id="null-until-a-first-reading"),
    ],
)
def test_read_latency_health_is_sent_beyond_its_deadband(latencies: list[float | None], sent: list[object]) -> None:
    s = session()
    births = s.births(bd_seq=0, now_ms=0, health={"Bridge/ReadLatencyMs": latencies[0], "Bridge/Errors": 0})
    born = {m.name: m for m in raw(births[0]).metrics}["Bridge/ReadLatencyMs"]
    out = [None if born.is_null else born.double_value]  # the birth carries it, whatever it is
    for i, latency in enumerate(latencies[1:], start=1):
        message = s.health({"Bridge/ReadLatencyMs": latency, "Bridge/Errors": 0}, now_ms=i * 5000)
        if message is not None:
            (metric,) = raw(message).metrics
            out.append(None if metric.is_null else metric.double_value)
    assert out == sent


def test_other_health_metrics_are_sent_on_any_change_and_latency_at_the_heartbeat() -> None:
    s = session(heartbeat_ms=60_000)
    s.births(bd_seq=0, now_ms=0, health={"Bridge/ReadLatencyMs": 2.0, "Bridge/Errors": 0, "Bridge/BufferDepth": 0})
    values = {"Bridge/ReadLatencyMs": 3.0, "Bridge/Errors": 0, "Bridge/BufferDepth": 0}
    assert s.health(values, now_ms=5000) is None
    changed = s.health({**values, "Bridge/BufferDepth": 1}, now_ms=10_000)
    assert changed is not None
    assert [m.long_value for m in raw(changed).metrics] == [1]
    beat = s.health({**values, "Bridge/BufferDepth": 1}, now_ms=60_000)  # latency last sent at 0: due
    assert beat is not None
    latency_alias = [name for name, _ in HEALTH_METRICS].index("Bridge/ReadLatencyMs")
    assert {m.alias: m.double_value for m in raw(beat).metrics}[latency_alias] == 3.0


def test_bad_samples_are_named_and_the_good_kept() -> None:
    s = session()
    accepted = s.accept(
        Samples("d1", [Sample("Nope", 1, 0), Sample("Count", "x", 0), Sample("Mode", "ok", 0)]), now_ms=0
    )
    assert [m.name for m in accepted.metrics] == ["Mode"]
    assert accepted.problems == [
        "device d1: unknown metric 'Nope'",
        "device d1 metric 'Count': Int64 needs an int, got str",
    ]


def test_device_down_gives_one_ddeath_and_data_rebirths() -> None:
    s = session()
    s.births(bd_seq=0, now_ms=0, health={})
    death = s.device_down("d2", now_ms=1, publish=True)
    assert death is not None
    assert death.topic == "spBv1.0/g/DDEATH/n/d2"
    assert s.device_down("d2", now_ms=2, publish=True) is None
    out = s.data("d2", s.accept(Samples("d2", [Sample("Temp", 1.5, 3)]), now_ms=3).metrics, now_ms=3)
    assert [m.topic for m in out] == ["spBv1.0/g/DBIRTH/n/d2", "spBv1.0/g/DDATA/n/d2"]
    # down while not publishing: births skip it, historical data rebirths it, settle kills it again
    s.device_down("d2", now_ms=4, publish=False)
    assert [m.topic for m in s.births(bd_seq=0, now_ms=5, health={})][1:] == ["spBv1.0/g/DBIRTH/n/d1"]
    hist = s.data(
        "d2", [Metric(name="Temp", timestamp=3, datatype=DataType.Float, value=1.5)], now_ms=6, historical=True
    )
    assert raw(hist[1]).metrics[0].is_historical
    assert [m.topic for m in s.settle(now_ms=7)] == ["spBv1.0/g/DDEATH/n/d2"]


def test_duplicate_tag_is_refused() -> None:
    with pytest.raises(BridgeError, match="'Temp' is declared twice on device d1"):
        EdgeSession(group="g", node_id="n", tags=[*TAGS, TAGS[0]], heartbeat_ms=0)


def _cmd(topic: str, *metrics: Metric) -> Message:
    return Message(topic, encode_payload(Payload(timestamp=1, metrics=list(metrics))))


@pytest.mark.parametrize(
    ("topic", "metric", "expected"),
    [
        ("spBv1.0/g/NCMD/n", Metric(name="Node Control/Rebirth", datatype=DataType.Boolean, value=True), Rebirth()),
        ("spBv1.0/g/NCMD/n", Metric(alias=1, datatype=DataType.Boolean, value=True),
         Refused("node metric 'Bridge/Reading' is not writable")),
        ("spBv1.0/g/NCMD/n", Metric(name="Node Control/Rebirth", datatype=DataType.Boolean, value=False),
         Refused("Node Control/Rebirth needs the Boolean true (got False)")),
        ("spBv1.0/g/NCMD/n", Metric(name="Node Control/Reboot", datatype=DataType.Boolean, value=True),
         Refused("node metric 'Node Control/Reboot' is not in this edge node's NBIRTH")),
        ("spBv1.0/g/DCMD/n/d1", Metric(name="On", datatype=DataType.String, value="yes"),
         Refused("device d1 metric 'On': metric 'On' declares String but was born Boolean:"
                 " Boolean value carried in string_value, expected boolean_value")),
        ("spBv1.0/g/DCMD/n/d1", Metric(name="Mode", datatype=DataType.String, value="x"), Write("d1", "Mode", "x")),
        ("spBv1.0/g/DCMD/n/d1", Metric(alias=9, datatype=DataType.Boolean, value=True), Write("d1", "On", True)),
        ("spBv1.0/g/DCMD/n/d1", Metric(name="Count", datatype=DataType.Int64, value=1),
         Refused("device d1 metric 'Count' is not writable")),
        ("spBv1.0/g/DCMD/n/d1", Metric(name="Zzz", datatype=DataType.Int64, value=1),
         Refused("device d1 has no metric 'Zzz'")),
        ("spBv1.0/g/DCMD/n/d9", Metric(name="Mode", datatype=DataType.String, value="x"),
         Refused("DCMD for unknown device 'd9'")),
        ("spBv1.0/g/NCMD/n", Metric(name="bdSeq", datatype=DataType.Int64, value=1),
         Refused("node metric 'bdSeq' is not writable")),
    ],
)  # fmt: skip
def test_commands(topic: str, metric: Metric, expected: object) -> None:
    assert session().commands(_cmd(topic, metric)) == [expected]


def test_unknown_alias_in_dcmd_is_refused_by_alias() -> None:
    (refused,) = session().commands(_cmd("spBv1.0/g/DCMD/n/d1", Metric(alias=999, datatype=DataType.Int64, value=1)))
    assert isinstance(refused, Refused)
    assert "999" in refused.reason


def test_history_leaves_out_the_sample_the_birth_carries() -> None:
    s = session()
    s.accept(Samples("d1", [Sample("Count", 1, 10)]), now_ms=10)
    s.accept(Samples("d1", [Sample("Count", 2, 20)]), now_ms=20)
    buffered = [Metric(name="Count", timestamp=ts, datatype=DataType.Int64, value=v) for v, ts in ((1, 10), (2, 20))]
    assert s.not_in_birth("d1", buffered) == buffered  # not born: these samples are what births it
    births = s.births(bd_seq=0, now_ms=30, health={})
    count = next(m for m in raw(births[1]).metrics if m.name == "Count")
    assert (count.long_value, count.timestamp) == (2, 20)
    assert s.not_in_birth("d1", buffered) == buffered[:1]


@pytest.mark.parametrize(
    ("stamp", "sent"),
    [(995, 1001), (1000, 1001), (1001, 1001), (1500, 1500)],
    ids=["before-the-birth", "at-the-birth", "just-after", "later"],
)
def test_first_reading_of_a_metric_born_null_is_stamped_after_its_birth(stamp: int, sent: int) -> None:
    s = session()
    births = s.births(bd_seq=0, now_ms=1000, health={})  # nothing read yet: every tag born null at 1000
    assert next(m for m in raw(births[1]).metrics if m.name == "Count").is_null
    first = s.accept(Samples("d1", [Sample("Count", 5, stamp)]), now_ms=1600).metrics
    assert [(m.value, m.timestamp) for m in first] == [(5, sent)]
    # only the first: the source's own stamps from then on
    later = s.accept(Samples("d1", [Sample("Count", 6, 999)]), now_ms=1700).metrics
    assert [(m.value, m.timestamp) for m in later] == [(6, 999)]


def test_births_wait_until_every_tag_of_a_live_device_was_read() -> None:
    s = session()
    assert s.awaiting_first_reading()
    s.accept(Samples("d2", [Sample("Temp", 1.5, 1)]), now_ms=1)
    s.accept(Samples("d1", [Sample("Temp", 20.0, 1), Sample("Count", 1, 1)]), now_ms=1)  # the fast poll group
    assert s.awaiting_first_reading()  # d1's Mode and On not read yet: its DBIRTH would carry nulls
    s.accept(Samples("d1", [Sample("Mode", None, 2, Quality.bad), Sample("On", True, 2)]), now_ms=2)
    assert not s.awaiting_first_reading()  # a failed read counts as read


def test_births_do_not_wait_for_a_device_that_is_down() -> None:
    s = session()
    s.accept(Samples("d1", [Sample(t.name, None, 1, Quality.bad) for t in TAGS if t.device == "d1"]), now_ms=1)
    s.device_down("d2", now_ms=1, publish=False)
    assert not s.awaiting_first_reading()


def test_a_down_device_s_last_sample_still_births_it_in_the_replay() -> None:
    s = session()
    s.accept(Samples("d2", [Sample("Temp", 1.5, 10)]), now_ms=10)
    s.device_down("d2", now_ms=11, publish=False)
    s.births(bd_seq=0, now_ms=20, health={})  # d2 is down: no DBIRTH
    buffered = [Metric(name="Temp", timestamp=10, datatype=DataType.Float, value=1.5)]
    out = s.data("d2", s.not_in_birth("d2", buffered), now_ms=21, historical=True)
    assert [m.topic for m in out] == ["spBv1.0/g/DBIRTH/n/d2", "spBv1.0/g/DDATA/n/d2"]


def test_a_metric_born_null_stays_after_its_nulls_until_it_has_a_value() -> None:
    s = session()
    s.births(bd_seq=0, now_ms=1000, health={})
    stamps = []
    for value, stamp in ((None, 1200), (None, 1100), (7, 900), (8, 950)):
        quality = Quality.good if value is not None else Quality.bad
        accepted = s.accept(Samples("d1", [Sample("Count", value, stamp, quality)]), now_ms=2000).metrics
        stamps += [m.timestamp for m in accepted]
    # a failed read at 1200; another stamped 1100 goes after it (1201, unchanged: not sent); the value
    # stamped 900 after both; once it has a value, the source's own stamps
    assert stamps == [1200, 1202, 950]

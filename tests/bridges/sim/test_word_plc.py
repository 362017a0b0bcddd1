"""bridges.sim.word_plc: the one layout of the simulated word PLCs (FINS and SLMP) and the tags reading it."""

from __future__ import annotations

from bridges.fins.codec import word_count
from bridges.sim.fins_plant import demo_bridge as fins_bridge
from bridges.sim.layout import Metric
from bridges.sim.slmp_plant import demo_bridge as slmp_bridge
from bridges.sim.word_plc import PlcSlot, plc_slots
from tests.exports import assert_all_is_honest

_METRICS = [
    Metric(name="Flow", datatype="Float", unit="m3/h"),
    Metric(name="Running", datatype="Boolean"),
    Metric(name="Count", datatype="Int64", poll="slow"),
    Metric(name="Setpoint", datatype="Double", writable=True),
    Metric(name="Reset", datatype="Boolean", writable=True),
    Metric(name="Alarm", datatype="Boolean"),
    Metric(name="Batch", datatype="String"),
    Metric(name="Speed", datatype="UInt16", writable=True),
]


def test_exports() -> None:
    assert_all_is_honest("bridges.sim.word_plc")


def test_words_from_d100_writable_from_d200_bits_numbered_per_kind() -> None:
    slots = plc_slots(
        _METRICS, words=word_count, bit_address=lambda n, w: f"{'C' if w else 'F'}{n}", first_bit={False: 0, True: 7}
    )
    assert [(s.metric.name, s.address, s.type, s.length) for s in slots] == [
        ("Flow", "D100", "float32", None),
        ("Running", "F0", "bool", None),
        ("Count", "D102", "int32", None),
        ("Setpoint", "D200", "float64", None),
        ("Reset", "C7", "bool", None),
        ("Alarm", "F1", "bool", None),
        ("Batch", "D104", "string", 16),
        ("Speed", "D204", "uint16", None),
    ]
    assert all(isinstance(slot, PlcSlot) for slot in slots)


def test_both_demo_bridges_read_the_same_words_with_the_metric_s_unit_and_poll() -> None:
    fins = fins_bridge(("127.0.0.1", 9600), "pump", _METRICS).devices[0].tags
    slmp = slmp_bridge(("127.0.0.1", 5000), "chiller", _METRICS).devices[0].tags
    words = [(t.name, t.address, t.type, t.unit, t.poll, t.writable) for t in fins if t.type != "bool"]
    assert words == [(t.name, t.address, t.type, t.unit, t.poll, t.writable) for t in slmp if t.type != "bool"]
    assert ("Flow", "D100", "float32", "m3/h", "fast", False) in words
    bits = {t.name: (t.address, u.address) for t, u in zip(fins, slmp, strict=True) if t.type == "bool"}
    assert bits == {"Running": ("W0.00", "X0"), "Reset": ("W1.00", "M100"), "Alarm": ("W0.01", "X1")}

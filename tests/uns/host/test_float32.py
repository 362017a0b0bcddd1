"""Float (32-bit) metrics are republished as the user wrote them: the shortest text that reads back to the float32."""

from __future__ import annotations

import math
import struct

import orjson
import pytest

from tests.fixtures.hub import RunningHub
from tests.fixtures.waiting import until
from tests.uns.host.raw_edge import DOUBLE, FLOAT, FLOAT_ARRAY, edge_and_watcher, metric
from uns.normalise import json_value
from uns.sparkplug import DataSet, DataType
from uns.sparkplug.values import float32_shortest


def _f32(value: float) -> float:
    """``value`` as a float32 travels: widened back to a double on decoding."""
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


@pytest.mark.parametrize(
    ("written", "text"),
    [
        (101.9, "101.9"),
        (0.1, "0.1"),
        (-0.1, "-0.1"),
        (1e-7, "1e-7"),
        (72.41234, "72.41234"),
        (3.4028235e38, "3.4028235e+38"),  # the largest float32: its 8 digits round past it unless read as float32
        (-3.4028235e38, "-3.4028235e+38"),
        (1.17549435e-38, "1.1754944e-38"),  # the smallest normal float32
        (1e-45, "1e-45"),  # the smallest subnormal float32
        (16777217.0, "16777216.0"),  # above 2^24 a float32 holds only even integers: what the wire carried
        (2.5, "2.5"),
        (100.0, "100.0"),
        (0.0, "0.0"),
        (-0.0, "-0.0"),
    ],
)
def test_shortest_text_that_reads_back_to_the_same_float32(written: float, text: str) -> None:
    wire = _f32(written)
    short = float32_shortest(wire)
    assert repr(short) == repr(float(text))
    assert _f32(short) == wire  # reads back to the very float32 that was sent
    assert orjson.dumps(short).decode() == text


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_values_come_back_unchanged_and_republish_as_null(value: float) -> None:
    assert repr(float32_shortest(value)) == repr(value)
    assert json_value(value, DataType.Float) is None
    assert json_value([value, 1.5], DataType.FloatArray) == [None, 1.5]


@pytest.mark.parametrize(
    "value",
    [
        0.123456789012,  # more precision than a float32: a Float sent in double_value
        1e300,  # beyond the float32 range
        101.9,  # the double 101.9 is not a float32
    ],
)
def test_a_value_that_is_not_a_float32_is_kept_as_it_is(value: float) -> None:
    assert float32_shortest(value) == value


def _shortest_by_definition(wire: float) -> float:
    """The first of ``%.1g`` … ``%.9g`` that reads back to the float32 (the plain definition, no bisection)."""
    for digits in range(1, 10):
        text = f"{wire:.{digits}g}"
        try:
            if _f32(float(text)) == wire:
                return float(text)
        except OverflowError:
            continue
    raise AssertionError(f"{wire!r}: 9 digits must read back")


def test_a_sweep_of_float32s_gives_the_shortest_text_by_definition() -> None:
    powers_of_two = range(0x0080_0000, 0x7F80_0000, 0x0080_0000)  # where the rounding interval is lopsided
    sweep = range(0x0000_0001, 0x7F80_0000, 0x0002_4D37)  # ~30k finite float32s, subnormals to the largest
    for bits in (*powers_of_two, *sweep, 0x7F7F_FFFF):
        (wire,) = struct.unpack("<f", struct.pack("<I", bits))
        for signed in (wire, -wire):
            short = float32_shortest(signed)
            assert _f32(short) == signed
            assert repr(short) == repr(_shortest_by_definition(signed)), hex(bits)


def test_only_float32_datatypes_are_shortened() -> None:
    wire = _f32(101.9)
    assert json_value(wire, DataType.Float) == 101.9
    assert json_value(wire, DataType.Double) == wire  # a Double is printed in full, as sent
    assert json_value([wire, _f32(0.1)], DataType.FloatArray) == [101.9, 0.1]
    assert json_value([wire], DataType.DoubleArray) == [wire]
    table = DataSet(columns=("f", "d"), types=(DataType.Float, DataType.Double), rows=((wire, wire),))
    assert json_value(table, DataType.DataSet) == {
        "columns": ["f", "d"],
        "types": ["Float", "Double"],
        "rows": [[101.9, wire]],
    }


async def test_float_metrics_are_republished_at_float32_precision(hub: RunningHub) -> None:
    async with edge_and_watcher(hub.url, hub.group, hub.node, [f"{hub.enterprise}/#"]) as (edge, watcher):
        edge.nbirth([])
        edge.send(
            "DBIRTH",
            [
                metric("Temp", 101.9, FLOAT, alias=1),
                metric("Profile", [0.1, 101.9, 3.4028235e38], FLOAT_ARRAY, alias=2),
                metric("Level", 101.9, DOUBLE, alias=3),
            ],
            device="filler",
        )
        temp, profile = f"{hub.cell}/data/Temp", f"{hub.cell}/data/Profile"
        await until(lambda: watcher.json(temp) is not None and watcher.json(profile) is not None, what="births")
        edge.send("DDATA", [metric(None, 0.1, FLOAT, alias=1, with_datatype=False)], device="filler")
        await until(lambda: watcher.json(temp)["value"] == 0.1, what="Temp = 0.1")  # type: ignore[index]
        with watcher.lock:
            raw = {topic: payload for topic, payload in watcher.messages if "/data/" in topic}
            texts = [payload for topic, payload in watcher.messages if topic == temp]
        assert b'"value":101.9,' in texts[0]
        assert b'"value":0.1,' in texts[-1]
        assert b'"value":[0.1,101.9,3.4028235e+38],' in raw[profile]
        assert b'"value":101.9,' in raw[f"{hub.cell}/data/Level"]  # a Double, 101.9 exactly as sent

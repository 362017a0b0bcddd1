from __future__ import annotations

import itertools
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.config import CompressionRule
from uns.historian.compression import Compressor

TOPIC = "acme/dallas/packaging/line1/filler/data/Temperature"
OTHER = "acme/dallas/packaging/line1/filler/data/Speed"


def _rule(method: str, deviation: float = 1.0, max_interval_s: float = 3600.0, match: str = TOPIC) -> CompressionRule:
    return CompressionRule.model_validate(
        {"match": match, "method": method, "deviation": deviation, "max_interval_s": max_interval_s}
    )


def _run(compressor: Compressor[int], values: list[float | None], step_ms: int = 1000) -> list[int]:
    """Offer values at a fixed step; items are their indexes; returns the stored indexes, flushed at the end."""
    stored: list[int] = []
    for index, value in enumerate(values):
        stored += compressor.offer(TOPIC, index * step_ms, value, index)
    return stored + compressor.flush()


@pytest.mark.parametrize(
    ("values", "kept"),
    [
        ([5.0], [0]),
        ([5.0, 5.5, 6.0, 6.1, 4.9, 7.2], [0, 3, 4, 5]),  # |6.1 - 5| > 1, |4.9 - 6.1| > 1, |7.2 - 4.9| > 1
        ([0.0, 1.0, 2.0, 2.9, 3.1], [0, 2, 4]),  # exactly the deviation is not a move
        ([0.0, 0.5, None, 0.6, 0.7], [0, 2, 3]),  # None is stored and restarts: 0.6 is a first point
        ([0.0, math.nan, 0.1], [0, 1, 2]),  # NaN is not compressible either
    ],
)
def test_deadband(values: list[float | None], kept: list[int]) -> None:
    assert _run(Compressor(rules=[_rule("deadband")]), values) == kept


@pytest.mark.parametrize(
    ("values", "kept"),
    [
        ([1.0], [0]),
        ([0.0, 1.0, 2.0, 3.0, 4.0], [0, 4]),  # a straight ramp: ends only (the last after flush)
        ([0.0, 0.0, 0.0, 10.0, 10.0, 10.0], [0, 2, 3, 5]),  # a step: the corners
        ([0.0, 0.5, -0.5, 0.5, -0.5, 0.0], [0, 5]),  # noise within ±1 of a flat line
        ([0.0, 1.0, 2.0, None, 5.0, 6.0], [0, 2, 3, 4, 5]),  # None releases the held 2.0, then restarts at 5.0
    ],
)
def test_swinging_door(values: list[float | None], kept: list[int]) -> None:
    assert _run(Compressor(rules=[_rule("swinging_door")]), values) == kept


def test_held_point_released_when_corridor_closes() -> None:
    compressor: Compressor[int] = Compressor(rules=[_rule("swinging_door")])
    assert compressor.offer(TOPIC, 0, 0.0, 0) == [0]
    assert compressor.offer(TOPIC, 1000, 1.0, 1) == []
    assert compressor.offer(TOPIC, 2000, 2.0, 2) == []
    assert compressor.offer(TOPIC, 3000, 0.0, 3) == [2]  # the earlier, held point comes out now
    assert compressor.flush() == [3]
    assert compressor.flush() == []


@pytest.mark.parametrize("method", ["deadband", "swinging_door"])
def test_max_interval_keeps_a_flat_series_alive(method: str) -> None:
    compressor: Compressor[int] = Compressor(rules=[_rule(method, max_interval_s=10)])
    stored = _run(compressor, [1.0] * 35)
    # the swinging door holds the last point until flush; the deadband has nothing held
    assert stored == ([0, 10, 20, 30, 34] if method == "swinging_door" else [0, 10, 20, 30])


def test_expire_releases_held_points_of_quiet_series() -> None:
    compressor: Compressor[str] = Compressor(rules=[_rule("swinging_door", max_interval_s=10, match="#")])
    assert compressor.offer(TOPIC, 0, 1.0, "a0") == ["a0"]
    assert compressor.offer(TOPIC, 1000, 1.0, "a1") == []
    assert compressor.offer(OTHER, 5000, 1.0, "b0") == ["b0"]
    assert compressor.offer(OTHER, 6000, 1.0, "b1") == []
    assert compressor.expire(9999) == []
    assert compressor.expire(10_000) == ["a1"]
    assert compressor.expire(14_999) == []  # b1 is due 10 s after b0
    assert compressor.expire(15_000) == ["b1"]
    assert compressor.expire(60_000) == []  # nothing held any more
    assert compressor.flush() == []


def test_topics_without_rule_pass_through_and_first_rule_wins() -> None:
    compressor: Compressor[int] = Compressor(
        rules=[
            _rule("swinging_door", deviation=100, match="acme/+/+/+/+/data/Temperature"),
            _rule("deadband", deviation=100, match="acme/#"),
        ]
    )
    first, second = compressor.rule_for(TOPIC), compressor.rule_for(OTHER)
    assert first is not None
    assert first.method == "swinging_door"
    assert second is not None
    assert second.method == "deadband"
    assert compressor.rule_for("other/site/data/x") is None
    assert [compressor.offer("other/site/data/x", i, 1.0, i) for i in range(3)] == [[0], [1], [2]]
    assert compressor.offered == 0  # pass-through topics are not counted


def test_out_of_order_sample_is_stored_and_restarts() -> None:
    compressor: Compressor[int] = Compressor(rules=[_rule("swinging_door")])
    assert compressor.offer(TOPIC, 0, 0.0, 0) == [0]
    assert compressor.offer(TOPIC, 2000, 0.0, 1) == []
    assert compressor.offer(TOPIC, 1000, 0.0, 2) == [2, 1]  # in timestamp order
    assert compressor.offer(TOPIC, 3000, 0.0, 3) == [3]  # a first point again


def test_noisy_sine_ratio() -> None:
    rng = random.Random(7)
    values = [10 * math.sin(i / 200) + rng.gauss(0, 0.2) for i in range(10_000)]
    ratios = {}
    for method in ("deadband", "swinging_door"):
        compressor: Compressor[int] = Compressor(rules=[_rule(method, deviation=0.5)])
        stored = _run(compressor, list(values))
        ratios[method] = len(values) / len(stored)
        assert compressor.offered == len(values)
        assert compressor.stored == len(stored)
    print(f"noisy sine, 10k points, deviation 0.5 (noise sd 0.2): {ratios}")
    # the swinging door bounds the interpolation error, the deadband only the step error: on noise it keeps more
    assert ratios["swinging_door"] > 5
    assert ratios["deadband"] > 5


def _check_corridor(points: list[tuple[int, float]], stored: list[int], deviation: float) -> None:
    assert stored == sorted(set(stored))  # a subsequence, in order
    assert stored[0] == 0
    assert stored[-1] == len(points) - 1
    for left, right in itertools.pairwise(stored):
        (t0, v0), (t1, v1) = points[left], points[right]
        for t, v in points[left + 1 : right]:
            line = v0 + (v1 - v0) * (t - t0) / (t1 - t0)
            assert abs(line - v) <= deviation + 1e-9, (left, right, t, v, line)


_series = st.lists(st.tuples(st.integers(1, 5000), st.floats(-1e4, 1e4, allow_nan=False)), min_size=1, max_size=200)


@settings(max_examples=300, deadline=None)
@given(series=_series, deviation=st.floats(0.01, 100))
def test_swinging_door_stays_within_deviation(series: list[tuple[int, float]], deviation: float) -> None:
    points: list[tuple[int, float]] = []
    ts = 0
    for step, value in series:
        ts += step
        points.append((ts, value))
    compressor: Compressor[int] = Compressor(rules=[_rule("swinging_door", deviation=deviation, max_interval_s=1e9)])
    stored: list[int] = []
    for index, (t, v) in enumerate(points):
        out = compressor.offer(TOPIC, t, v, index)
        assert out == sorted(out)
        stored += out
    stored += compressor.flush()
    _check_corridor(points, stored, deviation)


@settings(max_examples=200, deadline=None)
@given(series=_series, deviation=st.floats(0.01, 100), max_interval_s=st.floats(0.5, 50))
def test_swinging_door_max_interval(series: list[tuple[int, float]], deviation: float, max_interval_s: float) -> None:
    points: list[tuple[int, float]] = []
    ts = 0
    for step, value in series:
        ts += step
        points.append((ts, value))
    compressor: Compressor[int] = Compressor(rules=[_rule("swinging_door", deviation, max_interval_s)])
    stored: list[int] = []
    for index, (t, v) in enumerate(points):
        stored += compressor.offer(TOPIC, t, v, index)
    stored += compressor.flush()
    _check_corridor(points, stored, deviation)
    for left, right in itertools.pairwise(stored):
        # the gap never exceeds the interval by more than the input's own step
        assert points[right][0] - points[left][0] < max_interval_s * 1000 + 5000


@settings(max_examples=200, deadline=None)
@given(series=_series, deviation=st.floats(0.01, 100))
def test_deadband_drops_only_small_moves(series: list[tuple[int, float]], deviation: float) -> None:
    compressor: Compressor[int] = Compressor(rules=[_rule("deadband", deviation=deviation, max_interval_s=1e9)])
    values = [v for _, v in series]
    stored = _run(compressor, list(values))
    assert stored[0] == 0
    last = values[0]
    for index, value in enumerate(values[1:], start=1):
        if index in stored:
            assert abs(value - last) > deviation
            last = value
        else:
            assert abs(value - last) <= deviation

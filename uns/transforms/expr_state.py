"""The stateful functions of the expression language: one instance per call site and per tag.

Each keeps what it needs between evaluations (the previous value, a window of samples) and is
stepped with the evaluation's time, which is the newest input's ``timestamp_ms``, never the wall
clock, so a replay gives the same answers as the live run.
"""

from __future__ import annotations

from collections import deque
from typing import Any

__all__ = [
    "MAX_WINDOW_SAMPLES",
    "STATEFUL",
    "Average",
    "CountRising",
    "Delta",
    "Hysteresis",
    "Rate",
    "SinceChange",
    "WindowMax",
    "WindowMin",
]

MAX_WINDOW_SAMPLES = 10_000
"""Samples one window function keeps at most; past it the oldest go first (bounded memory)."""


class Delta:
    """``delta(x)``: x minus its value at the previous evaluation; 0 the first time."""

    __slots__ = ("_prev",)

    def __init__(self) -> None:
        self._prev: Any = None

    def step(self, now_ms: int, x: Any) -> Any:
        """The value after the sample ``x`` at ``now_ms``."""
        prev, self._prev = self._prev, x
        return 0 if prev is None else x - prev


class Rate:
    """``rate(x, "1m")``: how fast x grows, per the given duration, over the last such duration.

    The slope between the oldest sample of the window (one older sample is kept, so the span
    covers the window) and now. A counter that goes down (a reset) restarts the window. 0 until
    two samples at different times are known.
    """

    __slots__ = ("_per_ms", "_samples")

    def __init__(self, per_ms: int) -> None:
        self._per_ms = per_ms
        self._samples: deque[tuple[int, Any]] = deque()

    def step(self, now_ms: int, x: Any) -> Any:
        """The value after the sample ``x`` at ``now_ms``."""
        samples = self._samples
        if samples and x < samples[-1][1]:
            samples.clear()
        samples.append((now_ms, x))
        start = now_ms - self._per_ms
        while len(samples) > 2 and samples[1][0] <= start:
            samples.popleft()
        if len(samples) > MAX_WINDOW_SAMPLES:
            samples.popleft()
        t0, x0 = samples[0]
        if now_ms <= t0:
            return 0.0
        return (x - x0) * self._per_ms / (now_ms - t0)


class _Window:
    """Samples of the last ``window_ms``, the newest included."""

    __slots__ = ("_samples", "_window_ms")

    def __init__(self, window_ms: int) -> None:
        self._window_ms = window_ms
        self._samples: deque[tuple[int, Any]] = deque()

    def _expire(self, now_ms: int) -> None:
        samples = self._samples
        start = now_ms - self._window_ms
        while samples and samples[0][0] <= start:
            self._drop(samples.popleft())

    def _drop(self, sample: tuple[int, Any]) -> None:
        """Forget one sample (a subclass keeps a running figure)."""


class Average(_Window):
    """``avg(x, "5m")``: the mean of the samples of the last 5 minutes (each sample counts once)."""

    __slots__ = ("_sum",)

    def __init__(self, window_ms: int) -> None:
        super().__init__(window_ms)
        self._sum: Any = 0

    def _drop(self, sample: tuple[int, Any]) -> None:
        self._sum -= sample[1]

    def step(self, now_ms: int, x: Any) -> Any:
        """The value after the sample ``x`` at ``now_ms``."""
        self._sum += x
        self._samples.append((now_ms, x))
        if len(self._samples) > MAX_WINDOW_SAMPLES:
            self._drop(self._samples.popleft())
        self._expire(now_ms)
        if not self._samples:
            self._sum = 0
            return x
        return self._sum / len(self._samples)


class WindowMax(_Window):
    """``maximum(x, "5m")``: the largest sample of the last 5 minutes (a monotonic queue: O(1) each)."""

    __slots__ = ()

    def step(self, now_ms: int, x: Any) -> Any:
        """The value after the sample ``x`` at ``now_ms``."""
        samples = self._samples
        while samples and samples[-1][1] <= x:
            samples.pop()
        samples.append((now_ms, x))
        self._expire(now_ms)
        return samples[0][1] if samples else x


class WindowMin(_Window):
    """``minimum(x, "5m")``: the smallest sample of the last 5 minutes."""

    __slots__ = ()

    def step(self, now_ms: int, x: Any) -> Any:
        """The value after the sample ``x`` at ``now_ms``."""
        samples = self._samples
        while samples and samples[-1][1] >= x:
            samples.pop()
        samples.append((now_ms, x))
        self._expire(now_ms)
        return samples[0][1] if samples else x


class SinceChange:
    """``since_change(x)``: seconds since x last took a different value; 0 the first time."""

    __slots__ = ("_changed_ms", "_value")

    def __init__(self) -> None:
        self._value: Any = None
        self._changed_ms: int | None = None

    def step(self, now_ms: int, x: Any) -> Any:
        """The value after the sample ``x`` at ``now_ms``."""
        if self._changed_ms is None or x != self._value:
            self._value = x
            self._changed_ms = now_ms
        return (now_ms - self._changed_ms) / 1000.0


class CountRising:
    """``count_rising(x)``: how many times x went from false to true (pulses, rising edges).

    The first value only sets the level: a signal already high when the hub starts is not an edge.
    The count lives in memory and starts from 0 when the tag is (re)loaded.
    """

    __slots__ = ("_count", "_level")

    def __init__(self) -> None:
        self._level: bool | None = None
        self._count = 0

    def step(self, now_ms: int, x: Any) -> Any:
        """The value after the sample ``x`` at ``now_ms``."""
        level = bool(x)
        if level and self._level is False:
            self._count += 1
        self._level = level
        return self._count


class Hysteresis:
    """``hysteresis(x, low, high)``: true once x reaches high, false once it falls to low, else unchanged."""

    __slots__ = ("_on",)

    def __init__(self) -> None:
        self._on = False

    def step(self, now_ms: int, x: Any, low: Any, high: Any) -> Any:
        """The value after the sample ``x`` at ``now_ms``."""
        if x >= high:
            self._on = True
        elif x <= low:
            self._on = False
        return self._on


STATEFUL: dict[str, tuple[type[Any], int, bool]] = {
    "delta": (Delta, 1, False),
    "rate": (Rate, 1, True),
    "avg": (Average, 1, True),
    "minimum": (WindowMin, 1, True),
    "maximum": (WindowMax, 1, True),
    "since_change": (SinceChange, 1, False),
    "count_rising": (CountRising, 1, False),
    "hysteresis": (Hysteresis, 3, False),
}
"""name -> (class, value arguments, whether a constant duration string follows them)."""

"""Reconnect backoff: exponential delays with a cap and jitter, the one implementation bridges share."""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    """Delays between reconnect attempts: ``min_s`` doubling per failure up to ``max_s``, times a random 0.5..1.

    The jitter keeps many bridges (or many devices) that lost the same network from reconnecting in step.
    ``failed()`` records a failure and returns the delay it earned; ``succeeded()`` starts over.
    """

    def __init__(self, *, min_s: float, max_s: float, rng: random.Random | None = None) -> None:
        if not 0 < min_s <= max_s:
            raise ValueError(f"backoff needs 0 < min_s <= max_s (got {min_s}, {max_s})")
        self.min_s = min_s
        self.max_s = max_s
        self._rng = rng or random.Random()  # noqa: S311  (jitter, not crypto)
        self.failures = 0
        """Failures since the last success."""

    def delay_s(self, failures: int) -> float:
        """The delay after failure number ``failures`` (1 = the first), with jitter."""
        base = min(self.max_s, self.min_s * 2.0 ** min(max(failures, 1) - 1, 32))
        return base * self._rng.uniform(0.5, 1.0)

    def failed(self) -> float:
        """Record a failure; the delay to wait before the next attempt."""
        self.failures += 1
        return self.delay_s(self.failures)

    def at_max(self) -> float:
        """Record a failure that retrying soon cannot fix (a refusal): the capped delay, with jitter."""
        self.failures += 1
        return self.max_s * self._rng.uniform(0.5, 1.0)

    def succeeded(self) -> None:
        """The connection works again: the next failure starts from ``min_s``."""
        self.failures = 0

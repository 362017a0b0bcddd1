"""Failed logins per key (a user name or a client address) in a sliding window, in a bounded tracker (pure)."""

from __future__ import annotations

import collections
import math

__all__ = ["FailureLimiter"]


class FailureLimiter:
    """Failed logins per key (user or address) in a sliding window; past the limit the key is locked.

    At most ``max_keys`` keys are tracked. A new key past that evicts the oldest key that is not
    locked; when every tracked key is locked, the new key is refused (:meth:`admit`) rather than a
    lock freed, so made-up user names can neither clear locks nor grow memory.
    """

    def __init__(self, *, limit: int, window_s: float, max_keys: int = 10_000) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1 (got {max_keys})")
        self._limit = limit
        self._window_s = window_s
        self._max_keys = max_keys
        self._failures: collections.OrderedDict[str, collections.deque[float]] = collections.OrderedDict()
        self._all_locked_until = 0.0  # the tracker was full of locks: no room before then, without a sweep
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._failures)

    def _prune(self, key: str, failures: collections.deque[float], now: float) -> bool:
        """Drop ``key``'s failures that left the window; whether any are left."""
        while failures and failures[0] <= now - self._window_s:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return False
        return True

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        failures = self._failures.get(key)
        if failures is None or not self._prune(key, failures, now) or len(failures) < self._limit:
            return 0.0
        return failures[-self._limit] + self._window_s - now

    def admit(self, key: str, now: float) -> float:
        """Make room to track ``key``: 0 when it is tracked or fits, else seconds until a lock ends."""
        if key in self._failures or len(self._failures) < self._max_keys:
            return 0.0
        if now < self._all_locked_until:
            return self._all_locked_until - now
        first_unlock = math.inf
        for tracked, failures in list(self._failures.items()):  # oldest first
            if not self._prune(tracked, failures, now):
                return 0.0  # its failures all left the window: that made room
            if len(failures) < self._limit:
                del self._failures[tracked]  # the oldest key that is not locked
                self.evicted += 1
                return 0.0
            first_unlock = min(first_unlock, failures[-self._limit] + self._window_s)
        self._all_locked_until = first_unlock
        return first_unlock - now

    def fail(self, key: str, now: float) -> None:
        """Count one failure (also called before a check, so parallel guesses count at once); admit it first."""
        failures = self._failures.get(key)
        if failures is None:
            failures = self._failures[key] = collections.deque()
        else:
            self._failures.move_to_end(key)  # oldest means least recently failed
        failures.append(now)

    def forgive(self, key: str, *, all_of_them: bool = False) -> None:
        """Take back the last failure counted for ``key`` (or all of them)."""
        failures = self._failures.get(key)
        if failures and not all_of_them:
            failures.pop()
        if not failures or all_of_them:
            self._failures.pop(key, None)

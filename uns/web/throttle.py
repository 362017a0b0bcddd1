"""Failed logins per key (a user name or a client address) in a sliding window, in a bounded tracker (pure)."""

from __future__ import annotations

import collections
import math

__all__ = ["FailureLimiter"]

_Failures = collections.deque[float]


class FailureLimiter:
    """Failed logins per key (user or address) in a sliding window; past the limit the key is locked.

    At most ``max_keys`` keys are tracked. A new key past that evicts the oldest key that is not
    locked; when every tracked key is locked, the new key is refused (:meth:`admit`) rather than a
    lock freed, so made-up user names can neither clear locks nor grow memory. Locked keys are kept
    apart from the others, so finding the key to evict never walks past the locks.
    """

    def __init__(self, *, limit: int, window_s: float, max_keys: int = 10_000) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1 (got {max_keys})")
        self._limit = limit
        self._window_s = window_s
        self._max_keys = max_keys
        self._open: collections.OrderedDict[str, _Failures] = collections.OrderedDict()  # least recent failure first
        self._locked: dict[str, _Failures] = {}  # reached the limit; some may have unlocked since (found lazily)
        self._all_locked_until = 0.0  # the tracker was full of locks: no room before then, without a sweep
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._open) + len(self._locked)

    def _live(self, failures: _Failures, now: float) -> _Failures:
        """``failures`` without those that left the window."""
        while failures and failures[0] <= now - self._window_s:
            failures.popleft()
        return failures

    def _unlock_at(self, failures: _Failures) -> float:
        return failures[-self._limit] + self._window_s

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        failures = self._locked.get(key)
        if failures is None:
            return 0.0  # an open key is below the limit
        if len(self._live(failures, now)) >= self._limit:
            return self._unlock_at(failures) - now
        del self._locked[key]  # its lock ended
        if failures:
            self._open[key] = failures
        return 0.0

    def admit(self, key: str, now: float) -> float:
        """Make room to track ``key``: 0 when it is tracked or fits, else seconds until a lock ends."""
        if key in self._open or key in self._locked or len(self) < self._max_keys:
            return 0.0
        if self._open:
            self._open.popitem(last=False)  # the oldest key that is not locked
            self.evicted += 1
            return 0.0
        if now < self._all_locked_until:
            return self._all_locked_until - now
        first_unlock = math.inf
        for tracked, failures in list(self._locked.items()):  # once per lock period: see _all_locked_until
            if len(self._live(failures, now)) < self._limit:
                del self._locked[tracked]
                if failures:
                    self._open[tracked] = failures
            else:
                first_unlock = min(first_unlock, self._unlock_at(failures))
        if len(self) < self._max_keys:
            return 0.0  # keys whose failures all left the window made room
        if self._open:
            self._open.popitem(last=False)
            self.evicted += 1
            return 0.0
        self._all_locked_until = first_unlock
        return first_unlock - now

    def fail(self, key: str, now: float) -> None:
        """Count one failure (also called before a check, so parallel guesses count at once); admit it first."""
        failures = self._locked.get(key)
        if failures is not None:
            failures.append(now)
            return
        failures = self._open.pop(key, None)  # re-inserted last: oldest means least recently failed
        if failures is None:
            failures = collections.deque()
        failures.append(now)
        if len(self._live(failures, now)) >= self._limit:
            self._locked[key] = failures
        else:
            self._open[key] = failures

    def forgive(self, key: str, *, all_of_them: bool = False) -> None:
        """Take back the last failure counted for ``key`` (or all of them)."""
        for table in (self._open, self._locked):
            failures = table.get(key)
            if failures is None:
                continue
            if failures and not all_of_them:
                failures.pop()
            if not failures or all_of_them:
                del table[key]
            elif table is self._locked and len(failures) < self._limit:
                del self._locked[key]
                self._open[key] = failures

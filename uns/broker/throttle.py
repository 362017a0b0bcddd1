"""Login throttling per client address and per user name, and a bounded cache of recent good logins."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hashlib
import heapq
import hmac
import secrets
import time
from collections.abc import Callable

from model.broker_config import LoginLimits

__all__ = ["CheckSlots", "FailureTracker", "LoginCache", "LoginThrottle"]

_MAX_KEYS = 10_000  # addresses or user names tracked; a flood of new ones evicts unblocked entries first


@dataclasses.dataclass(slots=True)
class _Entry:
    failures: int = 0
    in_flight: int = 0
    blocked_until: float = float("-inf")
    last: float = 0.0


class FailureTracker:
    """Failed logins by key (an address or a user name): past ``limit`` failures, refusal periods that double.

    An attempt in flight counts as a possible failure, so a burst of simultaneous CONNECTs cannot all
    slip past the limit before the first of them fails; once blocked, one attempt at a time probes.
    """

    def __init__(
        self,
        *,
        limit: int,
        block_s: float,
        max_block_s: float,
        forget_after_s: float,
        max_keys: int = _MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = limit
        self._block_s = block_s
        self._max_block_s = max_block_s
        self._forget_after_s = forget_after_s
        self._max_keys = max_keys
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def refused(self, key: str) -> bool:
        """Whether an attempt for ``key`` must be refused now (without checking its password)."""
        entry = self._entries.get(key)
        if entry is None:
            return False
        now = self._clock()
        if now < entry.blocked_until:
            return True
        if not entry.in_flight and now - entry.last > self._forget_after_s:
            del self._entries[key]
            return False
        return bool(entry.in_flight) and entry.failures + entry.in_flight >= self._limit

    def busy(self, key: str) -> bool:
        """Whether ``key`` has an attempt in flight or failures not yet forgotten."""
        entry = self._entries.get(key)
        return entry is not None and (entry.in_flight > 0 or self.failed(key))

    def failed(self, key: str) -> bool:
        """Whether ``key`` has failures not yet forgotten."""
        entry = self._entries.get(key)
        return entry is not None and entry.failures > 0 and self._clock() - entry.last <= self._forget_after_s

    def begin(self, key: str) -> None:
        """An attempt for ``key`` starts (call after :meth:`refused` said no)."""
        entry = self._entries.get(key)
        if entry is None:
            self._make_room()
            entry = self._entries[key] = _Entry(last=self._clock())
        entry.in_flight += 1

    def end(self, key: str, *, ok: bool | None) -> None:
        """The attempt ended: ``ok`` True resets ``key``, False counts a failure, None (aborted) only ends it."""
        entry = self._entries.get(key)
        if entry is None:
            return
        entry.in_flight = max(0, entry.in_flight - 1)
        if ok:
            if not entry.in_flight:
                del self._entries[key]
            else:
                entry.failures = 0
            return
        if ok is None:
            return
        now = self._clock()
        entry.failures += 1
        entry.last = now
        if entry.failures >= self._limit:
            period = min(self._block_s * 2 ** min(entry.failures - self._limit, 30), self._max_block_s)
            entry.blocked_until = now + period

    def _make_room(self) -> None:
        if len(self._entries) < self._max_keys:
            return
        now = self._clock()
        # never free a blocked entry while an unblocked one can go: a flood of new keys must not unblock
        victim = next((k for k, e in self._entries.items() if e.blocked_until <= now and not e.in_flight), None)
        if victim is None:
            victim = next(iter(self._entries))
        del self._entries[victim]


class LoginThrottle:
    """The address and user trackers of one broker, with the (user, address) pairs that logged in lately.

    A user's block applies only to addresses with failures of their own, and not to a pair that logged
    in within ``forget_after_s``: a flood against a user from elsewhere cannot lock a working client
    out, while each address of a distributed guesser gets one guess before the user's block holds it.
    An address's own failures always count.
    """

    def __init__(self, limits: LoginLimits, *, clock: Callable[[], float] = time.monotonic) -> None:
        def tracker(limit: int) -> FailureTracker:
            return FailureTracker(
                limit=limit,
                block_s=limits.block_s,
                max_block_s=limits.max_block_s,
                forget_after_s=limits.forget_after_s,
                clock=clock,
            )

        self._addresses = tracker(limits.max_failures_per_address)
        self._users = tracker(limits.max_failures_per_user)
        self._trusted: collections.OrderedDict[tuple[str, str], float] = collections.OrderedDict()
        self._forget_after_s = limits.forget_after_s
        self._clock = clock

    def suspect(self, address: str) -> bool:
        """Whether ``address`` has a login in flight or failed lately: its checks queue behind the others'."""
        return self._addresses.busy(address)

    def begin(self, *, address: str, user: str) -> str | None:
        """Start an attempt, or say why it is refused (``address`` or ``user``) and start nothing."""
        if self._addresses.refused(address):
            return "address"
        trusted = self._trusted.get((user, address))
        exempt = trusted is not None and self._clock() - trusted < self._forget_after_s
        if not exempt and self._users.refused(user) and self._addresses.failed(address):
            return "user"
        self._addresses.begin(address)
        self._users.begin(user)
        return None

    def end(self, *, address: str, user: str, ok: bool | None) -> None:
        """End an attempt :meth:`begin` started (see :meth:`FailureTracker.end` for ``ok``)."""
        self._addresses.end(address, ok=ok)
        self._users.end(user, ok=ok)
        if ok:
            self._trusted[(user, address)] = self._clock()
            self._trusted.move_to_end((user, address))
            while len(self._trusted) > _MAX_KEYS:
                self._trusted.popitem(last=False)


class CheckSlots:
    """A semaphore of ``size`` password checks whose waiters go by priority (0 first), then arrival.

    A login from an address that has nothing in flight and no recent failure waits only for the
    checks already running, not for a flood queued from elsewhere.
    """

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._count = 0

    async def acquire(self, priority: int) -> None:
        """Take a slot, waiting behind waiters of lower ``priority`` values and earlier arrivals."""
        if self._free and not self._waiters:
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._count += 1
        heapq.heappush(self._waiters, (priority, self._count, future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # the slot was handed over just as we were cancelled: pass it on
            raise

    def release(self) -> None:
        """Give a slot back: to the first waiter still waiting, else to the pool."""
        while self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)
                return
        self._free += 1


class LoginCache:
    """Recent successful logins, so a reconnecting client skips argon2; bounded, in memory only.

    Keys are HMAC-SHA256 of user, password and stored hash under a key drawn at start: nothing in it
    can be turned back into a password without that key, a changed hash in broker.yaml misses, and
    only the right password can hit (a hit tells nothing its sender did not know).
    """

    def __init__(self, *, size: int, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._size = size
        self._ttl_s = ttl_s
        self._clock = clock
        self._key = secrets.token_bytes(32)
        self._entries: collections.OrderedDict[bytes, float] = collections.OrderedDict()

    def _digest(self, user: str, password: str, stored_hash: str) -> bytes:
        message = "\0".join((user, password, stored_hash)).encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def hit(self, user: str, password: str, stored_hash: str) -> bool:
        """Whether this user logged in with this password (against this hash) within the TTL."""
        if not self._size:
            return False
        digest = self._digest(user, password, stored_hash)
        expires = self._entries.get(digest)
        if expires is None:
            return False
        if self._clock() >= expires:
            del self._entries[digest]
            return False
        return True

    def add(self, user: str, password: str, stored_hash: str) -> None:
        """Remember a login argon2 just verified."""
        if not self._size:
            return
        digest = self._digest(user, password, stored_hash)
        self._entries[digest] = self._clock() + self._ttl_s
        self._entries.move_to_end(digest)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

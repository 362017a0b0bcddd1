"""A topic cache fed by hand (``TopicCache.observe``) on a clock the test moves: no broker, no client."""

from __future__ import annotations

from uns.web.cache import TopicCache

__all__ = ["T0", "Clock", "offline_cache"]

T0 = 1_764_000_000_000
"""Where every test clock starts (Unix ms)."""


class Clock:
    """The cache's clock: ``ms`` is now, set by the test."""

    def __init__(self) -> None:
        self.ms = T0

    def __call__(self) -> float:
        return self.ms / 1000


def _unused_clients(**_: object) -> object:
    raise AssertionError("an offline cache never opens a client")


def offline_cache(clock: Clock | None = None, **kwargs: int) -> TopicCache:
    """A cache on ``clock`` (a fresh one at ``T0`` if None) whose messages the test hands it; ``kwargs``: its bounds."""
    return TopicCache(clients=_unused_clients, clock=clock or Clock(), **kwargs)  # type: ignore[arg-type]

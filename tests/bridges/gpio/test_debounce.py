"""Debouncing from edges: bounce and glitches shorter than the period change nothing; held levels count."""

from __future__ import annotations

import pytest

from bridges.gpio.debounce import Debouncer

_MS = 1_000_000


def _run(period_ms: int, edges: list[tuple[int, bool]], end_ms: int) -> list[tuple[bool, int]]:
    """Feed (ms, level) edges, settle at each edge and at ``end_ms``; the confirmed (level, since ms) in order."""
    debouncer = Debouncer(period_ns=period_ms * _MS, level=False)
    out: list[tuple[bool, int]] = []
    for at_ms, level in edges:
        if debouncer.edge(level, at_ms * _MS) is not None:
            out.append((debouncer.level, debouncer.changed_ns // _MS))
    if debouncer.settle(end_ms * _MS) is not None:
        out.append((debouncer.level, debouncer.changed_ns // _MS))
    return out


@pytest.mark.parametrize(
    ("period_ms", "edges", "end_ms", "confirmed"),
    [
        # a contact closing with three bounces, held: one rising edge, from the last bounce
        (10, [(0, True), (1, False), (2, True), (3, False), (4, True)], 100, [(True, 4)]),
        # a glitch of 3 ms under a 10 ms period: nothing
        (10, [(0, True), (3, False)], 100, []),
        # a part passing (rise held 40 ms, fall held): both transitions, each at its last edge
        (10, [(0, True), (1, False), (2, True), (42, False), (43, True), (44, False)], 100, [(True, 2), (False, 44)]),
        # still pending at the end: not confirmed yet
        (10, [(0, True)], 5, []),
        # period 0: every edge is a transition
        (0, [(0, True), (1, False), (2, True)], 2, [(True, 0), (False, 1), (True, 2)]),
    ],
)
def test_debounced_transitions(
    period_ms: int, edges: list[tuple[int, bool]], end_ms: int, confirmed: list[tuple[bool, int]]
) -> None:
    assert _run(period_ms, edges, end_ms) == confirmed


def test_due_time_of_a_pending_level() -> None:
    debouncer = Debouncer(period_ns=10 * _MS, level=False)
    assert debouncer.due_ns() is None
    debouncer.edge(True, 5 * _MS)
    assert debouncer.due_ns() == 15 * _MS
    debouncer.edge(False, 7 * _MS)  # bounced back: nothing pending
    assert debouncer.due_ns() is None

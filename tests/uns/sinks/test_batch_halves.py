"""``Batch.halves``: how the historian and the sinks split a refused batch to find the bad row; never an empty half."""

from __future__ import annotations

import pytest

from uns.historian.rows import EventRow, Rejected, SampleRow
from uns.historian.store import Batch


def _sample(i: int) -> SampleRow:
    return SampleRow(
        topic=f"a/b/data/m{i}", path="a/b", class_word="data", metric=f"m{i}", ts_ms=i, value=float(i), value_text=None,
        value_json=None, quality="good", historical=False, source=None, datatype="Double", unit=None, unbound=False,
    )  # fmt: skip


def _event(i: int) -> EventRow:
    return EventRow(event_key=i, topic="a/b/mes/work_order", path="a/b", event="work_order", ts_ms=i, body="{}")


def _reject(i: int) -> Rejected:
    return Rejected(topic=f"a/b/data/bad{i}", field="payload", reason="not JSON", payload=b"{")


def _batch(samples: int, events: int, rejected: int) -> Batch:
    return Batch(
        samples=[_sample(i) for i in range(samples)],
        events=[_event(i) for i in range(events)],
        rejected=[_reject(i) for i in range(rejected)],
        received_ms=list(range(samples)),
    )


@pytest.mark.parametrize(
    ("shape", "first", "second"),
    [
        ((1, 1, 0), (1, 0, 0), (0, 1, 0)),  # one sample and one event: the old split gave (2 rows, empty) forever
        ((1, 0, 1), (1, 0, 0), (0, 0, 1)),
        ((0, 1, 1), (0, 1, 0), (0, 0, 1)),
        ((1, 1, 1), (1, 0, 0), (0, 1, 1)),
        ((2, 0, 0), (1, 0, 0), (1, 0, 0)),
        ((5, 3, 1), (2, 1, 0), (3, 2, 1)),
    ],
)
def test_halves_are_never_empty_and_keep_every_row(
    shape: tuple[int, int, int], first: tuple[int, int, int], second: tuple[int, int, int]
) -> None:
    batch = _batch(*shape)
    a, b = batch.halves()
    assert (len(a.samples), len(a.events), len(a.rejected)) == first
    assert (len(b.samples), len(b.events), len(b.rejected)) == second
    assert a.samples + b.samples == batch.samples
    assert a.received_ms + b.received_ms == batch.received_ms
    assert a.events + b.events == batch.events
    assert a.rejected + b.rejected == batch.rejected

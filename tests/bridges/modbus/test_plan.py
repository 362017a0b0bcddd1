"""Pure read planning: coalescing by table and gap, read limits, and splitting."""

from __future__ import annotations

import pytest

from bridges.modbus.plan import ReadRequest, Span, plan_device, plan_reads, split
from model.bridges.modbus import ModbusDevice


def _spans(*items: tuple[str, int, int]) -> list[Span]:
    return [Span(name=f"{table}{address}", table=table, address=address, size=size) for table, address, size in items]  # type: ignore[arg-type]


def _shape(requests: list[ReadRequest]) -> list[tuple[str, int, int, int]]:
    return [(r.table, r.address, r.count, len(r.spans)) for r in requests]


@pytest.mark.parametrize(
    ("spans", "max_gap", "max_read", "expected"),
    [
        # adjacent registers: one read
        (_spans(("holding", 0, 1), ("holding", 1, 2), ("holding", 3, 4)), 0, 125, [("holding", 0, 7, 3)]),
        # unordered input is sorted
        (_spans(("holding", 3, 4), ("holding", 0, 1), ("holding", 1, 2)), 0, 125, [("holding", 0, 7, 3)]),
        # a gap of 2 is bridged with max_gap 2 ...
        (_spans(("holding", 0, 1), ("holding", 3, 1)), 2, 125, [("holding", 0, 4, 2)]),
        # ... and not with max_gap 1
        (_spans(("holding", 0, 1), ("holding", 3, 1)), 1, 125, [("holding", 0, 1, 1), ("holding", 3, 1, 1)]),
        # max_read caps the read even without gaps
        (
            _spans(("input", 0, 2), ("input", 2, 2), ("input", 4, 2)),
            8,
            4,
            [("input", 0, 4, 2), ("input", 4, 2, 1)],
        ),
        # tables never share a read; order is coil, discrete, holding, input
        (
            _spans(("input", 0, 1), ("holding", 1, 1), ("coil", 0, 1), ("discrete", 5, 1), ("holding", 0, 1)),
            8,
            125,
            [("coil", 0, 1, 1), ("discrete", 5, 1, 1), ("holding", 0, 2, 2), ("input", 0, 1, 1)],
        ),
        # bits: the gap and the limit count 16 bits per register
        (_spans(("coil", 0, 1), ("coil", 16, 1)), 1, 125, [("coil", 0, 17, 2)]),
        (_spans(("coil", 0, 1), ("coil", 17, 1)), 1, 125, [("coil", 0, 18, 2)]),
        (_spans(("coil", 0, 1), ("coil", 18, 1)), 1, 125, [("coil", 0, 1, 1), ("coil", 18, 1, 1)]),
        (_spans(("coil", 0, 1), ("coil", 1999, 1)), 125, 125, [("coil", 0, 2000, 2)]),
        (_spans(("coil", 0, 1), ("coil", 2000, 1)), 125, 125, [("coil", 0, 1, 1), ("coil", 2000, 1, 1)]),
        # registers: never more than 125 in one read, whatever max_read says
        (_spans(("holding", 0, 100), ("holding", 100, 26)), 8, 200, [("holding", 0, 100, 1), ("holding", 100, 26, 1)]),
        # a tag bigger than max_read still gets its own read
        (_spans(("holding", 0, 10)), 0, 4, [("holding", 0, 10, 1)]),
        ([], 8, 125, []),
    ],
)
def test_plan_reads(spans: list[Span], max_gap: int, max_read: int, expected: list[tuple[str, int, int, int]]) -> None:
    assert _shape(plan_reads(spans, max_gap=max_gap, max_read=max_read)) == expected


def test_slices_and_label() -> None:
    [request] = plan_reads(_spans(("holding", 10, 2), ("holding", 14, 1)), max_gap=8, max_read=125)
    assert request.label == "holding 10..14"
    assert [(s.name, a, b) for s, a, b in request.slices()] == [("holding10", 0, 2), ("holding14", 4, 5)]


def test_split_gives_one_read_per_tag() -> None:
    [request] = plan_reads(_spans(("holding", 10, 2), ("holding", 14, 1)), max_gap=8, max_read=125)
    assert _shape(split(request)) == [("holding", 10, 2, 1), ("holding", 14, 1, 1)]


def test_plan_device_groups_by_poll_group() -> None:
    device = ModbusDevice.model_validate(
        {
            "id": "d",
            "max_gap": 4,
            "poll_groups": {"fast": 0.1, "slow": 5, "unused": 1},
            "registers": [
                {"name": "a", "table": "holding", "address": 0, "poll": "fast"},
                {"name": "b", "table": "holding", "address": 1, "poll": "slow"},
                {"name": "c", "table": "holding", "address": 2, "poll": "fast", "type": "float32"},
                {"name": "d", "table": "coil", "address": 3, "type": "bool", "poll": "slow"},
            ],
        }
    )
    plans = plan_device(device)
    assert list(plans) == ["fast", "slow"]
    assert _shape(plans["fast"]) == [("holding", 0, 4, 2)]
    assert _shape(plans["slow"]) == [("coil", 3, 1, 1), ("holding", 1, 1, 1)]

"""Pure SLMP read planning: merging runs, random/block/batch choice, each series' limits, splitting."""

from __future__ import annotations

import pytest

from bridges.slmp.device import SlmpPlc
from bridges.slmp.plan import (
    BatchRead,
    BlockRead,
    Limits,
    RandomRead,
    ReadRequest,
    Run,
    Slot,
    format_device,
    plan_reads,
    split,
)
from bridges.slmp.series import limits_of
from model.bridges.slmp import SlmpDevice


def _slots(*items: tuple[str, int, int]) -> list[Slot]:
    return [Slot(f"{device}{index}", f"{device}{index}", device, index, words) for device, index, words in items]


def _shape(requests: list[ReadRequest]) -> list[tuple[str, list[tuple[str, int, int]]]]:
    return [(type(r).__name__, [(run.device, run.index, run.words) for run in r.runs]) for r in requests]


@pytest.mark.parametrize(
    ("slots", "limits", "expected"),
    [
        # neighbours merge into one run; a run of <= 4 words is random-read points
        (_slots(("D", 0, 1), ("D", 1, 2)), Limits(), [("RandomRead", [("D", 0, 3)])]),
        # a gap of max_gap words is bridged, one more is not
        (_slots(("D", 0, 1), ("D", 3, 1)), Limits(max_gap=2), [("RandomRead", [("D", 0, 4)])]),
        (_slots(("D", 0, 1), ("D", 4, 1)), Limits(max_gap=2), [("RandomRead", [("D", 0, 1), ("D", 4, 1)])]),
        # devices never share a run; random reads mix devices
        (_slots(("W", 0, 1), ("D", 0, 1)), Limits(), [("RandomRead", [("D", 0, 1), ("W", 0, 1)])]),
        # a long run is a block; blocks of one request mix devices
        (
            _slots(("D", 0, 10), ("W", 0, 8), ("D", 100, 2)),
            Limits(),
            [("RandomRead", [("D", 100, 2)]), ("BlockRead", [("D", 0, 10), ("W", 0, 8)])],
        ),
        # no block read on the port: one batch read per long run
        (
            _slots(("D", 0, 10), ("W", 0, 8)),
            Limits(block_reads=False),
            [("BatchRead", [("D", 0, 10)]), ("BatchRead", [("W", 0, 8)])],
        ),
        # max_read caps a run even without gaps
        (
            _slots(("D", 0, 4), ("D", 4, 4), ("D", 8, 4)),
            Limits(max_gap=0, max_read=8),
            [("RandomRead", [("D", 8, 4)]), ("BlockRead", [("D", 0, 8)])],
        ),
        # overlapping tags (a word and a bit of it) share their words
        (
            [Slot("w", "D10", "D", 10, 1), Slot("b", "D10.3", "D", 10, 1, 3), Slot("f", "D10", "D", 10, 2)],
            Limits(),
            [("RandomRead", [("D", 10, 2)])],
        ),
    ],
)
def test_plan(slots: list[Slot], limits: Limits, expected: list[tuple[str, list[tuple[str, int, int]]]]) -> None:
    assert _shape(plan_reads(slots, limits)) == expected


@pytest.mark.parametrize(("series", "points"), [("iQ-R", 96), ("Q", 192), ("L", 192), ("iQ-F", 192)])
def test_random_reads_respect_the_series_point_limit(series: str, points: int) -> None:
    device = _device(series, [{"name": f"t{i}", "address": f"D{i * 20}"} for i in range(500)])
    requests = plan_reads([_slot(device, i) for i in range(500)], limits_of(device))
    assert all(isinstance(r, RandomRead) for r in requests)
    assert [r.point_count for r in requests] == [points] * (500 // points) + [500 % points]  # type: ignore[union-attr]


def test_a_dword_run_is_one_point_and_odd_runs_add_a_word_point() -> None:
    run = Run("D", 0, 3, ())
    assert run.points() == [(0, 2), (2, 1)]
    requests = plan_reads(_slots(*[("D", i * 20, 2) for i in range(100)]), Limits(random_points=96))
    assert [r.point_count for r in requests] == [96, 4]  # type: ignore[union-attr]


@pytest.mark.parametrize(("series", "blocks"), [("iQ-R", 60), ("Q", 120)])
def test_block_reads_respect_block_count_and_960_points(series: str, blocks: int) -> None:
    device = _device(series, [], ethernet_module=True)
    limits = limits_of(device)
    assert limits.block_reads
    many = plan_reads(_slots(*[("D", i * 100, 5) for i in range(blocks + 1)]), limits)
    assert [len(r.runs) for r in many] == [blocks, 1]
    heavy = plan_reads(_slots(*[("D", i * 1000, 400) for i in range(5)]), limits)
    assert [sum(run.words for run in r.runs) for r in heavy] == [800, 800, 400]


@pytest.mark.parametrize(
    ("series", "module", "block"),
    [("Q", False, False), ("L", False, False), ("Q", True, True), ("iQ-R", False, True), ("iQ-F", False, True)],
)
def test_built_in_q_and_l_ports_plan_batch_reads(series: str, module: bool, block: bool) -> None:
    device = _device(series, [{"name": "s", "address": "D0", "type": "string", "length": 20}], ethernet_module=module)
    [request] = SlmpPlc(bridge="b", config=device).plans["default"]
    assert isinstance(request, BlockRead if block else BatchRead)


def test_bit_devices_are_read_as_words_of_16_bits() -> None:
    device = _device(
        "iQ-R",
        [
            {"name": "x1f", "address": "X1F", "type": "bool"},
            {"name": "x10", "address": "X10", "type": "bool"},
            {"name": "m0", "address": "M0", "type": "bool"},
            {"name": "m15", "address": "M15", "type": "bool"},
            {"name": "m16", "address": "M16", "type": "bool"},
        ],
    )
    [request] = SlmpPlc(bridge="b", config=device).plans["default"]
    assert _shape([request]) == [("RandomRead", [("M", 0, 2), ("X", 1, 1)])]
    assert [run.head for run in request.runs] == [0, 16]
    assert [run.label() for run in request.runs] == ["M0..M31", "X10..X1F"]
    assert {slot.name: slot.bit for run in request.runs for slot in run.slots} == {
        "x1f": 15, "x10": 0, "m0": 0, "m15": 15, "m16": 0,
    }  # fmt: skip


def test_split_gives_each_tag_its_own_read() -> None:
    request = BlockRead((Run("D", 0, 12, tuple(_slots(("D", 0, 2), ("D", 2, 10)))),))
    assert _shape(split(request)) == [("RandomRead", [("D", 0, 2)]), ("BatchRead", [("D", 2, 10)])]


@pytest.mark.parametrize(
    ("device", "number", "octal", "text"),
    [("D", 100, False, "D100"), ("X", 31, False, "X1F"), ("W", 416, False, "W1A0"), ("X", 15, True, "X17"),
     ("ZR", 126976, False, "ZR126976"), ("B", 31, False, "B1F")],
)  # fmt: skip
def test_format_device_writes_gx_works_notation(device: str, number: int, octal: bool, text: str) -> None:
    assert format_device(device, number, octal_xy=octal) == text


def _device(series: str, tags: list[dict[str, object]], **fields: object) -> SlmpDevice:
    return SlmpDevice.model_validate(
        {"id": "p", "series": series, "tags": tags or [{"name": "t", "address": "D0"}], **fields}
    )


def _slot(device: SlmpDevice, index: int) -> Slot:
    tag = device.tags[index]
    return Slot(tag.name, tag.address, "D", int(tag.address[1:]), 1)

"""The S7 request planner: merging, packing by PDU size and item limit, splitting, isolation."""

from __future__ import annotations

import random

import pytest

from bridges.s7.pdu import build_read
from bridges.s7.plan import PlannedTag, max_item_bytes, plan_reads, response_bytes
from model.bridges.s7_address import parse_address


def _tag(name: str, address: str, type_name: str | None = None, length: int | None = None) -> PlannedTag:
    return PlannedTag(name, parse_address(address, type_name, length))


def test_neighbours_merge_across_small_gaps_and_areas_stay_apart() -> None:
    tags = [
        _tag("a", "DB1.DBW0"),
        _tag("b", "DB1.DBD4", "REAL"),
        _tag("c", "DB1.DBX30.1"),  # 22-byte gap from b's end: beyond max_gap 16
        _tag("d", "DB2.DBW0"),
        _tag("e", "MW0"),
        _tag("f", "M1.0"),
    ]
    plan = plan_reads(tags, pdu_size=480, max_gap=16)
    spans = [(r.area.name, r.db, r.start, r.units, [t.name for t in r.tags]) for r in plan.ranges]
    assert spans == [
        ("MK", 0, 0, 2, ["e", "f"]),
        ("DB", 1, 0, 8, ["a", "b"]),
        ("DB", 1, 30, 1, ["c"]),
        ("DB", 2, 0, 2, ["d"]),
    ]
    assert len(plan.requests) == 1


@pytest.mark.parametrize(("pdu", "most"), [(240, 222), (480, 462), (960, 942)])
def test_a_range_never_outgrows_one_item_and_a_long_string_is_split(pdu: int, most: int) -> None:
    assert max_item_bytes(pdu) == most
    tags = [_tag(f"s{i}", f"DB1.DBB{i * 300}", "STRING", 254) for i in range(4)]  # 44-byte gaps: no merging
    plan = plan_reads(tags, pdu_size=pdu, max_gap=0)
    for request in plan.requests:
        assert all(chunk.size <= most for chunk in request.chunks)
    per_string = -(-256 // most)
    assert sum(len(r.chunks) for r in plan.requests) == 4 * per_string
    # every string's bytes are covered exactly once
    for index, span in enumerate(plan.ranges):
        covered = sorted((c.offset, c.units) for r in plan.requests for c in r.chunks if c.range_index == index)
        assert sum(units for _, units in covered) == span.units == 256


@pytest.mark.parametrize("pdu", [240, 480, 960])
@pytest.mark.parametrize("max_items", [1, 5, 20])
def test_no_request_or_response_exceeds_the_pdu_or_the_item_limit(pdu: int, max_items: int) -> None:
    rng = random.Random(f"{pdu}:{max_items}")
    kinds = [("DBX", "BOOL"), ("DBB", "BYTE"), ("DBW", "INT"), ("DBD", "REAL"), ("DBB", "LREAL"), ("DBB", "STRING")]
    tags = []
    for index in range(300):
        width, type_name = rng.choice(kinds)
        offset = rng.randrange(0, 4000)
        text = f"DB{rng.randint(1, 4)}.{width}{offset}" + (".2" if width == "DBX" else "")
        tags.append(_tag(f"t{index}", text, type_name, rng.randint(1, 254) if type_name == "STRING" else None))
    plan = plan_reads(tags, pdu_size=pdu, max_items=max_items, max_gap=rng.randint(0, 64))
    planned = {tag.name for span in plan.ranges for tag in span.tags}
    assert planned == {tag.name for tag in tags}
    for request in plan.requests:
        assert 1 <= len(request.chunks) <= max_items
        assert len(build_read(1, request.chunks)) <= pdu
        assert response_bytes([c.size for c in request.chunks]) <= pdu
    for index, span in enumerate(plan.ranges):
        units = sum(c.units for r in plan.requests for c in r.chunks if c.range_index == index)
        assert units == span.units
        for tag in span.tags:
            assert span.start <= tag.address.start
            assert tag.address.start + tag.address.units <= span.start + span.units


def test_the_item_limit_and_the_pdu_size_split_requests() -> None:
    tags = [_tag(f"t{i}", f"DB1.DBD{i * 100}", "DINT") for i in range(50)]
    assert [len(r.chunks) for r in plan_reads(tags, pdu_size=960, max_items=20, max_gap=0).requests] == [20, 20, 10]
    assert [len(r.chunks) for r in plan_reads(tags, pdu_size=240, max_items=20, max_gap=0).requests] == [19, 19, 12]
    big = [_tag(f"b{i}", f"DB1.DBB{i * 1000}", "STRING", 100) for i in range(6)]  # 102 bytes each
    responses = [len(r.chunks) for r in plan_reads(big, pdu_size=240, max_gap=0).requests]
    assert responses == [2, 2, 2]  # 14 + 2 x (4 + 102) = 226 <= 240; a third would not fit


def test_isolated_tags_get_a_range_of_their_own() -> None:
    tags = [_tag("a", "DB1.DBW0"), _tag("b", "DB1.DBW2"), _tag("c", "DB1.DBW4")]
    merged = plan_reads(tags, pdu_size=480)
    assert [len(r.tags) for r in merged.ranges] == [3]
    split = plan_reads(tags, pdu_size=480, isolated={"b"})
    assert [[t.name for t in r.tags] for r in split.ranges] == [["a"], ["b"], ["c"]]


def test_timers_and_counters_count_elements() -> None:
    plan = plan_reads([_tag("t1", "T1"), _tag("t3", "T3"), _tag("c0", "C0")], pdu_size=240, max_gap=4)
    assert [(r.area.name, r.start, r.units, r.size) for r in plan.ranges] == [("CT", 0, 1, 2), ("TM", 1, 3, 6)]

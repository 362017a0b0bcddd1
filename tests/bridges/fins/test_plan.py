"""The read planner: blocks per area and bank, split at max_words, scattered tags gathered into 0104 reads."""

from __future__ import annotations

import pytest

from bridges.fins.plan import plan_reads, split_response
from model.bridges.fins import FinsTag


def _tag(name: str, address: str, type_: str = "uint16", length: int | None = None) -> FinsTag:
    return FinsTag.model_validate({"name": name, "address": address, "type": type_, "length": length})


def test_close_tags_share_one_area_read_and_other_areas_do_not() -> None:
    tags = [_tag("a", "D100"), _tag("b", "D102", "float32"), _tag("c", "D110", "float64"), _tag("d", "W3.04", "bool"),
            _tag("e", "W3.05", "bool"), _tag("f", "W4")]  # fmt: skip
    requests = plan_reads(tags, max_words=999, max_items=0, max_gap=16)
    assert [str(r) for r in requests] == ["D100+14", "W3+2"]
    assert [t.name for t in requests[0].tags] == ["a", "b", "c"]


def test_em_banks_are_separate_spaces() -> None:
    tags = [_tag("a", "E0_5"), _tag("b", "E1_5"), _tag("c", "EM5")]
    requests = plan_reads(tags, max_words=999, max_items=0, max_gap=16)
    assert sorted(str(r) for r in requests) == ["E0_5", "E1_5", "EM5"]


def test_long_runs_split_at_max_words_and_a_tag_is_never_cut() -> None:
    tags = [_tag(f"t{i}", f"D{2 * i}", "int32") for i in range(1000)]  # D0..D1999
    requests = plan_reads(tags, max_words=999, max_items=0, max_gap=0)
    assert [str(r) for r in requests] == ["D0+998", "D998+998", "D1996+4"]
    assert sum(len(r.tags) for r in requests) == 1000


def test_gaps_beyond_max_gap_start_a_new_block() -> None:
    tags = [_tag("a", "D0"), _tag("b", "D17"), _tag("c", "D35")]
    requests = plan_reads(tags, max_words=999, max_items=0, max_gap=16)
    assert [str(r) for r in requests] == ["D0+18", "D35"]


def test_scattered_small_tags_are_gathered_into_multiple_reads() -> None:
    tags = [_tag("a", "D0"), _tag("b", "D5000", "int32"), _tag("c", "W7.01", "bool"), _tag("d", "E2_9"),
            _tag("big", "H0", "string", 10)]  # fmt: skip
    requests = plan_reads(tags, max_words=999, max_items=3, max_gap=16)
    assert [str(r) for r in requests if not r.multiple] == ["H0+10"]  # too long to gather
    assert [str(r) for r in requests if r.multiple] == ["D0, D5000+2", "W7, E2_9"]  # 3 items at most each
    assert [str(a) for a in requests[1].items] == ["D0", "D5000", "D5001"]


def test_split_response_of_a_multiple_read_checks_area_codes() -> None:
    tags = [_tag("a", "D0"), _tag("b", "W9", "int32")]
    (request,) = plan_reads(tags, max_words=999, max_items=10, max_gap=0)
    assert request.multiple
    data = bytes.fromhex("82 0001 b1 5678 b1 1234")
    blocks = split_response(request, data)
    assert [words.hex() for words in blocks.values()] == ["0001", "56781234"]
    bad = bytes.fromhex("82 0001 b0 5678 b1 1234")
    with pytest.raises(ValueError, match="item at byte 3 is b05678, expected area 0xB1"):
        split_response(request, bad)

"""One duration grammar (model.duration): what the computed tags and the history queries both read, and its pattern."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from model.duration import DURATION_PATTERN, MAX_DURATION_MS, duration_ms
from model.transforms import ComputedTag
from tests.exports import assert_all_is_honest
from uns.transforms import ExpressionError, compile_expression

_CELL = "acme/dallas/bottling/line1/filler"

# the union of the two parsers it replaces: the query kit's weeks, either case and spaces around; the
# computed tags' decimals and a space between number and unit
READ = [
    ("500ms", 500),
    ("10s", 10_000),
    ("1m", 60_000),
    ("1.5h", 5_400_000),
    ("1d", 86_400_000),
    (" 2W ", 1_209_600_000),
    ("10 s", 10_000),
    ("250MS", 250),
    ("0.5s", 500),
    ("1.0005s", 1000),  # to the millisecond
    ("999999999d", 999_999_999 * 86_400_000),
]
REFUSED = ["", "5", "5 minutes", "0s", "-1m", "1y", "m", ".5s", "1e3s", "1,5h", "1000000000d"]


@pytest.mark.parametrize(("text", "ms"), READ)
def test_a_duration_is_a_number_and_a_unit(text: str, ms: int) -> None:
    assert duration_ms(text) == ms


@pytest.mark.parametrize("text", REFUSED)
def test_anything_else_is_refused_naming_it(text: str) -> None:
    with pytest.raises(ValueError, match="duration") as caught:
        duration_ms(text)
    assert repr(text) in str(caught.value)


def test_zero_only_where_it_is_allowed() -> None:
    assert duration_ms("0m", allow_zero=True) == 0  # a relative time: -0m is now
    with pytest.raises(ValueError, match="must be longer than 0"):
        duration_ms("0m")
    assert duration_ms("999999999d") == MAX_DURATION_MS - 86_399_999  # timedelta.max is a day less a microsecond


@pytest.mark.parametrize("text", [t for t, _ in READ] + REFUSED)
def test_the_settings_pattern_is_the_same_grammar(text: str) -> None:
    # the pattern has no bounds of size or zero: those are duration_ms's (plan_tags refuses them by its field)
    try:
        duration_ms(text)
        readable = True
    except ValueError as exc:
        readable = "must be longer" in str(exc) or "longer than" in str(exc)
    assert bool(re.match(DURATION_PATTERN, text)) is readable
    tag = {"path": _CELL, "name": "X", "expression": "n", "inputs": {"n": f"{_CELL}/data/Count"}, "every": text}
    if readable:
        assert ComputedTag.model_validate(tag).every == text
    else:
        with pytest.raises(ValidationError, match="every"):
            ComputedTag.model_validate(tag)


def test_a_window_of_the_expression_language_reads_it_too() -> None:
    assert compile_expression('avg(x, "2W")') is not None  # was refused: no weeks, no capitals
    with pytest.raises(ExpressionError, match="not a duration"):
        compile_expression('avg(x, "1y")')


def test_all_is_honest() -> None:
    assert_all_is_honest("model.duration")

"""The expression language: what it computes, what it refuses (with the column), and its stateful functions."""

from __future__ import annotations

import pytest

from model.duration import duration_ms
from tests.exports import assert_all_is_honest
from uns.transforms import EvaluationError, ExpressionError, compile_expression


@pytest.mark.parametrize(
    "name",
    ["uns.transforms", "uns.transforms.expr", "uns.transforms.expr_state", "uns.transforms.errors"],
)
def test_all_is_honest(name: str) -> None:
    assert_all_is_honest(name)


@pytest.mark.parametrize(
    ("text", "values", "want"),
    [
        ("a + b * 2", {"a": 1, "b": 3}, 7),
        ("(a - 32) * 5 / 9", {"a": 212}, 100.0),
        ("a // 2 + a % 2", {"a": 7}, 4),
        ("a ** 2", {"a": 3}, 9.0),
        ("-a", {"a": 3}, -3),
        ("a > 1 and b < 2", {"a": 2, "b": 1}, True),
        ("a > 1 or b", {"a": 0, "b": 0}, 0),
        ("not a", {"a": False}, True),
        ("0 < a <= 10", {"a": 10}, True),
        ("0 < a <= 10", {"a": 11}, False),
        ("a == 'Running'", {"a": "Running"}, True),
        ("a != 'Running'", {"a": "Running"}, False),
        ("a * 2 if ok else -1", {"a": 4, "ok": True}, 8),
        ("a * 2 if ok else -1", {"a": 4, "ok": False}, -1),
        ("abs(a)", {"a": -2.5}, 2.5),
        ("min(a, b, 3)", {"a": 5, "b": 4}, 3),
        ("max(a, b)", {"a": 5, "b": 4}, 5),
        ("round(a, 1)", {"a": 2.345}, 2.3),
        ("round(a)", {"a": 2.6}, 3),
        ("clamp(a, 0, 100)", {"a": 130}, 100),
        ("clamp(a, 0, 100)", {"a": -3}, 0),
        ("clamp(a, 0, 100)", {"a": 42}, 42),
    ],
)
def test_computes(text: str, values: dict[str, object], want: object) -> None:
    assert compile_expression(text, names=values.keys()).evaluate(values) == want


@pytest.mark.parametrize(
    ("text", "column", "construct"),
    [
        ("a.__class__", 1, "attribute access"),
        ("a[0]", 1, "subscripts"),
        ("1 + (lambda: 2)", 6, "lambda"),
        ("[x for x in a]", 1, "comprehensions"),
        ("(b := 1)", 2, "assignment"),
        ("f'{a}'", 1, "f-strings"),
        ("__import__('os')", 1, "unknown function '__import__'"),
        ("a.b()", 1, "only the listed functions"),
        ("a + zz", 5, "unknown name 'zz' (known: a)"),
        ("abs(a, key=1)", 1, "keyword arguments"),
        ("clamp(a, 1)", 1, "clamp() takes 3..3 arguments"),
        ("avg(a)", 1, 'as in avg(x, "5m")'),
        ("avg(a, a)", 8, "duration string"),
        ("avg(a, '5 parsecs')", 8, "not a duration"),
        ("a << 2", 1, "LShift"),
        ("a in 'xyz'", 1, "In is not allowed"),
        ("None", 1, "the constant None"),
        ("abs + 1", 1, "used without calling it"),
        ("a + * 2", 5, "syntax"),
        ("-" * 40 + "a", 34, "nested deeper than 32"),
    ],
)
def test_refuses_naming_the_column_and_construct(text: str, column: int, construct: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(text, names=["a"])
    assert caught.value.column == column, str(caught.value)
    assert construct in caught.value.construct
    assert repr(text)[:20] in str(caught.value)


def test_refuses_huge_expressions() -> None:
    with pytest.raises(ExpressionError, match="syntax nodes"):
        compile_expression(" + ".join(["a"] * 200), names=["a"])
    with pytest.raises(ExpressionError, match="longer than 2000"):
        compile_expression("a" * 2001)


@pytest.mark.parametrize(
    ("text", "values", "reason"),
    [
        ("a / b", {"a": 1, "b": 0}, "ZeroDivisionError"),
        ("a * b", {"a": "x", "b": 10**9}, "* needs numbers"),
        ("a % b", {"a": "%s", "b": 1}, "% needs numbers"),
        ("a ** b", {"a": 10, "b": 10**6}, "exponent beyond 1024"),
        ("a ** b", {"a": 10.0, "b": 400}, "OverflowError"),
        ("a + b", {"a": 1, "b": "x"}, "TypeError"),
        ("a + b", {"a": 1}, "no value for 'b'"),
    ],
)
def test_run_time_failures_name_the_expression(text: str, values: dict[str, object], reason: str) -> None:
    expression = compile_expression(text)
    with pytest.raises(EvaluationError) as caught:
        expression.evaluate(values)
    assert reason in str(caught.value)
    assert caught.value.expression == text


def test_names_lists_what_the_expression_reads() -> None:
    assert compile_expression("a + max(b, 1) if c else 0").names == {"a", "b", "c"}


def _series(text: str, samples: list[tuple[int, object]]) -> list[object]:
    expression = compile_expression(text, names=["x"])
    state = expression.new_state()
    return [expression.evaluate({"x": x}, now_ms=t, state=state) for t, x in samples]


def test_delta() -> None:
    assert _series("delta(x)", [(0, 5), (1, 7), (2, 7), (3, 4)]) == [0, 2, 0, -3]


def test_rate_per_minute_over_the_window_restarting_after_a_reset() -> None:
    got = _series('rate(x, "1m")', [(0, 0), (30_000, 10), (60_000, 20), (120_000, 60), (150_000, 2), (180_000, 12)])
    assert got == [0.0, 20.0, 20.0, 40.0, 0.0, 20.0]


def test_windowed_average_minimum_maximum() -> None:
    samples: list[tuple[int, object]] = [(0, 4), (1000, 8), (2000, 6), (3500, 1), (6000, 3)]
    assert _series('avg(x, "3s")', samples) == [4, 6, 6, 5, 2]
    assert _series('maximum(x, "3s")', samples) == [4, 8, 8, 8, 3]
    assert _series('minimum(x, "3s")', samples) == [4, 4, 4, 1, 1]


def test_since_change_counts_seconds() -> None:
    assert _series("since_change(x)", [(0, 1), (2000, 1), (2500, 2), (4000, 2)]) == [0.0, 2.0, 0.0, 1.5]


def test_count_rising_counts_edges_not_the_starting_level() -> None:
    got = _series("count_rising(x)", [(0, True), (1, False), (2, True), (3, True), (4, 0), (5, 1)])
    assert got == [0, 0, 1, 1, 1, 2]


def test_hysteresis_switches_at_the_bounds_only() -> None:
    got = _series("hysteresis(x, 10, 20)", [(0, 15), (1, 20), (2, 15), (3, 10), (4, 15)])
    assert got == [False, True, True, False, False]


def test_each_state_is_its_own() -> None:
    expression = compile_expression("delta(x) + delta(x * 10)")
    one, two = expression.new_state(), expression.new_state()
    expression.evaluate({"x": 1}, state=one)
    assert expression.evaluate({"x": 3}, state=one) == 22
    assert expression.evaluate({"x": 3}, state=two) == 0


def test_a_stateful_call_in_an_untaken_branch_does_not_step() -> None:
    assert _series("delta(x) if x > 0 else -1", [(0, 1), (1, -5), (2, 4)]) == [0, -1, 3]


@pytest.mark.parametrize(("text", "ms"), [("500ms", 500), ("10s", 10_000), ("1m", 60_000), ("1.5h", 5_400_000)])
def test_durations(text: str, ms: int) -> None:
    assert duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "5", "5 minutes", "0s", "-1m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        duration_ms(text)

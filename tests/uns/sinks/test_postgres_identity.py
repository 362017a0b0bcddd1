"""The PostgreSQL sink's sample identity (``vkey``), computed by a real server: what it tells apart, what it keeps."""

from __future__ import annotations

import psycopg
import pytest

from uns.sinks.postgres_sql import VKEY_SQL

_Sample = tuple[float | None, str | None, str | None, str]


def _vkeys(dsn: str, samples: list[_Sample], *, digits: int = 1) -> list[int]:
    with psycopg.connect(dsn) as conn:
        conn.execute(f"SET extra_float_digits = {digits}")
        conn.execute("CREATE TEMP TABLE _uns_staging (value float8, value_text text, value_json text, quality text)")
        with conn.cursor() as cursor:
            cursor.executemany("INSERT INTO _uns_staging VALUES (%s, %s, %s, %s)", samples)
        rows = conn.execute(f"SELECT {VKEY_SQL} FROM _uns_staging").fetchall()  # noqa: S608  (our constant)
    return [int(str(key)) for (key,) in rows]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ((1.0, None, None, "good"), (1.0, None, None, "bad")),  # quality is part of the identity
        ((1.0, None, None, "good"), (2.0, None, None, "good")),
        ((0.1 + 0.2, None, None, "good"), (0.3, None, None, "good")),  # the last bit of a double counts
        ((None, "1", None, "good"), (None, None, "1", "good")),  # the text "1" is not the JSON 1
        ((1.0, "1", None, "good"), (1.0, None, None, "good")),  # an exact big integer keeps its digits
        ((None, None, None, "good"), (None, "", None, "good")),  # null is not the empty string
        ((0.0, None, None, "good"), (-0.0, None, None, "good")),
    ],
)
def test_vkey_tells_different_samples_apart(pg_dsn: str, a: _Sample, b: _Sample) -> None:
    first, second = _vkeys(pg_dsn, [a, b])
    assert first != second


def test_vkey_is_the_same_for_the_same_sample_whatever_the_session(pg_dsn: str) -> None:
    samples: list[_Sample] = [(i / 7, None, None, "good") for i in range(2000)]
    keys = _vkeys(pg_dsn, samples)
    assert len(set(keys)) == 2000
    assert _vkeys(pg_dsn, samples) == keys
    # the writer pins extra_float_digits: a session left at 0 would round 1/7 to 15 digits and miss re-deliveries
    assert _vkeys(pg_dsn, samples, digits=0) != keys

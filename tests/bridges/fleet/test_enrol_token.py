"""An enrolment token is a valid value of ``uns edge --enrol-token``: argparse must not take it for an option."""

from __future__ import annotations

from hub.cli import _parser
from uns.fleet.enrolment import _token


def test_no_token_starts_with_a_dash() -> None:
    tokens = [_token() for _ in range(2000)]  # a leading "-" came 1 time in 64 before
    assert not [token for token in tokens if token.startswith("-")]
    assert len(set(tokens)) == len(tokens)


def test_a_token_parses_as_the_value_of_enrol_token() -> None:
    token = _token()
    args = _parser().parse_args(["edge", "--id", "a1", "--enrol-token", token])
    assert args.enrol_token == token

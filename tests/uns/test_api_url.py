"""``ApiUrl``: an HTTP API's URL and the account that signs in to it, whose password no error ever shows."""

from __future__ import annotations

import argparse
import traceback
from pathlib import Path

import pytest

from model.config import Settings
from uns.api_url import ApiUrl, BadApiUrl
from uns.historian.query_cli import add_query_parser, run_query


@pytest.mark.parametrize(
    ("text", "base", "user", "password", "shown"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080", None, None, "http://127.0.0.1:8080"),
        ("http://web:s3cret@historian:8080", "http://historian:8080", "web", "s3cret", "http://web:***@historian:8080"),
        ("http://[::1]:9/", "http://[::1]:9", None, None, "http://[::1]:9"),
        ("https://u%40x:p%3Aw@h", "https://h", "u@x", "p:w", "https://u%40x:***@h"),
        ("http://u:p%2Fw@h:1/hub/", "http://h:1/hub", "u", "p/w", "http://u:***@h:1/hub"),  # behind a proxy's prefix
        ("http://u:p@w@h:1", "http://h:1", "u", "p@w", "http://u:***@h:1"),  # the last @ ends the account
    ],
)
def test_parse(text: str, base: str, user: str | None, password: str | None, shown: str) -> None:
    url = ApiUrl.parse(text)
    assert (url.base, url.user, url.password, url.redacted()) == (base, user, password, shown)


_ENCODE = "the account's user or password holds a / ? or #: percent-encode it (%2F %3F %23)"
_FORM = "expected http[s]://[user:password@]host:port"


@pytest.mark.parametrize(
    ("text", "shown", "reason"),
    [
        ("htp://u:s3cret@h:1", "htp://***@h:1", _FORM),
        ("http://u:s3c/ret@h:1", "http://***@h:1", _ENCODE),
        ("http://u:s3c?ret@h:1", "http://***@h:1", _ENCODE),
        ("http://u:s3c#ret@h:1", "http://***@h:1", _ENCODE),
        ("http://u:s3cret@h:port", "http://***@h:port", f"the port is not a number in 0..65535: {_FORM}"),
        ("http://u:s3cret@[::1", "http://***@[::1", f"Invalid IPv6 URL: {_FORM}"),
        ("http://", "http://", _FORM),
    ],
)
def test_a_bad_url_is_refused_without_its_password(text: str, shown: str, reason: str) -> None:
    with pytest.raises(BadApiUrl) as refused:
        ApiUrl.parse(text)
    assert (refused.value.shown, refused.value.reason) == (shown, reason)
    assert "s3c" not in "".join(traceback.format_exception(refused.value))  # nor a chained error's text


@pytest.mark.parametrize(
    ("api", "said"),
    [
        ("htp://u:s3cret@127.0.0.1:1", f"uns query last: --api 'htp://***@127.0.0.1:1': {_FORM}\n"),
        # urllib read 's3c' as the port: 'nonnumeric port' and a traceback before
        ("http://u:s3c/ret@127.0.0.1:1", f"uns query last: --api 'http://***@127.0.0.1:1': {_ENCODE}\n"),
    ],
)
def test_uns_query_never_shows_the_password_of_a_bad_api_url(
    api: str, said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="uns")
    add_query_parser(parser.add_subparsers(dest="command"))
    code = run_query(parser.parse_args(["query", "last", "a/b", "--api", api]), Settings(data_dir=tmp_path))
    assert (code, capsys.readouterr().err) == (1, said)

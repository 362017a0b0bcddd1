"""``parse_historian_url``: where `uns web` finds the historian and which account it signs in with."""

from __future__ import annotations

import pytest

from uns.errors import ConfigError
from uns.web.historian_proxy import parse_historian_url


@pytest.mark.parametrize(
    ("text", "base", "user", "password", "shown"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080", None, None, "http://127.0.0.1:8080"),
        ("http://web:s3cret@historian:8080", "http://historian:8080", "web", "s3cret", "http://web:***@historian:8080"),
        ("http://[::1]:9", "http://[::1]:9", None, None, "http://[::1]:9"),
        ("https://u%40x:p%3Aw@h", "https://h", "u@x", "p:w", "https://u%40x:***@h"),
    ],
)
def test_parse(text: str, base: str, user: str | None, password: str | None, shown: str) -> None:
    url = parse_historian_url(text)
    assert (url.base, url.user, url.password, url.redacted()) == (base, user, password, shown)


@pytest.mark.parametrize("text", ["ftp://h:1", "historian:8080", "http://"])
def test_a_bad_url_names_the_setting(text: str) -> None:
    with pytest.raises(ConfigError, match=r"web\.historian_url"):
        parse_historian_url(text)


def test_a_bad_url_is_shown_without_its_password() -> None:
    # an unencoded / ended the account early: the rest was read as the host 'web' and its port 's3c'
    with pytest.raises(ConfigError) as refused:
        parse_historian_url("http://web:s3c/ret@historian:8080")
    assert str(refused.value) == (
        "settings: web.historian_url: the account's user or password holds a / ? or #: percent-encode it"
        " (%2F %3F %23), of a running `uns historian` (got 'http://***@historian:8080')"
    )

"""``HistorianUrl``: where `uns web` finds the historian and which account it signs in with."""

from __future__ import annotations

import pytest

from uns.errors import ConfigError
from uns.web.historian_proxy import HistorianUrl


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
    url = HistorianUrl.parse(text)
    assert (url.base, url.user, url.password, url.redacted()) == (base, user, password, shown)


@pytest.mark.parametrize("text", ["ftp://h:1", "historian:8080", "http://"])
def test_a_bad_url_names_the_setting(text: str) -> None:
    with pytest.raises(ConfigError, match=r"web\.historian_url"):
        HistorianUrl.parse(text)

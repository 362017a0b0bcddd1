"""The one YAML-plus-validation loader: hub settings, plant files and broker.yaml read and report alike.

A file that cannot be read, is not YAML or is not a mapping is one ``ConfigError`` naming the file (and the
line and column of a syntax error); a mapping that fails its pydantic model is one ``ConfigError`` listing
**every** problem, one per line, each with its source, dotted path, reason and the value as written
(passwords redacted)::

    hub.yaml: broker.mqtt_port: Input should be less than or equal to 65535 (got 70000)
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import TypeAdapter, ValidationError

from uns.errors import ConfigError

__all__ = [
    "Loc",
    "Problem",
    "config_error",
    "dotted",
    "parse_yaml",
    "read_list_section",
    "read_yaml",
    "redact",
    "validation_problems",
]

Loc = tuple[str | int, ...]
"""Where a value sits in a document: keys and list indexes."""

Problem = tuple[str, str, str, object]
"""One invalid value: source, dotted path, reason, value as written (redacted)."""

_SECRET_WORDS = ("password", "secret", "token")
_T = TypeVar("_T")


def read_yaml(path: Path, source: str, hint: str) -> dict[str, object]:
    """The YAML mapping in ``path``; ``hint`` says what to do when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source=source, path="", reason=f"no such file; {hint}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(source=source, path="", reason=f"not UTF-8 text at byte {exc.start}") from None
    except OSError as exc:
        raise ConfigError(source=source, path="", reason=f"cannot read: {exc.strerror or exc}") from None
    return parse_yaml(text, source)


def parse_yaml(text: str, source: str) -> dict[str, object]:
    """The YAML mapping in ``text`` (empty text is an empty mapping)."""
    try:
        data: object = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "cannot parse"
        raise ConfigError(source=source, path="", reason=f"YAML syntax error{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(source=source, path="", reason=f"YAML error: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            source=source, path="", reason=f"must be a YAML mapping of keys to values, not a {type(data).__name__}"
        )
    return {str(key): value for key, value in data.items()}


def dotted(loc: Loc) -> str:
    """``("broker", "listeners", 0, "port")`` -> ``broker.listeners[0].port``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validation_problems(
    exc: ValidationError, source_of: Callable[[Loc], str], data: Mapping[str, object]
) -> list[Problem]:
    """Every problem pydantic found, with the value as the user wrote it (passwords redacted)."""
    out: list[Problem] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        reason = error["msg"].removeprefix("Value error, ")
        value = None if error["type"] == "missing" else redact(loc, _given(data, loc, error.get("input")))
        out.append((source_of(loc), dotted(loc), reason, value))
    return out


def config_error(problems: list[Problem]) -> ConfigError:
    """One ``ConfigError``: the problem itself when there is one, else every problem on its own line."""
    if len(problems) == 1:
        source, path, reason, value = problems[0]
        return ConfigError(source=source, path=path, reason=reason, value=value)
    lines = [str(ConfigError(source=s, path=p, reason=r, value=v)) for s, p, r, v in problems]
    sources = {source for source, _, _, _ in problems}
    source = sources.pop() if len(sources) == 1 else "configuration"
    return ConfigError(source=source, path="", reason=f"{len(problems)} problems:\n" + "\n".join(lines))


def _given(data: object, loc: Loc, fallback: object) -> object:
    """The value as the user wrote it (pydantic reports it after any normalising validator)."""
    for key in loc:
        found = isinstance(data, Mapping) and key in data
        found = found or (isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data))
        if not found:
            return fallback
        data = data[key]  # type: ignore[index]
    return data


def redact(loc: Loc, value: object) -> object:
    """Keep passwords out of error messages: secret-named keys and the password part of urls."""
    if loc and any(word in str(loc[-1]) for word in _SECRET_WORDS):
        return "***"
    if isinstance(value, str) and "@" in value:
        try:
            parts = urllib.parse.urlsplit(value)
            password = parts.password
        except ValueError:
            return "***"  # unparseable, and may hold a password
        if password:
            netloc = parts.netloc.replace(f":{password}@", ":***@", 1)
            return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return value


def read_list_section(
    path: Path, key: str, items: TypeAdapter[list[_T]], hint: str, *, missing: Sequence[_T] = ()
) -> list[_T]:
    """One list section (``transforms:``, ``rules:``) of a settings file, alone: what a hot reload reads.

    ``missing`` is the section of a file without the key; an explicit ``key: []`` is an empty list.

    Raises:
        ConfigError: the file cannot be read, or names each invalid field (``rules[2].trigger.above``).
    """
    source = str(path)
    data = read_yaml(path, source, hint)
    if key not in data:
        return list(missing)
    raw = data[key]
    try:
        return items.validate_python(raw)
    except ValidationError as exc:
        problems = validation_problems(exc, lambda _loc: source, {key: raw})
        named = [(s, f"{key}{p}" if p.startswith("[") else f"{key}.{p}", r, v) for s, p, r, v in problems]
        raise config_error(named) from None

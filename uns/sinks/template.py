"""Pure core of the REST sink's requests: ``${name}`` placeholders filled from one message, no code run.

A template is JSON data (the route's ``body``), a URL or a header value. Each ``${a.b.0}`` names a
value of the message's context by dotted path (object keys and list indexes); nothing else is
evaluated. In the body, a string that is one placeholder takes the value with its JSON type, and a
longer string gets the value's text; the body is then serialised by orjson, so a value can never
break out of its JSON string. In a URL each value is percent-encoded; in a header a value holding a
line break is refused. ``$$`` is a literal ``$``. A name the message lacks refuses it
(``TemplateError`` naming the placeholder) unless it ends in ``?`` (then null, or empty text).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Mapping

import orjson

__all__ = ["TemplateError", "fill_text", "fill_url", "render_body", "render_value"]

_PLACEHOLDER = re.compile(r"\$\$|\$\{([A-Za-z0-9_.-]+)(\?)?\}")
_MISSING = object()


class TemplateError(Exception):
    """A placeholder the message cannot fill; ``placeholder`` is its name."""

    def __init__(self, placeholder: str, reason: str) -> None:
        self.placeholder = placeholder
        super().__init__(f"${{{placeholder}}}: {reason}")


def _lookup(context: Mapping[str, object], name: str) -> object:
    value: object = context
    for part in name.split("."):
        if isinstance(value, Mapping):
            value = value.get(part, _MISSING)
        elif isinstance(value, list) and part.isdigit():
            index = int(part)
            value = value[index] if index < len(value) else _MISSING
        else:
            value = _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def _value(context: Mapping[str, object], name: str, optional: bool) -> object:
    value = _lookup(context, name)
    if value is _MISSING:
        if optional:
            return None
        raise TemplateError(name, "not in the message (end the name with ? to allow that)")
    return value


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return orjson.dumps(value).decode()
    return orjson.dumps(value).decode()  # an object or list inside a longer string: its JSON


def _fill(template: str, context: Mapping[str, object], encode: Callable[[str], str]) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return encode(_text(_value(context, match.group(1), match.group(2) == "?")))

    return _PLACEHOLDER.sub(one, template)


def fill_text(template: str, context: Mapping[str, object]) -> str:
    """A header value or idempotency key; refuses a value with a line break (header injection)."""
    text = _fill(template, context, lambda value: value)
    if "\r" in text or "\n" in text:
        raise TemplateError(template, "the filled header value holds a line break")
    return text


def fill_url(template: str, context: Mapping[str, object]) -> str:
    """A URL with each placeholder's value percent-encoded (a value never adds a path level or a query)."""
    return _fill(template, context, lambda value: urllib.parse.quote(value, safe=""))


def _render(template: object, context: Mapping[str, object]) -> object:
    if isinstance(template, str):
        whole = _PLACEHOLDER.fullmatch(template)
        if whole is not None and whole.group(0) != "$$":
            return _value(context, whole.group(1), whole.group(2) == "?")
        return _fill(template, context, lambda value: value)
    if isinstance(template, dict):
        return {key: _render(value, context) for key, value in template.items()}
    if isinstance(template, list):
        return [_render(value, context) for value in template]
    return template


def render_value(template: object, context: Mapping[str, object]) -> object:
    """``template`` (JSON data) filled from ``context``: a column's value of the SQL insert sink."""
    return _render(template, context)


def render_body(template: object, context: Mapping[str, object]) -> bytes:
    """The JSON body: ``template`` filled from ``context``, or the message's own body when it is None."""
    if template is None:
        return orjson.dumps(context.get("body"))
    return orjson.dumps(_render(template, context))

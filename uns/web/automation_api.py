"""The live editor's API: computed tags and rules listed with their live state; edit, enable, test and replay.

Reading (``GET /api/automation``) is for every signed-in role; everything else is a ``write`` of the
route policy (``uns/web/roles.py``): host and admin, as ``POST /api/rules/reload``. A change is one item
of the settings file's ``transforms:`` or ``rules:``: checked alone and then as the whole section,
exactly as a reload checks it, written into the file (``uns.web.automation_file``: the other lines
stay as written) and hot-reloaded through the parts' own ``reload_file``: the file stays the one
source of what runs. A refused change leaves the file and the running version alone and names
every problem with its field and line. Tests and replays run the engines themselves (docs/rules.md#the-editor).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Literal

import orjson
from pydantic import TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from model.equipment import Plant
from model.rules import Rule
from model.transforms import ComputedTag
from uns.clock import epoch_ms, now_ms, utc_now
from uns.config_file import parse_yaml, validation_problems
from uns.errors import ConfigError, StoreError
from uns.files import replace_file
from uns.historian.event_log import MesEventLog
from uns.historian.queries import History
from uns.rules.check import RulesRefused, check_rules
from uns.rules.replay import replay_rule, try_rule
from uns.rules.service import RuleService
from uns.rules.triggers import subscriptions
from uns.transforms.config import with_builtin
from uns.transforms.plan import TagPlan, plan_tags
from uns.transforms.replay import replay_tag, try_tag
from uns.transforms.service import ComputedTags
from uns.web.auth import identity_of
from uns.web.automation_file import Section, dump_item, edit_section, item_line, read_section
from uns.web.automation_sources import current_messages, past_messages
from uns.web.cache import TopicCache
from uns.web.history_api import json_response, store_failed

__all__ = ["MAX_REPLAY_HOURS", "AutomationEditor", "Problem"]

log = logging.getLogger(__name__)

MAX_REPLAY_HOURS = 168.0
"""The longest replay: a week of history."""

Kind = Literal["transforms", "rules"]
Problem = dict[str, object]
"""One problem: ``field`` (dotted, within the item), ``line`` (in the item's YAML, or null) and ``message``."""

_KINDS: tuple[Kind, ...] = ("transforms", "rules")
_TAG = TypeAdapter(ComputedTag)
_RULE = TypeAdapter(Rule)
_TAGS = TypeAdapter(list[ComputedTag])
_RULES = TypeAdapter(list[Rule])
_INDEX = re.compile(r"\[(\d+)\]")
_SOURCE = "editor"


class _Refused(Exception):
    """A change refused: the HTTP status, a summary and every problem."""

    def __init__(self, status: int, error: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.problems = list(problems)

    def response(self) -> Response:
        return json_response({"error": self.error, "problems": self.problems}, self.status)


def _loc(field: str) -> list[str | int]:
    """``actions[0].path`` -> ``["actions", 0, "path"]``."""
    out: list[str | int] = []
    for part in field.split("."):
        name, *indexes = _INDEX.split(part)
        if name:
            out.append(name)
        out += [int(index) for index in indexes if index]
    return out


def _problem(field: str, message: str, text: str) -> Problem:
    return {"field": field, "line": item_line(text, _loc(field)) if field else None, "message": message}


def _label(item: ComputedTag | Rule | None) -> str:
    """How the section checks name an item: ``transforms[<name>]``, ``rules.<name>``."""
    if item is None:
        return "\0"  # names nothing
    return f"transforms[{item.name}]" if isinstance(item, ComputedTag) else f"rules.{item.name}"


def _problems_of(exc: ConfigError, label: str, text: str) -> list[Problem]:
    """The problems a check found: this item's (``label``) by field and line, the others' as they are named."""
    found = exc.problems if isinstance(exc, RulesRefused) else [exc]
    out: list[Problem] = []
    for problem in found:
        message = f"{problem.reason}" + (f" (got {problem.value!r})" if problem.value is not None else "")
        if not problem.path and "\n" in problem.reason:
            out += [{"field": "", "line": None, "message": line} for line in problem.reason.splitlines()[1:]]
        elif problem.path == label or problem.path.startswith(label + "."):
            out.append(_problem(problem.path[len(label) + 1 :], message, text))
        else:
            out.append({"field": problem.path, "line": None, "message": str(problem)})
    return out


class AutomationEditor:
    """The editor's routes over the running parts.

    Args:
        plant: the plant file (tags and rules are checked against it).
        cache: the web's topic cache: current values and the tags' live outputs.
        tags: the running computed tags, once entered (``uns up`` starts them after the web server).
        rules: the running rules (None: they do not run here).
        history: the historian's queries (samples) for replays; None: no replay.
        events: the historian's MES event log for replays; None: no replay.
        settings_file: the ``--config`` file changes are written to (None: read-only).
    """

    def __init__(
        self,
        *,
        plant: Plant,
        cache: TopicCache,
        tags: Callable[[], ComputedTags | None],
        rules: RuleService | None,
        history: History | None,
        events: MesEventLog | None,
        settings_file: Path | None,
    ) -> None:
        self._plant = plant
        self._cache = cache
        self._tags = tags
        self._rules = rules
        self._history = history
        self._events = events
        self._file = settings_file
        sites = plant.enterprise.sites
        self._timezone = sites[0].timezone if sites else "UTC"
        self._lock = asyncio.Lock()

    def routes(self) -> list[Route]:
        """``GET /api/automation`` and ``POST /api/automation/{save,enable,delete,test,replay}``."""
        return [
            Route("/api/automation", self._listed, methods=["GET"], name="automation"),
            Route("/api/automation/save", self._save, methods=["POST"], name="automation-save"),
            Route("/api/automation/enable", self._enable, methods=["POST"], name="automation-enable"),
            Route("/api/automation/delete", self._delete, methods=["POST"], name="automation-delete"),
            Route("/api/automation/test", self._test, methods=["POST"], name="automation-test"),
            Route("/api/automation/replay", self._replay, methods=["POST"], name="automation-replay"),
        ]

    # -- listing ------------------------------------------------------------------------------------

    def _section(self, kind: Kind) -> Section:
        if self._file is None:
            return Section(present=False, items=())
        try:
            return read_section(self._file.read_text(encoding="utf-8"), kind, str(self._file))
        except (ConfigError, OSError):
            return Section(present=False, items=())  # a broken file is named when a change is tried

    async def _listed(self, request: Request) -> Response:
        texts = {kind: self._texts(kind) for kind in _KINDS}
        service = self._tags()
        tags: list[dict[str, object]] = []
        if service is not None:
            computed = service.health().get("computed")
            status = computed if isinstance(computed, dict) else {}
            for tag in service.tags:
                info = self._cache.info(tag.topic)
                tags.append(
                    {
                        "key": tag.topic, "name": tag.name, "path": tag.path, "topic": tag.topic,
                        "enabled": tag.enabled, "expression": tag.expression, "unit": tag.unit,
                        "description": tag.description, "in_file": tag.topic in texts["transforms"],
                        "yaml": texts["transforms"].get(tag.topic) or dump_item(_dumped(tag)),
                        "value": info.value if info else None, "quality": info.quality if info else None,
                        "timestamp_ms": info.timestamp_ms if info else None, "status": status.get(tag.topic),
                    }
                )  # fmt: skip
        rules: list[dict[str, object]] = []
        if self._rules is not None:
            stats = self._rules.engine.stats()
            for rule in self._rules.engine.rules:
                rules.append(
                    {
                        "key": rule.name, "name": rule.name, "enabled": rule.enabled,
                        "trigger": rule.trigger.kind, "actions": [action.kind for action in rule.actions],
                        "in_file": rule.name in texts["rules"],
                        "yaml": texts["rules"].get(rule.name) or dump_item(_dumped(rule)),
                        "stats": stats[rule.name].to_json(),
                    }
                )  # fmt: skip
        body: dict[str, object] = {
            "file": str(self._file) if self._file else None,
            "editable": self._file is not None,
            "note": None if self._file else "the hub was started without --config: nothing to write changes to",
            "replay": self._history is not None,
            "transforms": tags,
            "rules": rules,
            "rules_running": self._rules is not None,
            "health": {
                "transforms": _reload_health(service.health() if service else {}),
                "rules": _reload_health(self._rules.health() if self._rules else {}),
            },
        }
        return json_response(body)

    def _texts(self, kind: Kind) -> dict[str, str]:
        """Each item of the file's section by key, as written."""
        out = {}
        for item in self._section(kind).items:
            key = _key_of(kind, item.value)
            if key is not None:
                out[key] = item.text
        return out

    # -- changes ------------------------------------------------------------------------------------

    async def _save(self, request: Request) -> Response:
        try:
            body = await _body(request)
            kind = _kind(body)
            key = body.get("key")
            if key is not None and not isinstance(key, str):
                raise _Refused(400, "key: a string (the item to replace) or null (a new one)")
            text = _text(body)
            item = self._parse(kind, text)
            diff = await self._change(request, kind, key, item, text)
        except _Refused as refused:
            return refused.response()
        return json_response({"applied": True, "key": _key(item), "changes": diff})

    async def _enable(self, request: Request) -> Response:
        try:
            body = await _body(request)
            kind = _kind(body)
            key = body.get("key")
            enabled = body.get("enabled")
            if not isinstance(key, str) or not isinstance(enabled, bool):
                raise _Refused(400, "key (a string) and enabled (true or false) are required")
            current = self._running(kind, key)
            if current is None:
                raise _Refused(404, f"{kind}: no item {key!r}")
            item = current.model_copy(update={"enabled": enabled})
            text = self._texts(kind).get(key)
            new_text = dump_item(_dumped(item))
            if text is not None:  # the file's own lines, comments kept, unless that would not read back
                try:
                    if self._parse(kind, _set_enabled(text, enabled)) == item:
                        new_text = _set_enabled(text, enabled)
                except _Refused:
                    pass
            diff = await self._change(request, kind, key, item, new_text)
        except _Refused as refused:
            return refused.response()
        return json_response({"applied": True, "key": key, "enabled": enabled, "changes": diff})

    async def _delete(self, request: Request) -> Response:
        try:
            body = await _body(request)
            kind = _kind(body)
            key = body.get("key")
            if not isinstance(key, str):
                raise _Refused(400, "key: required (a string)")
            diff = await self._change(request, kind, key, None, "")
        except _Refused as refused:
            return refused.response()
        return json_response({"applied": True, "key": key, "changes": diff})

    def _running(self, kind: Kind, key: str) -> ComputedTag | Rule | None:
        if kind == "transforms":
            service = self._tags()
            return next((tag for tag in service.tags if tag.topic == key), None) if service else None
        if self._rules is None:
            return None
        return next((rule for rule in self._rules.engine.rules if rule.name == key), None)

    def _parse(self, kind: Kind, text: str) -> ComputedTag | Rule:
        """The item from its YAML text, checked alone (fields, then against the plant)."""
        try:
            data = parse_yaml(text, _SOURCE)
        except ConfigError as exc:
            raise _Refused(422, "refused", [{"field": "", "line": None, "message": exc.reason}]) from None
        try:
            item: ComputedTag | Rule = (_TAG if kind == "transforms" else _RULE).validate_python(data)
        except ValidationError as exc:
            found = validation_problems(exc, lambda _loc: _SOURCE, data)
            problems = [_problem(path, reason, text) for _, path, reason, _ in found]
            raise _Refused(422, "refused", problems) from None
        try:
            if isinstance(item, ComputedTag):
                _plan(item, self._plant)  # a disabled tag is checked as well
            else:
                check_rules([item], self._plant)
        except ConfigError as exc:
            raise _Refused(422, "refused", _problems_of(exc, _label(item), text)) from None
        return item

    async def _change(
        self, request: Request, kind: Kind, key: str | None, item: ComputedTag | Rule | None, text: str
    ) -> list[str]:
        """Write the change into the file once the whole section passes, then reload; answers what changed."""
        path = self._file
        if path is None:
            raise _Refused(409, "the hub was started without --config: there is no settings file to write to")
        if kind == "rules" and self._rules is None:
            raise _Refused(503, "the rules do not run in this process")
        service = self._tags()
        if kind == "transforms" and service is None:
            raise _Refused(503, "the computed tags do not run yet")
        async with self._lock:
            try:
                original = path.read_text(encoding="utf-8")
                section = read_section(original, kind, str(path))
            except OSError as exc:
                raise _Refused(409, f"{path}: cannot read: {exc.strerror or exc}") from None
            except ConfigError as exc:
                raise _Refused(409, str(exc)) from None
            values = [item_.value for item_ in section.items]
            if not section.present and kind == "rules" and self._rules is not None:
                # the running rules are the demo's: the file takes them over, so the others keep running
                values = [_dumped(rule) for rule in self._rules.engine.rules]
            keys = [_key_of(kind, value) for value in values]
            new_key = _key(item) if item is not None else None
            index = keys.index(key) if key is not None and key in keys else None
            if key is None and new_key is not None and self._running(kind, new_key) is not None:
                raise _Refused(409, f"{kind}: {new_key!r} exists already: edit it", [])
            if new_key is not None and new_key != key and new_key in keys:
                raise _Refused(409, f"{kind}: {new_key!r} exists already in the file", [])
            if item is None and index is None:
                raise _Refused(404, f"{kind}: no item {key!r} in {path.name}" + _builtin_note(kind))
            if item is not None:
                value: object = parse_yaml(text, _SOURCE)
                if index is None:
                    values = [*values, value]
                else:
                    values[index] = value
            elif index is not None:
                del values[index]
            self._check_section(kind, values, item, text)
            if section.present:
                written = edit_section(
                    original, kind, index=index, item=text if item else None, expected=values, source=str(path)
                )
            else:
                written = edit_section(original, kind, index=None, item=None, expected=values, source=str(path))
            _replace(path, written)
            try:
                diff = await self._reload(kind, path)
            except _Refused:
                _replace(path, original)  # checked alike, so rare: the file goes back to what runs
                raise
        identity = identity_of(request)
        who = identity.user if identity is not None and identity.user else "anonymous"
        log.info("automation: %s changed %s %s in %s: %s", who, kind, new_key or key, path, ", ".join(diff))
        return diff

    def _check_section(self, kind: Kind, values: list[object], item: ComputedTag | Rule | None, text: str) -> None:
        """The section as the reload will read it, refused with every problem the checks name."""
        try:
            if kind == "transforms":
                service = self._tags()
                builtin = service.builtin if service is not None else []
                plan_tags(with_builtin(_TAGS.validate_python(values), builtin), plant=self._plant, source=_SOURCE)
            else:
                check_rules(_RULES.validate_python(values), self._plant)
        except ValidationError as exc:  # another item of the file is broken
            problems: list[Problem] = [
                {"field": f"{kind}{path}", "line": None, "message": reason}
                for _, path, reason, _ in validation_problems(exc, lambda _loc: _SOURCE, {})
            ]
            raise _Refused(422, "refused: the settings file's section has problems", problems) from None
        except ConfigError as exc:
            raise _Refused(422, "refused", _problems_of(exc, _label(item), text)) from None

    async def _reload(self, kind: Kind, path: Path) -> list[str]:
        if kind == "rules" and self._rules is not None:
            try:
                return (await self._rules.reload_file(path)).lines()
            except ConfigError as exc:
                problem: Problem = {"field": "", "line": None, "message": str(exc)}
                raise _Refused(422, "the reload refused it; the running rules stay", [problem]) from None
        service = self._tags()
        diff = await service.reload_file(path) if service is not None else None
        if diff is None:
            error = service.health().get("last_reload_error") if service is not None else None
            message: Problem = {"field": "", "line": None, "message": str(error)}
            raise _Refused(422, "the reload refused it; the running tags stay", [message])
        return diff.lines()

    # -- test and replay ------------------------------------------------------------------------------

    async def _test(self, request: Request) -> Response:
        try:
            body = await _body(request)
            kind = _kind(body)
            item = self._parse(kind, _text(body))
        except _Refused as refused:
            return refused.response()
        now = now_ms()
        if isinstance(item, ComputedTag):
            plan = _plan(item, self._plant)
            current = dict(current_messages(self._cache, [i.topic for i in plan.inputs]))
            return json_response({"kind": kind, "at_ms": now, **try_tag(plan, current, now_ms=now).to_json()})
        current_list = current_messages(self._cache, subscriptions(item.trigger))
        result = try_rule(_enabled(item), current_list, now_ms=now, timezone=self._timezone)
        return json_response({"kind": kind, "at_ms": now, "topics": len(current_list), **result.to_json()})

    async def _replay(self, request: Request) -> Response:
        try:
            body = await _body(request)
            kind = _kind(body)
            hours = body.get("hours", 8)
            if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 < hours <= MAX_REPLAY_HOURS:
                raise _Refused(400, f"hours: a number above 0, at most {MAX_REPLAY_HOURS:g} (got {hours!r})")
            item = self._parse(kind, _text(body))
            if self._history is None or self._events is None:
                raise _Refused(503, "the historian does not run in this process: nothing to replay")
        except _Refused as refused:
            return refused.response()
        history, events = self._history, self._events
        end = utc_now()
        start = end - timedelta(hours=float(hours))
        start_ms, end_ms = epoch_ms(start), epoch_ms(end)
        try:
            if isinstance(item, ComputedTag):
                plan = _plan(item, self._plant)
                filters = [i.topic for i in plan.inputs]
                messages, cut = await asyncio.to_thread(past_messages, history, events, filters, start, end)
                result = replay_tag(plan, messages, end_ms=end_ms).to_json()
            else:
                filters = subscriptions(item.trigger)
                messages, cut = await asyncio.to_thread(past_messages, history, events, filters, start, end)
                replayed = replay_rule(
                    _enabled(item), messages, start_ms=start_ms, end_ms=end_ms, timezone=self._timezone
                )
                result = replayed.to_json()
        except StoreError as exc:  # the file failed: as every history endpoint answers it
            return store_failed("automation replay", exc)
        return json_response({"kind": kind, "start_ms": start_ms, "end_ms": end_ms, "cut": cut, **result})


def _dumped(item: ComputedTag | Rule) -> dict[str, object]:
    """The item as its YAML would say it: defaults left out, ``alias: topic`` for an input with nothing else."""
    out: dict[str, object] = item.model_dump(mode="json", exclude_defaults=True)
    inputs = out.get("inputs")
    if isinstance(inputs, dict):
        out["inputs"] = {k: v["topic"] if isinstance(v, dict) and set(v) == {"topic"} else v for k, v in inputs.items()}
    return out


def _key(item: ComputedTag | Rule) -> str:
    return item.topic if isinstance(item, ComputedTag) else item.name


def _key_of(kind: Kind, value: object) -> str | None:
    """An item's key (a tag's output topic, a rule's name) from the file's raw value, or None when it has none."""
    if not isinstance(value, dict):
        return None
    if kind == "rules":
        name = value.get("name")
        return name if isinstance(name, str) else None
    path, name = value.get("path"), value.get("name")
    return f"{path}/data/{name}" if isinstance(path, str) and isinstance(name, str) else None


def _builtin_note(kind: Kind) -> str:
    return "; a built-in (demo) tag cannot be deleted, only disabled" if kind == "transforms" else ""


def _enabled(rule: Rule) -> Rule:
    return rule if rule.enabled else rule.model_copy(update={"enabled": True})  # a test runs a disabled one too


def _plan(tag: ComputedTag, plant: Plant) -> TagPlan:
    tag = tag if tag.enabled else tag.model_copy(update={"enabled": True})
    return plan_tags([tag], plant=plant, source=_SOURCE)[0]


def _set_enabled(text: str, enabled: bool) -> str:
    """The item's text with its top-level ``enabled:`` set (added when missing), its other lines as written."""
    word = "true" if enabled else "false"
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if re.match(r"enabled\s*:", line):
            comment = line[line.index("#") :] if "#" in line else ""
            lines[index] = f"enabled: {word}" + (f"  {comment}" if comment else "")
            return "\n".join(lines) + "\n"
    return text.rstrip("\n") + f"\nenabled: {word}\n"


def _reload_health(health: dict[str, object]) -> dict[str, object]:
    return {k: health.get(k) for k in ("reloads", "reload_failures", "last_reload_error")}


async def _body(request: Request) -> dict[str, object]:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise _Refused(400, f"body: not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _Refused(400, "body: a JSON object is expected")
    return body


def _kind(body: dict[str, object]) -> Kind:
    kind = body.get("kind")
    if kind == "transforms" or kind == "rules":
        return kind
    raise _Refused(400, f"kind: transforms or rules (got {kind!r})")


def _text(body: dict[str, object]) -> str:
    text = body.get("yaml")
    if not isinstance(text, str) or not text.strip():
        raise _Refused(400, "yaml: the item's YAML (or JSON) text is required")
    return text


def _replace(path: Path, text: str) -> None:
    """Write the settings file atomically (a reader never sees half of it), keeping its permissions."""
    replace_file(path, text, mode=path.stat().st_mode & 0o777)

"""The actions a rule runs: publish, MES event, Sparkplug DCMD write, webhook and alarm (the async shell).

Templates are the REST sink's (``uns.sinks.template``): ``${value}``, ``${path}``, ``${body.order_id}``...
filled from the firing's context, never evaluated. Every action either does its work or raises
``ActionError`` naming the rule, the action's index and kind and what went wrong; the engine counts it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence

import httpx
import orjson

from model.rules import Action, AlarmAction, MesEventAction, PublishAction, WebhookAction, WriteAction
from uns.backoff import Backoff
from uns.broker.acl import AclPolicy, Principal
from uns.errors import BrokerError, UnsError
from uns.mqtt.types import PubSub
from uns.retry_after import retry_after_s
from uns.rules.alarms import Alarm, AlarmBook
from uns.rules.triggers import Firing
from uns.sinks.template import TemplateError, fill_text, fill_url, render_body, render_value
from uns.sparkplug.datatypes import DataType
from uns.sparkplug.payload import encode_payload
from uns.sparkplug.payload_types import Metric, Payload
from uns.sparkplug.topic import MessageType, SparkplugTopic

__all__ = ["ActionError", "ActionRunner", "Target", "Written"]

log = logging.getLogger(__name__)

Target = tuple[str, str, str | None]
"""A Sparkplug (group, node, device) bound to an equipment path."""

_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_RETRY_AFTER_CAP_S = 60.0


class ActionError(UnsError):
    """One action of one rule failed; ``field`` names the part at fault."""

    def __init__(self, *, rule: str, index: int, kind: str, field: str, reason: str) -> None:
        self.rule = rule
        self.index = index
        self.kind = kind
        self.field = field
        self.reason = reason
        super().__init__(f"rule {rule!r}: actions[{index}] ({kind}): {field}: {reason}")


@dataclasses.dataclass(frozen=True, slots=True)
class Written:
    """A DCMD the write action sent (or would have sent, ``dry_run``)."""

    topic: str
    metric: str
    value: object
    dry_run: bool


def _convert(value: object, datatype: str) -> object:
    if datatype == "Boolean":
        if isinstance(value, bool):
            return value
        if value in (0, 1, "true", "false"):
            return value in (1, "true")
        raise ValueError(f"{value!r} is not a Boolean")
    if datatype in ("Int32", "Int64"):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"{value!r} is not an integer")
        number = float(value)
        if not number.is_integer():
            raise ValueError(f"{value!r} is not an integer")
        limit = 2**31 if datatype == "Int32" else 2**63
        if not -limit <= number < limit:
            raise ValueError(f"{value!r} is out of the {datatype} range")
        return int(number)
    if datatype in ("Float", "Double"):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"{value!r} is not a number")
        return float(value)
    return value if isinstance(value, str) else orjson.dumps(value).decode()


class ActionRunner:
    """Runs actions for the engine; holds the MQTT client, the HTTP client, the alarm book and the limits.

    Args:
        client: publishes UNS messages, MES events, DCMDs and alarms.
        http: the webhooks' client.
        targets: an equipment path's bound Sparkplug (group, node, device), or None.
        acl: the broker's role rules, which decide whether a write's role may publish its cmd topic.
        alarms: the alarm book; each change is handed to ``on_alarm`` after it is published.
        on_alarm: called with every alarm change (the history).
        clock: monotonic seconds (the write rate limit).
        now_ms: the wall clock.
    """

    def __init__(
        self,
        *,
        client: PubSub,
        http: httpx.AsyncClient,
        targets: Callable[[str], Target | None],
        acl: AclPolicy,
        alarms: AlarmBook,
        on_alarm: Callable[[Alarm], None] = lambda alarm: None,
        clock: Callable[[], float] = time.monotonic,
        now_ms: Callable[[], int],
    ) -> None:
        self._client = client
        self._http = http
        self._targets = targets
        self._acl = acl
        self.alarms = alarms
        self._on_alarm = on_alarm
        self._clock = clock
        self._now_ms = now_ms
        self._last_write: dict[tuple[str, int], float] = {}
        self.written: list[Written] = []
        """The last DCMDs sent or dry-run (at most 100), newest last: the dry run's record."""
        self.rate_limited = 0

    async def run(self, rule: str, actions: Sequence[Action], firing: Firing) -> None:
        """Run each action in order for ``firing``; the first failure stops the rest (``ActionError``)."""
        context = firing.context(rule)
        for index, action in enumerate(actions):
            if firing.phase == "clear" and not isinstance(action, AlarmAction):
                continue
            try:
                await self._one(rule, index, action, firing, context)
            except TemplateError as exc:
                raise ActionError(rule=rule, index=index, kind=action.kind, field="template", reason=str(exc)) from exc
            except BrokerError as exc:
                raise ActionError(rule=rule, index=index, kind=action.kind, field="broker", reason=str(exc)) from exc

    async def _one(self, rule: str, index: int, action: Action, firing: Firing, context: Mapping[str, object]) -> None:
        if isinstance(action, PublishAction):
            payload = render_body(action.payload, {"body": context} if action.payload is None else context)
            await self._client.publish(_topic(action.topic, context), payload, qos=action.qos, retain=action.retain)
        elif isinstance(action, MesEventAction):
            filled = render_value(action.body, context)
            body = dict(filled) if isinstance(filled, dict) else {}  # the model's body is an object: filled, one too
            body.setdefault("timestamp_ms", self._now_ms())
            topic = f"{_topic(action.path, context)}/mes/{action.event}"
            await self._client.publish(topic, orjson.dumps(body), qos=1)
        elif isinstance(action, WriteAction):
            await self._write(rule, index, action, context)
        elif isinstance(action, WebhookAction):
            await self._webhook(rule, index, action, context)
        else:
            await self._alarm(rule, action, firing, context)

    async def _write(self, rule: str, index: int, action: WriteAction, context: Mapping[str, object]) -> None:
        def fail(field: str, reason: str) -> ActionError:
            return ActionError(rule=rule, index=index, kind="write", field=field, reason=reason)

        path = _topic(action.path, context)
        cmd_topic = f"{path}/cmd/{action.metric}"
        if not self._acl.decide(Principal(user=None, role=action.role), "publish", cmd_topic).allowed:
            raise fail("role", f"role {action.role} may not write {cmd_topic} (broker.yaml app_cmd_topics)")
        target = self._targets(path)
        if target is None:
            raise fail("path", f"no Sparkplug device is bound to {path!r} in the plant file")
        try:
            value = _convert(render_value(action.value, context), action.datatype)
        except ValueError as exc:
            raise fail("value", str(exc)) from None
        now = self._clock()
        key = (rule, index)
        last = self._last_write.get(key)
        if last is not None and now - last < action.min_interval_s:
            self.rate_limited += 1
            raise fail("min_interval_s", f"a write {now - last:.3f} s after the last one; dropped")
        self._last_write[key] = now
        group, node, device = target
        kind = MessageType.NCMD if device is None else MessageType.DCMD
        topic = str(SparkplugTopic(group_id=group, message_type=kind, edge_node_id=node, device_id=device))
        stamp = self._now_ms()
        metric = Metric(name=action.metric, timestamp=stamp, datatype=DataType[action.datatype], value=value)  # type: ignore[arg-type]
        self.written = [*self.written[-99:], Written(topic, action.metric, value, action.dry_run)]
        if action.dry_run:
            log.info("rule %s: dry run: would write %s=%r to %s", rule, action.metric, value, topic)
            return
        await self._client.publish(topic, encode_payload(Payload(timestamp=stamp, metrics=[metric])), qos=0)
        log.info("rule %s: wrote %s=%r to %s", rule, action.metric, value, topic)

    async def _webhook(self, rule: str, index: int, action: WebhookAction, context: Mapping[str, object]) -> None:
        url = fill_url(action.url, context)
        headers = {"content-type": "application/json"}
        headers.update({name: fill_text(value, context) for name, value in action.headers.items()})
        body = render_body(action.body, {"body": context} if action.body is None else context)
        backoff = Backoff(min_s=0.2, max_s=10.0)
        reason = ""
        for attempt in range(1, action.attempts + 1):
            wait: float | None = None
            try:
                response = await self._http.request(
                    action.method, url, content=body, headers=headers, timeout=action.timeout_s
                )
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 300:
                    return
                reason = f"HTTP {response.status_code}"
                if response.status_code not in _RETRY_STATUS:
                    break
                wait = retry_after_s(response.headers.get("retry-after"), cap_s=_RETRY_AFTER_CAP_S)
            if attempt < action.attempts:
                await asyncio.sleep(backoff.failed() if wait is None else wait)
        raise ActionError(rule=rule, index=index, kind="webhook", field="url", reason=f"{url}: {reason}")

    async def _alarm(self, rule: str, action: AlarmAction, firing: Firing, context: Mapping[str, object]) -> None:
        path = _topic(action.path, context)
        now = self._now_ms()
        if action.clear or firing.phase == "clear":
            alarm = self.alarms.clear(path=path, name=action.name, now_ms=now)
        else:
            message = fill_text(action.message, context)
            alarm = self.alarms.raise_alarm(
                path=path,
                name=action.name,
                rule=rule,
                priority=action.priority,
                message=message,
                value=firing.value,
                now_ms=now,
            )
        if alarm is not None:
            await self.publish_alarm(alarm)

    async def publish_alarm(self, alarm: Alarm) -> None:
        """Publish an alarm change retained (its last state, ``normal`` too: a late subscriber sees it ended)."""
        await self._client.publish(alarm.topic, orjson.dumps(alarm.to_json()), qos=1, retain=True)
        self._on_alarm(alarm)


def _topic(template: str, context: Mapping[str, object]) -> str:
    """A topic or path template: placeholders filled as text; a value with a wildcard or an empty level is refused."""
    topic = fill_text(template, context)
    if "+" in topic or "#" in topic or "" in topic.split("/"):
        raise TemplateError(template, f"the filled topic {topic!r} has a wildcard or an empty level")
    return topic

"""The alarms and rules over HTTP: list, acknowledge, history, rule counters and reload (docs/rules.md#http-api).

Who may call them is the auth middleware's job (``uns/web/roles.py``): reading for every signed-in
role, acknowledging for app and up (operators), reloading for host and admin.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from uns.errors import ConfigError, StoreError
from uns.rules.alarms import AlarmError
from uns.rules.check import RulesRefused
from uns.rules.history import AlarmHistory
from uns.rules.service import RuleService
from uns.web.auth import identity_of
from uns.web.history_api import json_response, store_failed

__all__ = ["RULES_OFF_HINT", "alarm_routes"]

log = logging.getLogger(__name__)

RULES_OFF_HINT = "the rules do not run in this process (no rules: in the settings file)"


def alarm_routes(
    service: RuleService | None, alarm_history: AlarmHistory | None, settings_file: Path | None
) -> list[Route]:
    """The alarm and rule endpoints.

    ``alarm_history``: the stored changes (None: the store does not run here); ``settings_file``: where
    ``POST /api/rules/reload`` reads ``rules:``.
    """

    async def listed(request: Request) -> Response:
        if service is None:
            return json_response({"alarms": [], "note": RULES_OFF_HINT})
        return json_response({"alarms": [alarm.to_json() for alarm in service.engine.alarms.listed()]})

    async def acknowledge(request: Request) -> Response:
        if service is None:
            return json_response({"error": RULES_OFF_HINT}, 503)
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            return json_response({"error": f"body: not JSON: {exc}", "field": "body"}, 400)
        if not isinstance(body, dict):
            return json_response({"error": "body: a JSON object is expected", "field": "body"}, 400)
        for field in ("path", "name"):
            if not isinstance(body.get(field), str) or not body[field]:
                return json_response({"error": f"{field}: required (a string)", "field": field}, 400)
        comment = body.get("comment")
        if comment is not None and not isinstance(comment, str):
            return json_response({"error": "comment: a string", "field": "comment"}, 400)
        identity = identity_of(request)
        user = "anonymous" if identity is None or identity.user is None else identity.user
        try:
            alarm = await service.engine.acknowledge(path=body["path"], name=body["name"], user=user, comment=comment)
        except AlarmError as exc:
            return json_response({"error": str(exc), "topic": exc.topic}, 404 if "no such" in exc.reason else 409)
        log.info("alarm %s acknowledged by %s", alarm.topic, user)
        return json_response(alarm.to_json())

    async def history(request: Request) -> Response:
        if alarm_history is None:
            return json_response({"error": "the historian does not run in this process"}, 503)
        path = request.query_params.get("path")
        try:
            limit = int(request.query_params.get("limit", "500"))
        except ValueError:
            return json_response({"error": "limit: an integer", "field": "limit"}, 400)
        try:
            rows = await asyncio.to_thread(alarm_history.read, path=path, limit=limit)
        except StoreError as exc:
            return store_failed("alarm history read", exc)
        return json_response({"rows": rows})

    async def rules(request: Request) -> Response:
        if service is None:
            return json_response({"rules": [], "note": RULES_OFF_HINT})
        stats = service.engine.stats()
        return json_response(
            {
                "rules": [
                    {**rule.model_dump(mode="json"), "stats": stats[rule.name].to_json()}
                    for rule in service.engine.rules
                ],
                **{k: v for k, v in service.health().items() if k not in ("rules", "per_rule")},
            }
        )

    async def reload(request: Request) -> Response:
        if service is None or settings_file is None:
            return json_response({"error": "no settings file to reload the rules from"}, 503)
        preview = request.query_params.get("dry_run") in ("1", "true")
        try:
            diff = service.preview_file(settings_file) if preview else await service.reload_file(settings_file)
        except RulesRefused as exc:
            return json_response(
                {"error": "refused; the running rules stay", "problems": [str(p) for p in exc.problems]}, 422
            )
        except ConfigError as exc:
            return json_response({"error": "refused; the running rules stay", "problems": str(exc).splitlines()}, 422)
        return json_response({"changes": diff.lines(), "applied": not preview})

    return [
        Route("/api/alarms", listed, methods=["GET"], name="alarms"),
        Route("/api/alarms/ack", acknowledge, methods=["POST"], name="alarms-ack"),
        Route("/api/alarms/history", history, methods=["GET"], name="alarms-history"),
        Route("/api/rules", rules, methods=["GET"], name="rules"),
        Route("/api/rules/reload", reload, methods=["POST"], name="rules-reload"),
    ]

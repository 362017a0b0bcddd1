"""The demo plant's rules: a fault alarm after 2 minutes, and a webhook per completed order (disabled).

``uns up`` runs them when the demo runs and the settings file names no ``rules:`` of its own.
"""

from __future__ import annotations

from pydantic import TypeAdapter

from model.config import Settings
from model.equipment import Plant
from model.rules import Rule

__all__ = ["ORDER_WEBHOOK_URL", "builtin_rules", "demo_rules"]

ORDER_WEBHOOK_URL = "http://127.0.0.1:8099/hooks/order-completed"
"""Where the disabled demo webhook would post: enable it in a settings file once a receiver listens there."""

_RULES = TypeAdapter(list[Rule])


def demo_rules(plant: Plant) -> list[Rule]:
    """The demo's rules over ``plant``'s enterprise."""
    enterprise = plant.enterprise.id
    return _RULES.validate_python(
        [
            {
                "name": "machine-faulted",
                "trigger": {
                    "kind": "mes",
                    "event": "downtime",
                    "path": f"{enterprise}/#",
                    "min_minutes": 2,
                    "states": [[180000, 229999]],  # technical stops (equipment failure ...), docs/mes.md
                },
                "actions": [
                    {
                        "kind": "alarm",
                        "path": "${path}",
                        "name": "faulted",
                        "priority": 800,
                        "message": "faulted for 2 minutes (state ${value}, reason ${body.reason_code?})",
                    }
                ],
            },
            {
                "name": "order-completed-webhook",
                "enabled": False,
                "trigger": {"kind": "mes", "event": "order_completed", "path": f"{enterprise}/#"},
                "actions": [
                    {
                        "kind": "webhook",
                        "url": ORDER_WEBHOOK_URL,
                        "body": {"order_id": "${value}", "line": "${path}", "completed_ms": "${body.timestamp_ms?}"},
                    }
                ],
            },
        ]
    )


def builtin_rules(settings: Settings, plant: Plant) -> list[Rule]:
    """The built-in rules of these settings' hub: the demo's with the demo, else none (uns up, a check, a reload)."""
    return demo_rules(plant) if settings.demo else []

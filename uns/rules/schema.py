"""The alarm history's table in the store's DuckDB file (written and read by ``uns.rules.history``), as its migrations.

``uns.store`` applies each once and records it in ``component_versions`` as ``("alarms", version)``; never
edit a released migration. ``legacy`` is the step's number in the one sequence files had before each
component was versioned on its own (docs/historian.md).
"""

from __future__ import annotations

from uns.store.migrations import Component, Migration

__all__ = ["SCHEMA"]

_ALARMS = Migration(
    version=1,
    legacy=7,
    description="alarm history: every change of every alarm the rules raise (docs/rules.md#alarms)",
    statements=(
        """CREATE TABLE alarm_history (
            ts              TIMESTAMPTZ NOT NULL,  -- when this change happened
            path            VARCHAR NOT NULL,      -- the alarm's equipment path
            name            VARCHAR NOT NULL,
            rule            VARCHAR NOT NULL,
            state           VARCHAR NOT NULL,      -- active, cleared (not yet acknowledged), normal
            acknowledged    BOOLEAN NOT NULL,
            priority        INTEGER NOT NULL,
            message         VARCHAR NOT NULL,
            value           JSON,
            raised          TIMESTAMPTZ NOT NULL,
            cleared         TIMESTAMPTZ,
            acked           TIMESTAMPTZ,
            acked_by        VARCHAR,
            ack_comment     VARCHAR
        )""",
        "CREATE INDEX alarm_history_path ON alarm_history (path, name, ts)",
    ),
)

SCHEMA = Component(name="alarms", migrations=(_ALARMS,))
"""The alarm history's migrations, oldest first."""

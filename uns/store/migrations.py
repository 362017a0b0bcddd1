"""Per-component migrations of the store's one DuckDB file: each component's tables, versioned on their own.

A component (the historian, the MES adapter, the alarm history) declares its ordered migrations in its own
package (``<package>/schema.py``: ``SCHEMA``); the store applies each once, in its own transaction, and
records it in ``component_versions`` as ``(component, version)``. Never edit a released migration: append one.

Files made before components were versioned on their own carry one sequence, 1 to ``LEGACY_LAST``, in
``schema_version``. Each migration that was a step of it names that step (``legacy``), so such a file is
read as the component versions it amounts to and migrates from there. ``schema_version`` now holds the
file's layout: ``LAYOUT_VERSION`` marks per-component versions, and an older uns-hub refuses the file as
newer than it knows instead of migrating it again.
"""

from __future__ import annotations

import dataclasses
import importlib

import duckdb

__all__ = [
    "INSTALLED",
    "LAYOUT_VERSION",
    "LEGACY_LAST",
    "Component",
    "Migration",
    "component_versions",
    "create_layout",
    "installed",
    "record",
    "schema_version",
    "version_of",
]

LEGACY_LAST = 7
"""The last version of the one sequence every file had before components were versioned on their own."""
LAYOUT_VERSION = 8
"""``schema_version``'s row for files whose components are versioned in ``component_versions``."""
INSTALLED = ("uns.historian.schema", "uns.mes.schema", "uns.rules.schema")
"""The modules whose ``SCHEMA`` has tables in the hub's file, in the order they are migrated (like an
installed-apps list: the store names them, it does not import them until a file is opened)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Migration:
    """One step of a component's tables: applied once, in order, never edited after release.

    ``legacy`` is the step's number in the single sequence of files made before per-component versions.
    """

    version: int
    description: str
    statements: tuple[str, ...]
    legacy: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Component:
    """A component's name in ``component_versions`` and its migrations, versions 1, 2, 3, ... with no gaps."""

    name: str
    migrations: tuple[Migration, ...]

    def __post_init__(self) -> None:
        versions = [m.version for m in self.migrations]
        if versions != list(range(1, len(versions) + 1)):
            raise ValueError(f"{self.name}: migration versions must be 1, 2, 3, ... (got {versions})")
        legacy = [m.legacy for m in self.migrations]
        given = [number for number in legacy if number is not None]
        if legacy[: len(given)] != given or given != sorted(given):
            raise ValueError(f"{self.name}: legacy steps must come first, in their old order (got {legacy})")

    @property
    def latest(self) -> int:
        """The version this uns-hub migrates the component to."""
        return self.migrations[-1].version if self.migrations else 0


def installed() -> tuple[Component, ...]:
    """The ``SCHEMA`` of every module in ``INSTALLED``."""
    found = []
    for name in INSTALLED:
        schema = getattr(importlib.import_module(name), "SCHEMA", None)
        if not isinstance(schema, Component):
            raise TypeError(f"{name}.SCHEMA is not a uns.store.migrations.Component")
        found.append(schema)
    return tuple(found)


def _exists(connection: duckdb.DuckDBPyConnection, table: str) -> bool:
    row = connection.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]).fetchone()
    return bool(row and row[0])


def schema_version(connection: duckdb.DuckDBPyConnection) -> int:
    """The file's layout: ``LAYOUT_VERSION``, a legacy version 1 to ``LEGACY_LAST``, or 0 for an empty file."""
    if not _exists(connection, "schema_version"):
        return 0
    row = connection.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def component_versions(connection: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Each recorded component's highest applied migration."""
    if not _exists(connection, "component_versions"):
        return {}
    rows = connection.execute("SELECT component, max(version) FROM component_versions GROUP BY component").fetchall()
    return {str(name): int(version) for name, version in rows}


def create_layout(connection: duckdb.DuckDBPyConnection) -> None:
    """Create the version tables (``schema_version`` kept when a legacy file has it) and mark the layout.

    Run inside the caller's transaction.
    """
    connection.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, description VARCHAR NOT NULL,"
        " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
    connection.execute(
        "CREATE TABLE component_versions (component VARCHAR NOT NULL, version INTEGER NOT NULL,"
        " description VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
        " PRIMARY KEY (component, version))"
    )
    connection.execute(
        "INSERT INTO schema_version (version, description) VALUES (?, ?)",
        [LAYOUT_VERSION, "per-component versions in component_versions"],
    )


def version_of(connection: duckdb.DuckDBPyConnection, component: Component, *, carry: bool = True) -> int:
    """The component's version in this file; on a legacy file, the versions that file's steps amount to.

    With ``carry`` the first look records those versions (inside the caller's transaction).
    """
    recorded = component_versions(connection).get(component.name)
    if recorded is not None:
        return recorded
    row = connection.execute(
        "SELECT coalesce(max(version), 0) FROM schema_version WHERE version <= ?", [LEGACY_LAST]
    ).fetchone()
    legacy = int(row[0]) if row else 0
    carried = [m for m in component.migrations if m.legacy is not None and m.legacy <= legacy]
    if carry:
        for migration in carried:
            record(connection, component, migration, note=f" (legacy version {migration.legacy})")
    return carried[-1].version if carried else 0


def record(
    connection: duckdb.DuckDBPyConnection, component: Component, migration: Migration, *, note: str = ""
) -> None:
    """Note ``migration`` of ``component`` as applied."""
    connection.execute(
        "INSERT INTO component_versions (component, version, description) VALUES (?, ?, ?)",
        [component.name, migration.version, migration.description + note],
    )

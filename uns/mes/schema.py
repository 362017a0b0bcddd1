"""The MES adapter's tables in the store's DuckDB file, as its own ordered list of migrations.

``uns.store`` applies each once, in its own transaction, and records it in ``component_versions`` as
``("mes", version)``. Never edit a released migration: append a new one. ``legacy`` is the step's number in
the one sequence files had before each component was versioned on its own (docs/historian.md).

One typed table per MES event (version 1). Each has ``event_key`` (the body's ``event_id`` hashed with its
topic, else the hash of topic and body; unique), ``path`` (the equipment path from the topic), ``line`` (its
first four levels), ``ts`` (the body's ``timestamp_ms``), ``source`` and ``received``. Intervals (states,
labels, labor) are built by views from the ordered events, so a late event re-labels history without
rewriting rows. Maintenance work orders (version 3) keep every version of an order in
``mes_maintenance_orders``; the views ``mes_maintenance`` (each order as its versions add up to; version 4: a
reopened order closes at its last close; version 5: not at a close time from before its last reopen; version 6:
the last reopen is the version right after a close, not a later update) and
``mes_maintenance_windows`` (planned downtime of planned orders) read them. docs/mes.md describes them.
"""

from __future__ import annotations

from uns.store.migrations import Component, Migration

__all__ = ["SCHEMA"]

_MES_COMMON = """
    event_key   UBIGINT NOT NULL,
    path        VARCHAR NOT NULL,
    line        VARCHAR NOT NULL,
    ts          TIMESTAMPTZ NOT NULL,
    source      VARCHAR,
    received    TIMESTAMPTZ NOT NULL"""

_MES = Migration(
    version=1,
    legacy=3,
    description="MES: typed event tables (orders, products, shifts, counts, states, reasons, quality, labor, lots)",
    statements=(
        f"""CREATE TABLE mes_work_orders ({_MES_COMMON},
            order_id        VARCHAR NOT NULL,
            action          VARCHAR NOT NULL,      -- release, start, complete
            product_id      VARCHAR,
            quantity        DOUBLE,
            unit            VARCHAR,
            planned_start   TIMESTAMPTZ,
            planned_end     TIMESTAMPTZ,
            bom             JSON                   -- [{{material_id, quantity_per_unit, unit}}]
        )""",
        f"""CREATE TABLE mes_products ({_MES_COMMON},
            product_id          VARCHAR NOT NULL,
            name                VARCHAR,
            ideal_cycle_time_s  DOUBLE NOT NULL,
            unit                VARCHAR
        )""",
        f"""CREATE TABLE mes_shifts ({_MES_COMMON},
            shift_id    VARCHAR NOT NULL,
            name        VARCHAR,
            start_ts    TIMESTAMPTZ NOT NULL,
            end_ts      TIMESTAMPTZ NOT NULL,
            breaks      JSON                        -- [{{start_ms, end_ms, name}}]
        )""",
        f"""CREATE TABLE mes_counts ({_MES_COMMON},
            total           BIGINT NOT NULL,
            scrap           BIGINT NOT NULL,
            good            BIGINT NOT NULL,
            order_id        VARCHAR,               -- as sent, else the line's running order when received
            period_start    TIMESTAMPTZ,
            cycle_time_s    DOUBLE
        )""",
        f"""CREATE TABLE mes_states ({_MES_COMMON},
            state           INTEGER NOT NULL,      -- state catalog code; runs until the cell's next state
            reason_code     VARCHAR
        )""",
        f"""CREATE TABLE mes_reasons ({_MES_COMMON},
            start_ts        TIMESTAMPTZ NOT NULL,  -- the labelled interval; the latest label wins
            end_ts          TIMESTAMPTZ NOT NULL,
            reason_code     VARCHAR NOT NULL,
            state           INTEGER,
            operator_id     VARCHAR,
            comment         VARCHAR
        )""",
        f"""CREATE TABLE mes_inspections ({_MES_COMMON},
            characteristic  VARCHAR NOT NULL,
            value           DOUBLE,
            lower_limit     DOUBLE,
            upper_limit     DOUBLE,
            target          DOUBLE,
            unit            VARCHAR,
            result          VARCHAR NOT NULL,      -- pass or fail
            defect_type     VARCHAR,
            severity        VARCHAR,
            order_id        VARCHAR,
            lot_id          VARCHAR,
            sample_id       VARCHAR
        )""",
        f"""CREATE TABLE mes_labor ({_MES_COMMON},
            operator_id     VARCHAR NOT NULL,
            action          VARCHAR NOT NULL,      -- on or off
            order_id        VARCHAR
        )""",
        f"""CREATE TABLE mes_consumption ({_MES_COMMON},
            material_id     VARCHAR NOT NULL,
            lot_id          VARCHAR NOT NULL,
            quantity        DOUBLE NOT NULL,
            unit            VARCHAR,
            order_id        VARCHAR
        )""",
        f"""CREATE TABLE mes_lots ({_MES_COMMON},
            lot_id          VARCHAR NOT NULL,
            product_id      VARCHAR,
            quantity        DOUBLE,
            unit            VARCHAR,
            order_id        VARCHAR
        )""",
        """CREATE TABLE mes_lot_inputs (
            event_key       UBIGINT NOT NULL,
            lot_id          VARCHAR NOT NULL,      -- the produced lot
            input_lot_id    VARCHAR NOT NULL,
            material_id     VARCHAR,
            quantity        DOUBLE
        )""",
        """CREATE TABLE mes_dead_letters (
            received        TIMESTAMPTZ NOT NULL,
            topic           VARCHAR NOT NULL,
            event           VARCHAR,
            field           VARCHAR NOT NULL,      -- e.g. scrap, order_id, body
            reason          VARCHAR NOT NULL,
            body            VARCHAR
        )""",
        """CREATE TABLE mes_counter_state (
            topic           VARCHAR PRIMARY KEY,   -- the raw counter a production count is derived from
            value           DOUBLE NOT NULL,
            ts              TIMESTAMPTZ NOT NULL
        )""",
        *(
            f"CREATE UNIQUE INDEX {table}_key ON {table} (event_key)"
            for table in (
                "mes_work_orders",
                "mes_products",
                "mes_shifts",
                "mes_counts",
                "mes_states",
                "mes_reasons",
                "mes_inspections",
                "mes_labor",
                "mes_consumption",
                "mes_lots",
            )
        ),
    ),
)

_ORDER_FILLED = ("mes_counts", "mes_labor", "mes_consumption", "mes_lots")
"""MES tables whose ``order_id`` is filled in from the order running at the event's time when it names none."""

_MES_ATTRIBUTION = Migration(
    version=2,
    legacy=5,
    description="MES: order_given (was the order named by the event, or filled in by its time); optional label reason",
    statements=(
        # rows stored before this version keep NULL: not known, so never re-attributed by a late work order
        *(f"ALTER TABLE {table} ADD COLUMN order_given BOOLEAN" for table in _ORDER_FILLED),
        # a label that only reclassifies the state needs no reason code; DuckDB alters no indexed table
        "DROP INDEX mes_reasons_key",
        "ALTER TABLE mes_reasons ALTER COLUMN reason_code DROP NOT NULL",
        "CREATE UNIQUE INDEX mes_reasons_key ON mes_reasons (event_key)",
    ),
)

_VERSION = "(ts, received, event_key)"
"""The order of an order's versions: its row's last change, then arrival."""

_MES_MAINTENANCE = Migration(
    version=3,
    legacy=6,
    description="MES: maintenance work orders (every version), their current state, and planned maintenance windows",
    statements=(
        f"""CREATE TABLE mes_maintenance_orders ({_MES_COMMON},
            maintenance_id  VARCHAR NOT NULL,      -- the CMMS's order number: one order, many versions
            status          VARCHAR NOT NULL,      -- opened, started, closed, cancelled
            planned         BOOLEAN,               -- NULL: as an earlier version said
            fault_code      VARCHAR,
            description     VARCHAR,
            technician      VARCHAR,
            priority        INTEGER,
            opened          TIMESTAMPTZ,
            started         TIMESTAMPTZ,
            closed          TIMESTAMPTZ,
            planned_start   TIMESTAMPTZ,
            planned_end     TIMESTAMPTZ
        )""",
        "CREATE UNIQUE INDEX mes_maintenance_orders_key ON mes_maintenance_orders (event_key)",
        # the newest version gives path and status; a field a version leaves out keeps an earlier value
        f"""CREATE VIEW mes_maintenance AS
            SELECT maintenance_id, path, line, status, planned, fault_code, description, technician, priority,
                   opened, started, CASE WHEN status = 'closed' THEN coalesce(closed, first_closed) END AS closed,
                   planned_start, planned_end, updated, versions
            FROM (
                SELECT maintenance_id,
                    arg_max(path, {_VERSION}) AS path,
                    arg_max(line, {_VERSION}) AS line,
                    arg_max(status, {_VERSION}) AS status,
                    coalesce(arg_max(planned, {_VERSION}) FILTER (WHERE planned IS NOT NULL), false) AS planned,
                    arg_max(fault_code, {_VERSION}) FILTER (WHERE fault_code IS NOT NULL) AS fault_code,
                    arg_max(description, {_VERSION}) FILTER (WHERE description IS NOT NULL) AS description,
                    arg_max(technician, {_VERSION}) FILTER (WHERE technician IS NOT NULL) AS technician,
                    arg_max(priority, {_VERSION}) FILTER (WHERE priority IS NOT NULL) AS priority,
                    coalesce(arg_max(opened, {_VERSION}) FILTER (WHERE opened IS NOT NULL), min(ts)) AS opened,
                    coalesce(arg_max(started, {_VERSION}) FILTER (WHERE started IS NOT NULL),
                             min(ts) FILTER (WHERE status IN ('started', 'closed'))) AS started,
                    arg_max(closed, {_VERSION}) FILTER (WHERE closed IS NOT NULL) AS closed,
                    min(ts) FILTER (WHERE status = 'closed') AS first_closed,
                    arg_max(planned_start, {_VERSION}) FILTER (WHERE planned_start IS NOT NULL) AS planned_start,
                    arg_max(planned_end, {_VERSION}) FILTER (WHERE planned_end IS NOT NULL) AS planned_end,
                    max(ts) AS updated,
                    count(*) AS versions
                FROM mes_maintenance_orders GROUP BY maintenance_id
            )""",  # noqa: S608 - our constant
        # planned downtime: a planned order's scheduled window and its actual one (open, wb NULL, while it runs)
        """CREATE VIEW mes_maintenance_windows AS
            SELECT maintenance_id, path, planned_start AS wa, planned_end AS wb FROM mes_maintenance
            WHERE planned AND status <> 'cancelled' AND planned_start < planned_end
            UNION ALL
            SELECT maintenance_id, path, started, closed FROM mes_maintenance
            WHERE planned AND status <> 'cancelled' AND started IS NOT NULL AND (closed IS NULL OR closed > started)""",
    ),
)


def _maintenance_view(*, reopen_guard: bool, reopen_right_after_a_close: bool = False) -> str:
    """``mes_maintenance`` as versions 4 to 6 define it; ``reopen_guard``: version 5's rule for ``closed_ms``.

    Version 4: a reopen (a version saying other than closed) undoes the closes before it, so closed is the newest
    closed_ms of the versions after the last reopen, else the first of them (a re-sent close does not move it).
    Version 5: of those, a closed_ms before the last reopen (the newest version saying other than closed after
    one saying closed; its timestamp) is left out: the order was not closed then (an old close time re-sent);
    ``closes_left_out`` counts them. Version 6 (``reopen_right_after_a_close``): the last reopen is the newest
    version saying other than closed right after one saying closed, so an update while the order is open again
    (a technician assigned) does not move it past a close time given after the reopen.
    """
    guard = " AND (reopened IS NULL OR closed >= reopened)" if reopen_guard else ""
    after_a_close = "previous = 'closed'" if reopen_right_after_a_close else "closed_before > 0"
    before = (
        f"""lag(status) OVER (
                            PARTITION BY maintenance_id ORDER BY {_VERSION.strip("()")}
                        ) AS previous"""
        if reopen_right_after_a_close
        else f"""coalesce(sum(CASE WHEN status = 'closed' THEN 1 ELSE 0 END) OVER (
                            PARTITION BY maintenance_id ORDER BY {_VERSION.strip("()")}
                            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
                        ), 0) AS closed_before"""
    )
    left_out = ", closes_left_out" if reopen_guard else ""
    count_left_out = (
        """
                    count(*) FILTER (
                        WHERE closed IS NOT NULL AND not_closed_so_far = not_closed AND closed < reopened
                    ) AS closes_left_out,"""
        if reopen_guard
        else ""
    )
    reopened = (
        f""",
                        max(ts) FILTER (WHERE status <> 'closed' AND {after_a_close}) OVER (
                            PARTITION BY maintenance_id
                        ) AS reopened
                    FROM (
                        SELECT *, {before}
                        FROM mes_maintenance_orders
                    )"""  # noqa: S608 - our constant
        if reopen_guard
        else """
                    FROM mes_maintenance_orders"""
    )
    return f"""CREATE OR REPLACE VIEW mes_maintenance AS
            SELECT maintenance_id, path, line, status, planned, fault_code, description, technician, priority,
                   opened, started, CASE WHEN status = 'closed' THEN coalesce(closed, last_closing) END AS closed,
                   planned_start, planned_end, updated, versions{left_out}
            FROM (
                SELECT maintenance_id,
                    arg_max(path, {_VERSION}) AS path,
                    arg_max(line, {_VERSION}) AS line,
                    arg_max(status, {_VERSION}) AS status,
                    coalesce(arg_max(planned, {_VERSION}) FILTER (WHERE planned IS NOT NULL), false) AS planned,
                    arg_max(fault_code, {_VERSION}) FILTER (WHERE fault_code IS NOT NULL) AS fault_code,
                    arg_max(description, {_VERSION}) FILTER (WHERE description IS NOT NULL) AS description,
                    arg_max(technician, {_VERSION}) FILTER (WHERE technician IS NOT NULL) AS technician,
                    arg_max(priority, {_VERSION}) FILTER (WHERE priority IS NOT NULL) AS priority,
                    coalesce(arg_max(opened, {_VERSION}) FILTER (WHERE opened IS NOT NULL), min(ts)) AS opened,
                    coalesce(arg_max(started, {_VERSION}) FILTER (WHERE started IS NOT NULL),
                             min(ts) FILTER (WHERE status IN ('started', 'closed'))) AS started,
                    arg_max(closed, {_VERSION}) FILTER (
                        WHERE closed IS NOT NULL AND not_closed_so_far = not_closed{guard}
                    ) AS closed,
                    min(ts) FILTER (WHERE status = 'closed' AND not_closed_so_far = not_closed) AS last_closing,
                    arg_max(planned_start, {_VERSION}) FILTER (WHERE planned_start IS NOT NULL) AS planned_start,
                    arg_max(planned_end, {_VERSION}) FILTER (WHERE planned_end IS NOT NULL) AS planned_end,
                    max(ts) AS updated,{count_left_out}
                    count(*) AS versions
                FROM (
                    SELECT *,
                        sum(CASE WHEN status <> 'closed' THEN 1 ELSE 0 END) OVER (
                            PARTITION BY maintenance_id ORDER BY {_VERSION.strip("()")}
                            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
                        ) AS not_closed_so_far,
                        sum(CASE WHEN status <> 'closed' THEN 1 ELSE 0 END) OVER (
                            PARTITION BY maintenance_id
                        ) AS not_closed{reopened}
                )
                GROUP BY maintenance_id
            )"""  # noqa: S608 - our constant


_MES_REOPENED = Migration(
    version=4,
    description="MES: a reopened order closed again without closed_ms closes at its last close, not its first",
    statements=(_maintenance_view(reopen_guard=False),),
)

_MES_STALE_CLOSE = Migration(
    version=5,
    description="MES: a closed_ms before a maintenance order's last reopen (an old close re-sent) is left out",
    statements=(_maintenance_view(reopen_guard=True),),
)

_MES_REOPEN_POINT = Migration(
    version=6,
    description="MES: a maintenance order's last reopen is the version right after a close, not a later update",
    statements=(_maintenance_view(reopen_guard=True, reopen_right_after_a_close=True),),
)

SCHEMA = Component(
    name="mes",
    migrations=(_MES, _MES_ATTRIBUTION, _MES_MAINTENANCE, _MES_REOPENED, _MES_STALE_CLOSE, _MES_REOPEN_POINT),
)
"""The MES adapter's migrations, oldest first."""

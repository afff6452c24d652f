"""Per-order time-to-event records kept in the warehouse: one row per order and measure.

Every time-to-event table is computed from these records, and a record depends only on its own
order's status history and order row. So a refresh rebuilds the records of the orders it touched
and leaves the rest: reading and deriving every order's history on each refresh would cost what
the whole history costs, not what changed (`pipeline.derived` decides which orders those are).
The tables are also plain SQL for teams running their own survival analyses.

The analytics read the records collapsed into cells (`read_record_cells`): identical orders,
once their times are on a fine grid, enter as one row with a count, so fitting every provider's
curves costs what the cells cost, not what a year of orders would.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime

import duckdb
import polars as pl

from pipeline.analytics.events import RECORD_COLUMNS
from pipeline.analytics.inputs import FAILURE_STATE_VALUES, SUCCESS_STATE_VALUES
from pipeline.analytics.metrics import (
    CODE_ORDER_KINDS,
    RESOLUTION,
    code_records,
    completion_records,
    expiry_records,
)
from pipeline.analytics.scorecard import window_start_sql
from pipeline.analytics.survival import CENSORED, EVENT, WEIGHT
from pipeline.providers.registry import REGISTRY
from pipeline.warehouse import replace_table
from pipeline.warehouse.store import registered

RECORD_TABLES: dict[str, Callable[[pl.DataFrame, pl.DataFrame], pl.DataFrame]] = {
    "code_records": code_records,
    "completion_records": completion_records,
    "expiry_records": expiry_records,
}
"""Record table → its builder from (status history, orders) (`pipeline.analytics.metrics`)."""
RECORDS_VERSION = 1
"""Raise when the builders change what they derive from a history: every record is rebuilt."""
RECORDS_STATE = "order_records"
"""`derived_state` entries `order_records <rules>`: the rules the stored records were built by."""
_KEYS_VIEW = "_record_orders"
_NEW_VIEW = "_new_records"


def build_records(history: pl.DataFrame, orders: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """Every record table's rows for the orders in `history`."""
    return {table: build(history, orders) for table, build in RECORD_TABLES.items()}


def write_records(
    con: duckdb.DuckDBPyConnection, records: dict[str, pl.DataFrame], *, replace: bool
) -> int:
    """Store a `build_records` result: as the whole tables (`replace`) or added to them."""
    for table, frame in records.items():
        if replace:
            replace_table(con, table, frame)
        elif frame.height:
            with registered(con, _NEW_VIEW, frame):
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {_NEW_VIEW}")
    return sum(frame.height for frame in records.values())


def update_records(
    con: duckdb.DuckDBPyConnection, orders: pl.DataFrame, records: dict[str, pl.DataFrame]
) -> int:
    """Replace the records of `orders` (provider, order_id) with `records`: an order that no
    longer has one in some table (its kind changed) loses the old one."""
    with registered(con, _KEYS_VIEW, orders.select("provider", "order_id")):
        for table in records:
            con.execute(
                f"DELETE FROM {table} r USING {_KEYS_VIEW} k "
                "WHERE r.provider = k.provider AND r.order_id = k.order_id"
            )
    return write_records(con, records, replace=False)


def records_state() -> str:
    """The `derived_state` name of records built by today's rules: the builders' version, the
    record columns, the code kinds, the success and failure states and every provider's
    expiry windows. Records built by other rules (an earlier release, an edited provider
    declaration) are rebuilt, not left beside new ones."""
    rules = (
        RECORDS_VERSION,
        tuple(RECORD_COLUMNS),
        CODE_ORDER_KINDS,
        SUCCESS_STATE_VALUES,
        FAILURE_STATE_VALUES,
        tuple((spec.slug, repr(spec.expiry_windows)) for spec in REGISTRY.specs()),
    )
    return f"{RECORDS_STATE} {hashlib.sha256(repr(rules).encode()).hexdigest()[:16]}"


def records_outdated(con: duckdb.DuckDBPyConnection) -> bool:
    """True when the stored records were built by other rules (`records_state`) or a record
    table is missing or lacks a column: they are then rebuilt from the status history."""
    built = con.execute("SELECT count(*) FROM derived_state WHERE name = ?", [records_state()])
    if not built.fetchall()[0][0]:
        return True
    names = ", ".join(f"'{table}'" for table in RECORD_TABLES)
    rows = con.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        f"WHERE table_catalog = current_database() AND table_name IN ({names})"
    ).fetchall()
    present: dict[str, set[str]] = {}
    for table, column in rows:
        present.setdefault(table, set()).add(column)
    return any(not set(RECORD_COLUMNS) <= present.get(table, set()) for table in RECORD_TABLES)


def mark_records_built(con: duckdb.DuckDBPyConnection) -> None:
    """Record that every stored record was built by today's rules (`records_state`)."""
    unmark_records_built(con)
    con.execute(
        "INSERT INTO derived_state (name, value, updated_at) VALUES (?, now(), now())",
        [records_state()],
    )


def unmark_records_built(con: duckdb.DuckDBPyConnection) -> None:
    """Forget how the stored records were built: they are rebuilt at the next refresh."""
    con.execute("DELETE FROM derived_state WHERE name LIKE ?", [f"{RECORDS_STATE} %"])


CELL_GRID = 0.005
"""Relative step of the grid record times are placed on when records are collapsed into cells
(`read_record_cells`): half a percent, far inside the sampling error of any figure read off
them, and coarse enough that a million orders fall into tens of thousands of cells."""

_COMMON = ("provider", "event_code")
_CELL_KEYS: dict[str, tuple[str, ...]] = {
    "code_records": (*_COMMON, "service", "country"),
    "completion_records": (*_COMMON, "order_kind", "service", "country", "registered_at"),
    "expiry_records": (
        *_COMMON, "order_kind", "origin_at", "registered_at",
        "window_s", "horizon_s", "window_documented",
    ),
}  # fmt: skip
"""Record columns each table's analytics group or filter by (besides the times)."""
_WITH_BOUNDS = ("code_records", "completion_records")
"""Tables whose analytics fit the NPMLE to the event's bounds (expiry needs `time_s` only)."""


def read_record_cells(con: duckdb.DuckDBPyConnection, as_of: datetime) -> dict[str, pl.DataFrame]:
    """Every record table collapsed into cells: one row per distinct combination of what the
    analytics read, with `orders` (`pipeline.analytics.survival.WEIGHT`) counting its orders.

    The analytics then cost what the cells cost, not what the orders do. To make orders
    combine, every time is placed on the nearest step of a relative grid of step `CELL_GRID`.
    One rule for all keeps the order of any two times (a time equal to or below another is
    still so), which is what the NPMLE's cells and the Kaplan–Meier risk sets are made of:
    rounding an event's bounds outwards and an open order's last poll downwards put an order
    still open at the very poll that saw others' outcomes before that poll, and a provider
    polled on a shared grid lost its median. `registered_at` becomes the start of the
    shortest scorecard window ending at `as_of` that holds it, and `origin_at` (expiry) its
    hour. The expiry rate is read at its horizon: every later time counts as one time past it,
    and no time crosses it (one just short of it goes down the grid, so an order not followed
    to the horizon never makes the rate there known).
    """
    windowed = {
        "registered_at": f"{window_start_sql('registered_at', as_of)} AS registered_at",
        "origin_at": "date_trunc('hour', origin_at) AS origin_at",
    }
    cells = {}
    for table, keys in _CELL_KEYS.items():
        columns = [windowed.get(key, key) for key in keys]
        if table in _WITH_BOUNDS:
            columns += [
                f"{_TIME} AS time_s",
                f"{_EVENT_AFTER} AS event_after_s",
                f"{_EVENT_BY} AS event_by_s",
                f"CASE WHEN event_code = {EVENT} THEN {_snap('upper_s - lower_s', 'round')} "
                f"END AS {RESOLUTION}",
            ]
        else:
            columns.append(f"{_TIME_TO_HORIZON} AS time_s")
        cells[table] = con.sql(
            f"SELECT {', '.join(columns)}, count(*) AS {WEIGHT} FROM {table} GROUP BY ALL"
        ).pl()
    return cells


def _snap(value: str, direction: str) -> str:
    """SQL placing a time in seconds on the `CELL_GRID` grid (`floor`, `ceil` or `round` of its
    logarithm); zero and negative times stay as they are."""
    return (
        f"CASE WHEN ({value}) > 0 THEN exp({direction}(ln({value}) / {CELL_GRID}) * {CELL_GRID}) "
        f"ELSE ({value}) END"
    )


_EXACT = f"event_code <> {CENSORED} AND event_after_s >= event_by_s"
# An interval narrower than a step would round to one point and read as an exact time (and a
# group of them would lose its smoothing): it keeps one step below its upper bound instead.
_EVENT_AFTER = (
    f"CASE WHEN {_EXACT} THEN {_snap('event_by_s', 'round')} "
    f"WHEN {_snap('event_after_s', 'round')} >= {_snap('event_by_s', 'round')} "
    f"THEN {_snap('event_by_s', 'round')} * exp(-{CELL_GRID}) "
    f"ELSE {_snap('event_after_s', 'round')} END"
)
_EVENT_BY = f"CASE WHEN event_code = {CENSORED} THEN NULL ELSE {_snap('event_by_s', 'round')} END"
_TIME = _snap("time_s", "round")
_TIME_TO_HORIZON = (
    "CASE WHEN time_s > horizon_s THEN horizon_s + 1 WHEN time_s = horizon_s THEN horizon_s "
    f"WHEN {_TIME} >= horizon_s THEN {_snap('time_s', 'floor')} ELSE {_TIME} END"
)

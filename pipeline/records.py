"""Per-order time-to-event records kept in the warehouse: one row per order and measure.

Every time-to-event table is computed from these records, and a record depends only on its own
order's status history and order row. So a refresh rebuilds the records of the orders it touched
and leaves the rest: reading and deriving every order's history on each refresh would cost what
the whole history costs, not what changed (`pipeline.derived` decides which orders those are).
The tables are also plain SQL for teams running their own survival analyses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import duckdb
import polars as pl

from pipeline.analytics.events import RECORD_COLUMNS
from pipeline.analytics.inputs import FAILURE_STATE_VALUES, SUCCESS_STATE_VALUES
from pipeline.analytics.metrics import (
    CODE_ORDER_KINDS,
    code_records,
    completion_records,
    expiry_records,
)
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
    con.execute("DELETE FROM derived_state WHERE name LIKE ?", [f"{RECORDS_STATE} %"])
    con.execute("INSERT INTO derived_state VALUES (?, now(), now())", [records_state()])


UNREAD_BY_ANALYTICS = ("order_id", "origin_source", "outcome_state", "time_source", "follow_up_s")
"""Record columns no analytics table reads: left in the warehouse when the records are read
for them (the order id alone is a fifth of a record's memory)."""


def read_records(con: duckdb.DuckDBPyConnection) -> dict[str, pl.DataFrame]:
    """Every record table, without the columns in `UNREAD_BY_ANALYTICS`."""
    unread = ", ".join(UNREAD_BY_ANALYTICS)
    return {
        table: con.sql(f"SELECT * EXCLUDE ({unread}) FROM {table}").pl() for table in RECORD_TABLES
    }

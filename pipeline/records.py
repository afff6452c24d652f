"""Per-order time-to-event records kept in the warehouse: one row per order and measure.

Every time-to-event table is computed from these records, and a record depends only on its own
order's status history and order row. So a refresh rebuilds the records of the orders it touched
and leaves the rest: reading and deriving every order's history on each refresh would cost what
the whole history costs, not what changed (`pipeline.derived` decides which orders those are).
The tables are also plain SQL for teams running their own survival analyses.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import polars as pl

from pipeline.analytics.events import RECORD_COLUMNS
from pipeline.analytics.metrics import code_records, completion_records, expiry_records
from pipeline.warehouse import replace_table
from pipeline.warehouse.store import registered

RECORD_TABLES: dict[str, Callable[[pl.DataFrame, pl.DataFrame], pl.DataFrame]] = {
    "code_records": code_records,
    "completion_records": completion_records,
    "expiry_records": expiry_records,
}
"""Record table → its builder from (status history, orders) (`pipeline.analytics.metrics`)."""
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


def records_outdated(con: duckdb.DuckDBPyConnection) -> bool:
    """True when a record table is missing or lacks a record column (a warehouse from an
    earlier release): the records are then rebuilt from the status history."""
    names = ", ".join(f"'{table}'" for table in RECORD_TABLES)
    rows = con.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        f"WHERE table_catalog = current_database() AND table_name IN ({names})"
    ).fetchall()
    present: dict[str, set[str]] = {}
    for table, column in rows:
        present.setdefault(table, set()).add(column)
    return any(not set(RECORD_COLUMNS) <= present.get(table, set()) for table in RECORD_TABLES)


UNREAD_BY_ANALYTICS = ("order_id", "origin_source", "outcome_state", "time_source", "follow_up_s")
"""Record columns no analytics table reads: left in the warehouse when the records are read
for them (the order id alone is a fifth of a record's memory)."""


def read_records(con: duckdb.DuckDBPyConnection) -> dict[str, pl.DataFrame]:
    """Every record table, without the columns in `UNREAD_BY_ANALYTICS`."""
    unread = ", ".join(UNREAD_BY_ANALYTICS)
    return {
        table: con.sql(f"SELECT * EXCLUDE ({unread}) FROM {table}").pl() for table in RECORD_TABLES
    }

"""Per-order time-to-event records kept in the warehouse: one row per order and measure.

Every time-to-event table is computed from these records, and a record depends only on its own
order's status history and order row. So a refresh rebuilds the records of the orders it touched
and leaves the rest: reading and deriving every order's history on each refresh would cost what
the whole history costs, not what changed (`pipeline.derived` decides which orders those are).
The tables are also plain SQL for teams running their own survival analyses.

The analytics read the records collapsed into cells (`pipeline.cells`): identical orders, once
their times are on a fine grid, enter as one row with a count, so fitting every provider's
curves costs what the cells cost, not what a year of orders would. The cells are stored and
updated with the records they count.
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
    code_records,
    completion_records,
    expiry_records,
)
from pipeline.cells import CELL_TABLES, age_cells, build_cells, update_cells
from pipeline.providers.registry import REGISTRY
from pipeline.warehouse import replace_table
from pipeline.warehouse.order_keys import (
    ORDER_KEY,
    keyed_columns,
    keyed_insert,
    keyed_orders,
    restore_others,
    rowid_spans,
)
from pipeline.warehouse.store import first_row, registered

RECORD_TABLES: dict[str, Callable[[pl.DataFrame, pl.DataFrame], pl.DataFrame]] = {
    "code_records": code_records,
    "completion_records": completion_records,
    "expiry_records": expiry_records,
}
"""Record table → its builder from (status history, orders) (`pipeline.analytics.metrics`)."""
RECORDS_VERSION = 2
"""Raise when the builders change what they derive from a history: every record is rebuilt."""
RECORDS_STATE = "order_records"
"""`derived_state` entries `order_records <rules>`: the rules the stored records were built by."""
_ORDERS_VIEW = "_record_orders"
_KEYS = "_record_keys"
_NEW_VIEW = "_new_records"
_OLD_TABLE = "_old_records"


def build_records(history: pl.DataFrame, orders: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """Every record table's rows for the orders in `history`."""
    return {table: build(history, orders) for table, build in RECORD_TABLES.items()}


def write_records(
    con: duckdb.DuckDBPyConnection, records: dict[str, pl.DataFrame], *, replace: bool
) -> int:
    """Store a `build_records` result: as the whole tables (`replace`) or added to them."""
    for table, frame in records.items():
        if replace:
            replace_table(con, table, frame, computed=keyed_columns())
        elif frame.height:
            with registered(con, _NEW_VIEW, frame):
                con.execute(keyed_insert(table, _NEW_VIEW))
    return sum(frame.height for frame in records.values())


def lay_out_by_last_poll(con: duckdb.DuckDBPyConnection) -> None:
    """Rewrite every record table with its rows in order of their order's last poll.

    A refresh rewrites the records of the orders it polled, found and deleted within their
    rowid ranges (`order_keys.rowid_spans`), and appends the new ones: so the records of orders
    still being polled gather at the end, in a few row groups. A build writes orders a
    share at a time by key, scattering them: at 8.3 M orders the next refresh's three deletes
    then spanned the whole tables and took 0.33 s, against under 0.03 s each laid out (the
    layout took 16 s of a seven-minute build)."""
    for table in RECORD_TABLES:
        # An empty table is left as it is: one re-created empty by `CREATE TABLE ... AS` has
        # statistics later inserts in its transaction do not widen (`store.replace_table`).
        if first_row(con, f"SELECT count(*) FROM {table}")[0]:
            con.execute(
                f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM {table} ORDER BY {_LAST_POLL}"
            )


# In seconds, as a double: no time or sum of a hostile provider's times can overflow it.
_LAST_POLL = "epoch(origin_at) + follow_up_s NULLS FIRST"


def update_records(
    con: duckdb.DuckDBPyConnection, orders: pl.DataFrame, records: dict[str, pl.DataFrame]
) -> int:
    """Replace the records of `orders` (provider, order_id) with `records`, and their cells
    (`pipeline.cells`): an order that no longer has one in some table (its kind changed) loses
    the old one. The old records are found by `order_key` (`pipeline.warehouse.order_keys`)."""
    with registered(con, _ORDERS_VIEW, orders.select("provider", "order_id")):
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_KEYS} AS {keyed_orders(_ORDERS_VIEW)}")
        for table, frame in records.items():
            spans = rowid_spans(con, table, _KEYS)
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {_OLD_TABLE} AS WITH gone AS (DELETE FROM {table} t "
                f"USING {_KEYS} k WHERE t.{ORDER_KEY} = k.{ORDER_KEY} AND {spans} RETURNING t.*) "
                "SELECT * FROM gone"
            )
            restore_others(con, table, _OLD_TABLE, _KEYS)
            with registered(con, _NEW_VIEW, frame):
                if frame.height:
                    con.execute(keyed_insert(table, _NEW_VIEW))
                update_cells(con, table, _OLD_TABLE, _NEW_VIEW)
            con.execute(f"DROP TABLE {_OLD_TABLE}")
        con.execute(f"DROP TABLE {_KEYS}")
    age_cells(con, _newest_registration(records))
    return sum(frame.height for frame in records.values())


def _newest_registration(records: dict[str, pl.DataFrame]) -> datetime | None:
    times = [frame["registered_at"].max() for frame in records.values() if frame.height]
    known = [t for t in times if isinstance(t, datetime)]
    return max(known) if known else None


def build_all_cells(con: duckdb.DuckDBPyConnection) -> None:
    """Count every stored record into its cells afresh (after the records were rebuilt)."""
    newest = first_row(con, "SELECT max(registered_at) FROM completion_records")
    build_cells(con, newest[0] if newest else None)


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
    """True when the stored records were built by other rules (`records_state`), a record
    table is missing or lacks a column, or a cell table is missing: they are then rebuilt from
    the status history."""
    built = con.execute("SELECT count(*) FROM derived_state WHERE name = ?", [records_state()])
    if not built.fetchall()[0][0]:
        return True
    names = ", ".join(f"'{table}'" for table in (*RECORD_TABLES, *CELL_TABLES.values()))
    rows = con.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        f"WHERE table_catalog = current_database() AND table_name IN ({names})"
    ).fetchall()
    present: dict[str, set[str]] = {}
    for table, column in rows:
        present.setdefault(table, set()).add(column)
    if any(cells not in present for cells in CELL_TABLES.values()):
        return True
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

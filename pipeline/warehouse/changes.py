"""Which orders' rows a refresh rewrote: the log a publish reads to bring its copy up to date.

A refresh rewrites the status history and the per-order records of the orders it touched, a
few thousand among millions. It notes them here under one number per note (`seq`), and each
published copy keeps the number it was brought up to date to (`MARK_TABLE`). The next publish
then rewrites only the rows of the orders noted since, instead of comparing every row of both
sides (`pipeline.warehouse.publish`).

A row without an order says that the whole table may have changed at its number: a full
build, the first note for a table (what came before was not noted), or older notes trimmed
away. A copy marked before it compares every row once, as without the log. A table nobody
notes changes for is always compared row by row.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import polars as pl

from pipeline.warehouse.store import first_row, registered

CHANGES_TABLE = "_order_changes"
"""The log: (seq, table_name, provider, order_id); provider NULL = the whole table."""
MARK_TABLE = "_published_changes"
"""In a published copy: the log's newest `seq` the copy holds every change up to."""
KEEP_NOTES = 256
"""Notes kept: a copy more than this many refreshes behind compares every row once."""
_NOTED_VIEW = "_noted_orders"


def note_changed_orders(
    con: duckdb.DuckDBPyConnection, tables: Iterable[str], orders: pl.DataFrame
) -> None:
    """Note that the rows of `orders` (provider, order_id) in `tables` were rewritten."""
    if orders.is_empty():
        return
    names = list(tables)
    seq = _next_seq(con)
    # The first note for a table also says it may differ from any copy made before it.
    con.execute(
        f"INSERT INTO {CHANGES_TABLE} SELECT ?, t, NULL, NULL FROM unnest(?::VARCHAR[]) u(t) "
        f"WHERE t NOT IN (SELECT table_name FROM {CHANGES_TABLE} WHERE provider IS NULL)",
        [seq, names],
    )
    with registered(con, _NOTED_VIEW, orders.select("provider", "order_id").unique()):
        con.execute(
            f"INSERT INTO {CHANGES_TABLE} SELECT ?, t, provider, order_id "
            f"FROM {_NOTED_VIEW}, unnest(?::VARCHAR[]) u(t)",
            [seq, names],
        )
    _trim(con, seq)


def note_rewritten(con: duckdb.DuckDBPyConnection, tables: Iterable[str]) -> None:
    """Note that `tables` were rewritten whole (a full build): their notes so far are moot."""
    names = list(tables)
    seq = _next_seq(con)
    con.execute(
        f"DELETE FROM {CHANGES_TABLE} WHERE table_name IN (SELECT unnest(?::VARCHAR[]))", [names]
    )
    con.execute(
        f"INSERT INTO {CHANGES_TABLE} SELECT ?, t, NULL, NULL FROM unnest(?::VARCHAR[]) u(t)",
        [seq, names],
    )


def newest_seq(con: duckdb.DuckDBPyConnection, database: str) -> int:
    """The newest note in `database` (0: none, or no log)."""
    if not _has_log(con, database):
        return 0
    return int(first_row(con, f'SELECT coalesce(max(seq), 0) FROM "{database}".{CHANGES_TABLE}')[0])


def noted_since(con: duckdb.DuckDBPyConnection, database: str, table: str, mark: int) -> str | None:
    """A query of the orders whose rows in `table` changed after note `mark`, or None when
    the log cannot say (the table was rewritten whole after it, or is not noted)."""
    if not _has_log(con, database):
        return None
    log = f'"{database}".{CHANGES_TABLE}'
    whole = first_row(
        con, f"SELECT max(seq) FROM {log} WHERE table_name = ? AND provider IS NULL", [table]
    )[0]
    if whole is None or whole > mark:
        return None
    quoted = table.replace("'", "''")
    return (
        f"SELECT DISTINCT provider, order_id FROM {log} "
        f"WHERE table_name = '{quoted}' AND seq > {int(mark)} AND provider IS NOT NULL"
    )


def _next_seq(con: duckdb.DuckDBPyConnection) -> int:
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {CHANGES_TABLE} "
        "(seq BIGINT NOT NULL, table_name VARCHAR NOT NULL, provider VARCHAR, order_id VARCHAR)"
    )
    return newest_seq(con, first_row(con, "SELECT current_database()")[0]) + 1


def _trim(con: duckdb.DuckDBPyConnection, seq: int) -> None:
    """Keep the newest `KEEP_NOTES` notes: older ones become one whole-table row per table at
    the newest of them (a copy marked before it is compared whole)."""
    cut = seq - KEEP_NOTES
    oldest = first_row(con, f"SELECT min(seq) FROM {CHANGES_TABLE}")[0]
    if oldest is None or oldest >= cut:
        return
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _trimmed AS WITH gone AS (DELETE FROM {CHANGES_TABLE} "
        "WHERE seq <= ? RETURNING table_name) SELECT DISTINCT table_name FROM gone",
        [cut],
    )
    con.execute(
        f"INSERT INTO {CHANGES_TABLE} SELECT ?, table_name, NULL, NULL FROM _trimmed", [cut]
    )
    con.execute("DROP TABLE _trimmed")


def _has_log(con: duckdb.DuckDBPyConnection, database: str) -> bool:
    row = first_row(
        con,
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_catalog = ? AND table_schema = 'main' AND table_name = ?",
        [database, CHANGES_TABLE],
    )
    return bool(row[0])

"""Which orders' rows a refresh rewrote: the log a publish reads to bring its copy up to date.

A refresh rewrites the status history and the per-order records of the orders it touched, a
few thousand among millions. It notes them here, each note under the next number (`seq`) and a
random token, and each published copy keeps the note it was brought up to date to
(`MARK_TABLE`: number and token). The next publish then rewrites only the rows of the orders
noted since, instead of comparing every row of both sides (`pipeline.warehouse.publish`).

A row without an order says that the whole table may have changed at its number: a full
build, the first note for a table (what came before was not noted), or older notes trimmed
away. A copy marked before it compares every row once, as without the log. So does a copy
whose mark the log does not hold with the same token: the warehouse was restored from a
backup or its log dropped, and its numbers started again. A table nobody notes changes for is
always compared row by row.

Notes are numbered inside the writer's transaction; the warehouse has one writer at a time
(its lock), so two refreshes never take the same number.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import duckdb
import polars as pl

from pipeline.warehouse.store import first_row, registered

CHANGES_TABLE = "_order_changes"
"""The log: (seq, token, table_name, provider, order_id); provider NULL = the whole table."""
MARK_TABLE = "_published_changes"
"""In a published copy: the note (seq, token) the copy holds every change up to."""
KEEP_NOTES = 16
"""Notes kept: a copy more than this many refreshes behind compares every row once. Both
`pipeline refresh` and the Dagster assets publish after each refresh, so a copy is one or two
notes behind; a note holds a row per order and table (10 k orders polled per tick: 40 k)."""
_NOTED_VIEW = "_noted_orders"
_LOG_COLUMNS = [
    ("seq", "BIGINT"),
    ("token", "VARCHAR"),
    ("table_name", "VARCHAR"),
    ("provider", "VARCHAR"),
    ("order_id", "VARCHAR"),
]


@dataclass(frozen=True)
class Note:
    """One note's number and token: where a copy stands in the log."""

    seq: int
    token: str


NO_NOTE = Note(0, "")
"""Where a warehouse without notes stands."""


def note_changed_orders(
    con: duckdb.DuckDBPyConnection, tables: Iterable[str], orders: pl.DataFrame
) -> None:
    """Note that the rows of `orders` (provider, order_id) in `tables` were rewritten."""
    if orders.is_empty():
        return
    names = list(tables)
    note = _next_note(con)
    # The first note for a table also says it may differ from any copy made before it.
    con.execute(
        f"INSERT INTO {CHANGES_TABLE} SELECT ?, ?, t, NULL, NULL FROM unnest(?::VARCHAR[]) u(t) "
        f"WHERE t NOT IN (SELECT table_name FROM {CHANGES_TABLE} WHERE provider IS NULL)",
        [note.seq, note.token, names],
    )
    with registered(con, _NOTED_VIEW, orders.select("provider", "order_id").unique()):
        con.execute(
            f"INSERT INTO {CHANGES_TABLE} SELECT ?, ?, t, provider, order_id "
            f"FROM {_NOTED_VIEW}, unnest(?::VARCHAR[]) u(t)",
            [note.seq, note.token, names],
        )
    _trim(con, note.seq)


def note_rewritten(con: duckdb.DuckDBPyConnection, tables: Iterable[str]) -> None:
    """Note that `tables` are rewritten whole, their earlier notes moot. A full build notes
    it before it starts, committed with its first part, and again when done: a copy published
    from a build cut short, or in the middle of one, is compared whole afterwards."""
    names = list(tables)
    note = _next_note(con)
    con.execute(
        f"DELETE FROM {CHANGES_TABLE} WHERE table_name IN (SELECT unnest(?::VARCHAR[]))", [names]
    )
    con.execute(
        f"INSERT INTO {CHANGES_TABLE} SELECT ?, ?, t, NULL, NULL FROM unnest(?::VARCHAR[]) u(t)",
        [note.seq, note.token, names],
    )


def newest_note(con: duckdb.DuckDBPyConnection, database: str) -> Note:
    """The newest note in `database` (`NO_NOTE`: none, or no log)."""
    return _newest(con, database) if _has_log(con, database) else NO_NOTE


def _newest(con: duckdb.DuckDBPyConnection, database: str) -> Note:
    row = first_row(
        con,
        f'SELECT seq, token FROM "{database}".{CHANGES_TABLE} ORDER BY seq DESC LIMIT 1',
    )
    return Note(int(row[0]), str(row[1])) if row else NO_NOTE


def noted_since(
    con: duckdb.DuckDBPyConnection, database: str, table: str, mark: Note
) -> str | None:
    """A query of the orders whose rows in `table` changed after note `mark`, or None when
    the log cannot say: it does not hold `mark` (another log, or trimmed), the table was
    rewritten whole after it, or nobody notes the table."""
    if not _has_log(con, database):
        return None
    log = f'"{database}".{CHANGES_TABLE}'
    known, whole = first_row(
        con,
        f"SELECT count(*) FILTER (seq = ? AND token = ?), "
        f"max(seq) FILTER (table_name = ? AND provider IS NULL) FROM {log}",
        [mark.seq, mark.token, table],
    )
    if not known or whole is None or whole > mark.seq:
        return None
    quoted = table.replace("'", "''")
    return (
        f"SELECT DISTINCT provider, order_id FROM {log} "
        f"WHERE table_name = '{quoted}' AND seq > {int(mark.seq)} AND provider IS NOT NULL"
    )


def _next_note(con: duckdb.DuckDBPyConnection) -> Note:
    if not _has_log(con, None):
        # Missing, or written by another release: started afresh. Copies then find their mark
        # missing from it and are compared whole once.
        declared = ", ".join(f"{name} {dtype}" for name, dtype in _LOG_COLUMNS)
        con.execute(f"CREATE OR REPLACE TABLE {CHANGES_TABLE} ({declared})")
    newest = _newest(con, first_row(con, "SELECT current_database()")[0])
    return Note(newest.seq + 1, uuid.uuid4().hex)


def _trim(con: duckdb.DuckDBPyConnection, seq: int) -> None:
    """Keep the newest `KEEP_NOTES` notes: older ones become one whole-table row per table at
    the newest of them, under its token (a copy marked before it is compared whole)."""
    cut = seq - KEEP_NOTES
    oldest = first_row(con, f"SELECT min(seq) FROM {CHANGES_TABLE}")[0]
    if oldest is None or oldest >= cut:
        return
    token = first_row(con, f"SELECT any_value(token) FROM {CHANGES_TABLE} WHERE seq = ?", [cut])[0]
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _trimmed AS WITH gone AS (DELETE FROM {CHANGES_TABLE} "
        "WHERE seq <= ? RETURNING table_name) SELECT DISTINCT table_name FROM gone",
        [cut],
    )
    con.execute(
        f"INSERT INTO {CHANGES_TABLE} SELECT ?, ?, table_name, NULL, NULL FROM _trimmed",
        [cut, token or uuid.uuid4().hex],
    )
    con.execute("DROP TABLE _trimmed")


def _has_log(con: duckdb.DuckDBPyConnection, database: str | None) -> bool:
    """Whether `database` (default: the connection's) holds a log this release can read."""
    columns = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = coalesce(?, current_database()) AND table_schema = 'main' "
        "AND table_name = ? ORDER BY ordinal_position",
        [database, CHANGES_TABLE],
    ).fetchall()
    return columns == _LOG_COLUMNS

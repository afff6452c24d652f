"""Reading and writing the warehouse: bulk appends from polars through Arrow, reads into polars.

Writes never go row by row: a polars frame is registered as an Arrow view and inserted with one
statement. Keys are deterministic, so appending the same rows twice stores them once: through
the table's primary key, or, for `observations` (which has none, so that a write costs the same
whatever the log's size), by checking only the stored rows polled in the batch's time span: an
observation's id is derived from its `polled_at`, so a stored copy can only be there.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipeline.warehouse.connection import close, connect
from pipeline.warehouse.schema import migrate

_BATCH_VIEW = "_incoming_batch"
_MIGRATING = threading.Lock()

# table -> key columns, for idempotent appends
KEYS: dict[str, tuple[str, ...]] = {
    "orders": ("provider", "order_id"),
    "observations": ("observation_id",),
    "payloads": ("payload_sha256",),
    "quarantine": ("quarantine_id",),
}
# table -> the column its key is derived from, for tables checked without a key index
SCOPED_BY: dict[str, str] = {"observations": "polled_at"}


class Warehouse:
    """The DuckDB warehouse file. Holds only its location: connections are opened per use."""

    def __init__(self, path: Path | str, *, lock_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.lock_timeout_s = lock_timeout_s

    def __repr__(self) -> str:
        return f"Warehouse({str(self.path)!r})"

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A UTC connection; read-write ones are migrated to the latest schema first."""
        con = connect(self.path, read_only=read_only, lock_timeout_s=self.lock_timeout_s)
        try:
            if not read_only:
                # Threads of one process migrating a new file at once would both create its
                # tables and conflict; one at a time, the second finds nothing to do.
                with _MIGRATING:
                    migrate(con)
            yield con
        finally:
            close(con)

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection inside one transaction, committed on success."""
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def read(
        self, sql: str, params: Sequence[Any] | None = None, *, read_only: bool = False
    ) -> pl.DataFrame:
        """Run one query and return its result as a polars frame."""
        with self.connect(read_only=read_only) as con:
            return query(con, sql, params)

    def initialise(self) -> None:
        """Create the file and apply migrations."""
        with self.connect():
            pass


def query(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None
) -> pl.DataFrame:
    """Run `sql` on an open connection; the result as polars."""
    return con.sql(sql, params=list(params) if params else None).pl()


def first_row(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None
) -> tuple[Any, ...]:
    """The first row of a statement's result, with the result fully consumed.

    A partly fetched `execute()` result blocks every later statement on the connection.
    """
    rows = con.execute(sql, list(params) if params else None).fetchall()
    return tuple(rows[0]) if rows else ()


def derived_state(con: duckdb.DuckDBPyConnection, name: str) -> datetime | None:
    """The time stored under `name` in `derived_state` (None: not set)."""
    row = first_row(con, "SELECT value FROM derived_state WHERE name = ?", [name])
    return row[0] if row else None


def set_derived_state(con: duckdb.DuckDBPyConnection, name: str, value: datetime | None) -> None:
    """Store `value` under `name` in `derived_state`."""
    con.execute(
        "INSERT OR REPLACE INTO derived_state (name, value, updated_at) VALUES (?, ?, now())",
        [name, value],
    )


def _may_repeat(frame: pl.DataFrame, key: list[str]) -> bool:
    """Whether some key may occur twice in `frame`: its keys' hashes are not all distinct.

    Equal keys hash alike, so a repeat is never missed; a collision only sends the batch
    through the deduplication. Counting hashes took 0.10 s of a 4.75 M-row batch where
    counting the string keys took 0.62 s (and deduplicating three times that)."""
    return bool(frame.select(pl.struct(key).hash().n_unique()).item() < frame.height)


def append(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> int:
    """Insert `frame` into `table`, skipping rows whose key is already stored.

    Returns:
        The number of rows actually inserted.
    """
    if frame.is_empty():
        return 0
    key = list(KEYS[table])
    if _may_repeat(frame, key):
        frame = frame.unique(subset=key, keep="first", maintain_order=True)
    scope = SCOPED_BY.get(table)
    with registered(con, _BATCH_VIEW, frame):
        if scope is None:
            sql = f"INSERT OR IGNORE INTO {table} BY NAME SELECT * FROM {_BATCH_VIEW}"
            return int(first_row(con, sql)[0])
        # The bounds go in as values, not subqueries, so the scan skips every row group whose
        # min/max statistics lie outside them.
        span = [frame[scope].min(), frame[scope].max()]
        within = f"FROM {table} WHERE {scope} BETWEEN ? AND ?"
        if not first_row(con, f"SELECT count(*) {within}", span)[0]:
            # Nothing stored in the batch's span (a bulk load, a tick past the newest poll):
            # no key to check. The check costs half the insert at 4.7 M rows.
            return int(
                first_row(con, f"INSERT INTO {table} BY NAME SELECT * FROM {_BATCH_VIEW}")[0]
            )
        sql = (
            f"INSERT INTO {table} BY NAME SELECT * FROM {_BATCH_VIEW} "
            f"WHERE ({', '.join(key)}) NOT IN (SELECT {', '.join(key)} {within})"
        )
        return int(first_row(con, sql, span)[0])


def append_new(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> pl.DataFrame:
    """`append`, returning the rows it stored: those whose key was not stored yet (for
    bookkeeping that must count each row once, such as a poll log folded in again)."""
    if frame.is_empty():
        return frame
    key = list(KEYS[table])
    frame = frame.unique(subset=key, keep="first", maintain_order=True)
    scope = SCOPED_BY.get(table)
    with registered(con, _BATCH_VIEW, frame.select(key)):
        sql = f"SELECT {', '.join(key)} FROM {table} WHERE ({', '.join(key)}) IN "
        sql += f"(SELECT {', '.join(key)} FROM {_BATCH_VIEW})"
        params = None
        if scope is not None:
            sql += f" AND {scope} BETWEEN ? AND ?"
            params = [frame[scope].min(), frame[scope].max()]
        stored = query(con, sql, params)
    new = frame.join(stored, on=key, how="anti")
    append(con, table, new)
    return new


def tables_exist(
    con: duckdb.DuckDBPyConnection, tables: Sequence[str], *, database: str | None = None
) -> bool:
    """Whether every one of `tables` is a table of `database` (default: the connection's)."""
    row = first_row(
        con,
        "SELECT count(DISTINCT table_name) FROM information_schema.tables "
        "WHERE table_catalog = coalesce(?, current_database()) AND table_schema = 'main' "
        "AND table_name IN (SELECT unnest(?::VARCHAR[]))",
        [database, list(tables)],
    )
    return int(row[0]) == len(set(tables))


def described(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    """(column, type) of a table or a query's result."""
    return [(name, dtype) for name, dtype, *_ in con.execute(f"DESCRIBE {relation}").fetchall()]


def declare_table(con: duckdb.DuckDBPyConnection, table: str, relation: str) -> None:
    """Create (or replace) `table` empty with the columns of `relation` (a table or a query).
    Declared, not created by `CREATE TABLE ... AS` an empty result: DuckDB 2.0 gives such a
    table statistics that later inserts in the same transaction do not widen, so its filters
    and joins then miss those rows."""
    columns = ", ".join(f'"{name}" {dtype}' for name, dtype in described(con, relation))
    con.execute(f"CREATE OR REPLACE TABLE {table} ({columns})")


def replace_table(
    con: duckdb.DuckDBPyConnection,
    table: str,
    frame: pl.DataFrame,
    *,
    computed: Mapping[str, str] | None = None,
) -> int:
    """Replace a derived table with `frame` (derived tables can always be rebuilt), plus the
    `computed` columns (name → SQL expression over the frame's columns)."""
    extra = "".join(f", {sql} AS {name}" for name, sql in (computed or {}).items())
    select = f"SELECT *{extra} FROM {_BATCH_VIEW}"
    with registered(con, _BATCH_VIEW, frame):
        if frame.height:
            con.execute(f"CREATE OR REPLACE TABLE {table} AS {select}")
        else:
            declare_table(con, table, select)
    return frame.height


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> Iterator[None]:
    """`frame` visible to SQL as view `name` (zero-copy through Arrow) for the block's duration."""
    # Arrow's string views are polars' own strings: the default (large strings) copied every
    # string, 0.8 s of a 4.75 M-row bulk load's 4.3 s.
    con.register(name, frame.to_arrow(compat_level=pl.CompatLevel.newest()))
    yield
    # Not in a `finally`: after a failed statement the transaction is aborted, unregistering
    # would fail too and hide the real error. The view dies with the connection anyway.
    con.unregister(name)

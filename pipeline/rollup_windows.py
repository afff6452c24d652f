"""The rollups read by scorecard window, with the rows older than every window summed once.

The scorecard and the error mix read the rollups by window (`rollups_by_window`): each row's
minute moved to the start of the shortest window ending at the refresh that holds it, and
equal keys summed. Over a year and a half that reads every hour of every provider (2.96 M
latency rows at 8.3 M orders, growing with the history) to learn of nearly all of them only
that they are older than every window. So the rows before an aging line (as the record cells'
line, `pipeline.cells.aging_line`: the start of the day before the longest window ending at
the newest poll, moved at most once a day) are kept summed by their other keys in a private
table per rollup (`AGED_TABLES`), and a read sums those with the rows since the line.

Only a rollup refresh changes rollup rows. One that rewrites rows before the line (a full
build; late polls counted again from before it) drops the sums (`forget_aged_rollups`), and
the next aging counts them afresh; folding minutes into hours keeps every sum as it is.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import polars as pl

from pipeline.analytics.rollups import LATENCY_KEYS, POLL_KEYS
from pipeline.analytics.scorecard import WINDOWS, window_start_sql
from pipeline.cells import aging_line
from pipeline.warehouse.schema import LATENCY_ROLLUP_COLUMNS, POLL_ROLLUP_COLUMNS
from pipeline.warehouse.store import (
    declare_table,
    derived_state,
    query,
    set_derived_state,
    tables_exist,
)

ROLLUP_TABLES: dict[str, tuple[str, ...]] = {
    "poll_rollups": POLL_KEYS,
    "latency_rollups": LATENCY_KEYS,
}
"""The rollup tables (created by migration 6) and their keys (`pipeline.analytics.rollups`)."""
ROLLUP_SCHEMAS = {"poll_rollups": POLL_ROLLUP_COLUMNS, "latency_rollups": LATENCY_ROLLUP_COLUMNS}
AGED_TABLES = {table: f"_{table}_aged" for table in ROLLUP_TABLES}
"""Rollup table → its rows before the aging line, summed by every key but `minute`
(bookkeeping: the leading `_` keeps it out of the published copy)."""
AGED_STATE = "rollups_aged_before"
"""`derived_state` entry: the aging line the sums in `AGED_TABLES` stop at."""
_LONGEST_WINDOW = max(length for length in WINDOWS.values() if length is not None)


def rollups_by_window(con: duckdb.DuckDBPyConnection, table: str, as_of: datetime) -> pl.DataFrame:
    """A rollup table with each `minute` moved to the start of the shortest scorecard window
    ending at `as_of` holding it and equal keys summed: what the scorecard and the error mix
    read, in rows that follow providers and windows, not the length of the history. Rows
    before the aging line come from their sums when every window starts after it."""
    keys = ROLLUP_TABLES[table]
    counts = _counts(table)
    columns = [f"{window_start_sql('minute', as_of)} AS minute" if c == "minute" else c
               for c in keys]  # fmt: skip
    sums = ", ".join(f"sum({c})::BIGINT AS {c}" for c in counts)
    line = aged_before(con)
    source = table
    if line is not None and line <= as_of - _LONGEST_WINDOW:
        # Summed rows stand at the instant before the line: older than every window.
        before = f"TIMESTAMPTZ '{(line - timedelta(microseconds=1)).isoformat()}' AS minute"
        aged = ", ".join(before if c == "minute" else c for c in keys)
        plain = ", ".join((*keys, *counts))
        source = (
            f"(SELECT {aged}, {', '.join(counts)} FROM {AGED_TABLES[table]} UNION ALL "
            f"SELECT {plain} FROM {table} WHERE minute >= TIMESTAMPTZ '{line.isoformat()}')"
        )
    return query(con, f"SELECT {', '.join(columns)}, {sums} FROM {source} GROUP BY ALL")


def aged_before(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The aging line of the stored sums; None when there are none to read."""
    line = derived_state(con, AGED_STATE)
    if line is None or not tables_exist(con, list(AGED_TABLES.values())):
        return None
    return line


def age_rollups(con: duckdb.DuckDBPyConnection, newest: datetime | None) -> None:
    """Move the aging line up for `newest` (the newest poll) when that is past where it is,
    adding the rows between the two lines to the sums (every row before it when there are
    none)."""
    line = aging_line(newest)
    current = aged_before(con)
    if line is None or (current is not None and line <= current):
        return
    since = "" if current is None else f"minute >= TIMESTAMPTZ '{current.isoformat()}' AND "
    for table, aged in AGED_TABLES.items():
        others = [c for c in ROLLUP_TABLES[table] if c != "minute"]
        counts = _counts(table)
        sums = ", ".join(f"sum({c})::BIGINT AS {c}" for c in counts)
        rows = (
            f"SELECT {', '.join(others)}, {', '.join(counts)} FROM {table} "
            f"WHERE {since}minute < TIMESTAMPTZ '{line.isoformat()}'"
        )
        if current is not None:
            rows += f" UNION ALL SELECT {', '.join(others)}, {', '.join(counts)} FROM {aged}"
        summed = f"SELECT {', '.join(others)}, {sums} FROM ({rows}) GROUP BY ALL"
        con.execute(f"CREATE OR REPLACE TEMP TABLE _aged_sums AS {summed}")
        declare_table(con, aged, "_aged_sums")  # then filled, since it may be empty
        con.execute(f"INSERT INTO {aged} SELECT * FROM _aged_sums")
        con.execute("DROP TABLE _aged_sums")
    set_derived_state(con, AGED_STATE, line)


def forget_aged_rollups(con: duckdb.DuckDBPyConnection, rewritten_from: datetime | None) -> None:
    """A refresh rewrites the rollup rows from `rewritten_from` on (None: every row): drop the
    sums when that reaches before their line."""
    line = aged_before(con)
    if line is not None and (rewritten_from is None or rewritten_from < line):
        set_derived_state(con, AGED_STATE, None)


def _counts(table: str) -> list[str]:
    return [c for c in ROLLUP_SCHEMAS[table] if c not in ROLLUP_TABLES[table]]

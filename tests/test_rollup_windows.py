"""The rollups read by scorecard window (`pipeline.rollup_windows`): with the rows older than
every window summed once, a read gives what summing every rollup row gives, refresh after
refresh, and after late polls rewrite rows from before the aging line."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
from daily_orders import daily_orders, refreshed_at_once, store, store_until
from polars.testing import assert_frame_equal

from pipeline.analytics.scorecard import window_start_sql
from pipeline.derived import refresh_derived
from pipeline.rollup_windows import (
    AGED_TABLES,
    ROLLUP_SCHEMAS,
    ROLLUP_TABLES,
    aged_before,
    rollups_by_window,
)
from pipeline.warehouse import Warehouse, query


def _every_row_summed(warehouse: Warehouse, table: str, as_of: datetime) -> pl.DataFrame:
    """The table by window, summed from every rollup row."""
    keys = ROLLUP_TABLES[table]
    columns = [f"{window_start_sql('minute', as_of)} AS minute" if c == "minute" else c
               for c in keys]  # fmt: skip
    sums = [f"sum({c})::BIGINT AS {c}" for c in ROLLUP_SCHEMAS[table] if c not in keys]
    with warehouse.transaction() as con:
        return query(con, f"SELECT {', '.join(columns + sums)} FROM {table} GROUP BY ALL")


def _assert_reads_every_row(warehouse: Warehouse, as_of: datetime) -> None:
    for table in ROLLUP_TABLES:
        with warehouse.transaction() as con:
            read = rollups_by_window(con, table, as_of)
        expected = _every_row_summed(warehouse, table, as_of)
        assert read.height > 0, table
        assert_frame_equal(read.sort(read.columns), expected.sort(read.columns))


def _aged_rows(warehouse: Warehouse) -> int:
    return sum(
        int(warehouse.read(f"SELECT count(*) AS n FROM {aged}")["n"][0])
        for aged in AGED_TABLES.values()
    )


def test_rows_before_the_aging_line_are_read_from_their_sums(warehouse: Warehouse) -> None:
    newest = refreshed_at_once(warehouse)
    with warehouse.transaction() as con:
        line = aged_before(con)
    assert line is not None and line <= newest - timedelta(days=30)
    assert _aged_rows(warehouse) > 0
    older = warehouse.read("SELECT count(*) AS n FROM latency_rollups WHERE minute < ?", [line])[
        "n"
    ][0]
    assert _aged_rows(warehouse) < older, "a sum stands for many rows"
    for as_of in (newest, newest + timedelta(days=3), newest - timedelta(days=20)):
        _assert_reads_every_row(warehouse, as_of)  # the last one reads every row


def test_refresh_after_refresh_the_line_moves_and_reads_stay_exact(warehouse: Warehouse) -> None:
    orders, observations = daily_orders()
    first = orders["registered_at"].min()
    assert isinstance(first, datetime)
    lines = []
    for day in (33, 36, 41):
        end = first + timedelta(days=day)
        store_until(warehouse, orders, observations, end)
        refresh_derived(warehouse, as_of=end)
        with warehouse.transaction() as con:
            lines.append(aged_before(con))
        _assert_reads_every_row(warehouse, end)
    assert None not in lines and lines == sorted(lines) and lines[0] != lines[-1]


def test_late_polls_from_before_the_line_are_counted(warehouse: Warehouse) -> None:
    newest = refreshed_at_once(warehouse)
    with warehouse.transaction() as con:
        line = aged_before(con)
        before = rollups_by_window(con, "poll_rollups", newest)["polls"].sum()
    assert line is not None
    _, observations = daily_orders()
    # Polls found late (a poller's spool sent after a long outage), made before the line.
    late = observations.filter(pl.col("polled_at") < line - timedelta(days=2)).head(5)
    assert late.height == 5
    store(warehouse, "observations", late.with_columns(pl.col("attempt") + 10))
    refresh_derived(warehouse, as_of=newest)
    with warehouse.transaction() as con:
        assert aged_before(con) == line
        after = rollups_by_window(con, "poll_rollups", newest)["polls"].sum()
    assert after == before + 5
    _assert_reads_every_row(warehouse, newest)

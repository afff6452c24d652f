"""The stored record cells (`pipeline.cells`): refresh after refresh, and as orders age out of
the scorecard's windows, they hold exactly what counting every record gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
from daily_orders import DAYS, daily_orders, refreshed_at_once, store_until
from polars.testing import assert_frame_equal

from pipeline.cells import (
    AGE_MARGIN,
    AGED,
    CELL_TABLES,
    age_cells,
    aged_before,
    count_record_cells,
    read_record_cells,
)
from pipeline.derived import refresh_derived
from pipeline.warehouse import Warehouse


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns, nulls_last=True)


def _assert_stored_equal_counted(warehouse: Warehouse, as_of: datetime) -> None:
    with warehouse.transaction() as con:
        stored, counted = read_record_cells(con, as_of), count_record_cells(con, as_of)
    for table in CELL_TABLES:
        assert stored[table].height > 0, table
        assert_frame_equal(_sorted(stored[table]), _sorted(counted[table]))


def test_stored_cells_follow_each_refresh_and_age_out_of_the_windows(
    warehouse: Warehouse,
) -> None:
    orders, observations = daily_orders()
    first = orders["registered_at"].min()
    assert isinstance(first, datetime)
    # Day by day, as a live deployment grows: each refresh adds a day of orders and polls.
    for day in range(DAYS):
        end = first + timedelta(days=day + 1)
        store_until(warehouse, orders, observations, end)
        refresh_derived(warehouse, as_of=end)
        if day in (0, 10, DAYS - 1):
            _assert_stored_equal_counted(warehouse, end)
    newest = orders["registered_at"].max()
    assert isinstance(newest, datetime)
    with warehouse.transaction() as con:
        line = aged_before(con)
        aged = con.sql(
            f"SELECT sum(orders) FROM _completion_cells WHERE registered_at = {AGED}"
        ).fetchall()[0][0]
        stored_rows = con.sql("SELECT count(*) FROM _completion_cells").fetchall()[0][0]
    assert line is not None
    assert newest - timedelta(days=30) - AGE_MARGIN - timedelta(days=1) < line
    # The orders of the days before the line hold no registration time any more, and collapse.
    aged_orders = orders.filter(pl.col("registered_at") < line).height
    assert aged == aged_orders > 0
    assert stored_rows < orders.height
    # Every window's figures are as counting the records gives, now and a day later; windows
    # reaching back before the line are counted from the records.
    as_of = first + timedelta(days=DAYS)
    _assert_stored_equal_counted(warehouse, as_of)
    _assert_stored_equal_counted(warehouse, as_of + timedelta(days=1))
    with warehouse.transaction() as con:
        past = read_record_cells(con, first + timedelta(days=20))["completion_records"]
        counted = count_record_cells(con, first + timedelta(days=20))["completion_records"]
    assert_frame_equal(_sorted(past), _sorted(counted))
    # The stored cells load into polars as they are; a time without a zone is read as UTC.
    stored_cells = warehouse.read("SELECT * FROM _completion_cells")
    assert min(stored_cells["registered_at"].to_list()).year == 1
    with warehouse.transaction() as con:
        naive = read_record_cells(con, as_of.replace(tzinfo=None))["completion_records"]
    assert_frame_equal(_sorted(naive), _sorted(_counted_completion(warehouse, as_of)))


def _counted_completion(warehouse: Warehouse, as_of: datetime) -> pl.DataFrame:
    with warehouse.transaction() as con:
        return count_record_cells(con, as_of)["completion_records"]


def test_a_registration_in_the_future_does_not_age_every_order(warehouse: Warehouse) -> None:
    """A registration time far ahead (a unit mixed up upstream) moves the aging line no later
    than today's windows allow, so the stored cells stay in use."""
    refreshed_at_once(warehouse)
    with warehouse.transaction() as con:
        age_cells(con, datetime(2200, 1, 1, tzinfo=UTC))
        line = aged_before(con)
    assert line is not None
    assert line <= datetime.now(UTC) - timedelta(days=31)


def test_cells_are_rebuilt_when_missing(warehouse: Warehouse) -> None:
    """A warehouse from before the cells were stored gets them on its next refresh."""
    newest = refreshed_at_once(warehouse)
    with warehouse.connect() as con:
        con.execute("DROP TABLE _completion_cells")
    refresh_derived(warehouse, as_of=newest)
    _assert_stored_equal_counted(warehouse, newest)

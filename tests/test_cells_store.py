"""The stored record cells (`pipeline.cells`): refresh after refresh, and as orders age out of
the scorecard's windows, they hold exactly what counting every record gives."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
from analytics.synthetic import SmsReceiveLifecycle, observation_log
from polars.testing import assert_frame_equal

from pipeline.cells import (
    AGE_MARGIN,
    AGED,
    CELL_TABLES,
    aged_before,
    count_record_cells,
    read_record_cells,
)
from pipeline.derived import refresh_derived
from pipeline.warehouse import Warehouse, append
from pipeline.warehouse.frames import observation_id
from pipeline.warehouse.schema import OBSERVATION_COLUMNS, ORDER_COLUMNS

DAYS = 40
"""Days over which batches of orders are registered: the oldest age past every window."""


def _batches() -> tuple[pl.DataFrame, pl.DataFrame]:
    """A batch of SMS orders registered on each of `DAYS` days, a day apart."""
    log = observation_log(
        SmsReceiveLifecycle(),
        n_orders=6,
        rng=np.random.default_rng(11),
        creation_span_s=600,
        cutoff_s=1800,
        error_rate=0.0,
        unknown_rate=0.0,
    )
    orders, observations = [], []
    for day in range(DAYS):
        shift = timedelta(days=day)
        renamed = pl.col("order_id") + f"-d{day}"
        orders.append(
            log.orders.with_columns(renamed, pl.col("registered_at", "created_at") + shift)
        )
        observations.append(log.observations.with_columns(renamed, pl.col("polled_at") + shift))
    return pl.concat(orders), pl.concat(observations)


def _store(warehouse: Warehouse, table: str, frame: pl.DataFrame) -> None:
    columns = ORDER_COLUMNS if table == "orders" else OBSERVATION_COLUMNS
    if table == "observations":
        frame = frame.with_columns(
            observation_id=pl.struct("provider", "order_id", "polled_at", "attempt").map_elements(
                lambda r: observation_id(
                    r["provider"], r["order_id"], r["polled_at"], r["attempt"]
                ),
                return_dtype=pl.String,
            )
        )
    conformed = frame.select(
        (pl.col(c) if c in frame.columns else pl.lit(None)).cast(t).alias(c)
        for c, t in columns.items()
    )
    with warehouse.transaction() as con:
        append(con, table, conformed)


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
    orders, observations = _batches()
    first = orders["registered_at"].min()
    assert isinstance(first, datetime)
    # Day by day, as a live deployment grows: each refresh adds a day of orders and polls.
    for day in range(DAYS):
        end = first + timedelta(days=day + 1)
        _store(warehouse, "orders", orders.filter(pl.col("registered_at") < end))
        _store(warehouse, "observations", observations.filter(pl.col("polled_at") < end))
        refresh_derived(warehouse, as_of=end)
        if day in (0, 10, DAYS - 1):
            _assert_stored_equal_counted(warehouse, end)
    newest = orders["registered_at"].max()
    assert isinstance(newest, datetime)
    with warehouse.transaction() as con:
        line = aged_before(con)
        aged = con.sql(
            f"SELECT sum(orders) FROM completion_cells WHERE registered_at = {AGED}"
        ).fetchall()[0][0]
        stored_rows = con.sql("SELECT count(*) FROM completion_cells").fetchall()[0][0]
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


def test_cells_are_rebuilt_when_missing(warehouse: Warehouse) -> None:
    """A warehouse from before the cells were stored gets them on its next refresh."""
    orders, observations = _batches()
    _store(warehouse, "orders", orders)
    _store(warehouse, "observations", observations)
    newest = observations["polled_at"].max()
    assert isinstance(newest, datetime)
    refresh_derived(warehouse, as_of=newest)
    with warehouse.connect() as con:
        con.execute("DROP TABLE completion_cells")
    refresh_derived(warehouse, as_of=newest)
    _assert_stored_equal_counted(warehouse, newest)

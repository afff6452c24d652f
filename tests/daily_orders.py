"""Orders registered in daily batches over weeks, with their polls: enough days for orders to
age out of every scorecard window, and hundreds of hours of creation."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
from analytics.synthetic import SmsReceiveLifecycle, observation_log

from pipeline.derived import refresh_derived
from pipeline.warehouse import Warehouse, append
from pipeline.warehouse.frames import observation_id
from pipeline.warehouse.schema import OBSERVATION_COLUMNS, ORDER_COLUMNS

DAYS = 40
"""Days over which batches of orders are registered: the oldest age past every window."""


def daily_orders() -> tuple[pl.DataFrame, pl.DataFrame]:
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


def store(warehouse: Warehouse, table: str, frame: pl.DataFrame) -> None:
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


def store_until(
    warehouse: Warehouse, orders: pl.DataFrame, observations: pl.DataFrame, end: datetime
) -> None:
    """Store the orders registered and the polls made before `end`."""
    store(warehouse, "orders", orders.filter(pl.col("registered_at") < end))
    store(warehouse, "observations", observations.filter(pl.col("polled_at") < end))


def refreshed_at_once(warehouse: Warehouse) -> datetime:
    """Every day's orders and polls stored and refreshed at once; the newest poll (the
    refresh's `as_of`)."""
    orders, observations = daily_orders()
    store(warehouse, "orders", orders)
    store(warehouse, "observations", observations)
    newest = observations["polled_at"].max()
    assert isinstance(newest, datetime)
    refresh_derived(warehouse, as_of=newest)
    return newest

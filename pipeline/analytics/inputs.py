"""Input frames the analytics read, and the shared vocabulary of the analytics layer.

Every public analytics function accepts frames shaped like the warehouse tables (`observations`,
`orders`, `quarantine`, `status_history`). Missing optional columns are filled with nulls and
known columns are cast to the dtypes below, so a hand-built test frame and a frame read back from
DuckDB (where enum states come back as VARCHAR) are treated alike.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from pipeline.model import STATE_VALUES, SUCCESS_STATES, TERMINAL_STATES, OrderState
from pipeline.warehouse.schema import OBSERVATION_COLUMNS, ORDER_COLUMNS
from pipeline.warehouse.schema import UTC_TIME as UTC_TIME  # re-exported: the analytics time type

STATE = pl.Enum(list(STATE_VALUES))
"""Canonical states as a polars Enum (order as in `OrderState`)."""

ORDER_KEY: list[str] = ["provider", "order_id"]
"""An order id is unique only within its provider."""

SUCCESS_STATE_VALUES: tuple[str, ...] = tuple(sorted(s.value for s in SUCCESS_STATES))
TERMINAL_STATE_VALUES: tuple[str, ...] = tuple(sorted(s.value for s in TERMINAL_STATES))
FAILURE_STATE_VALUES: tuple[str, ...] = tuple(
    sorted(s.value for s in TERMINAL_STATES - SUCCESS_STATES)
)
UNKNOWN_STATE = OrderState.UNKNOWN.value

OBSERVATION_FIELDS: tuple[str, ...] = (
    "provider",
    "order_id",
    "order_kind",
    "polled_at",
    "state",
    "is_terminal",
    "error_class",
    "http_status",
    "latency_ms",
    "status_unrecognized",
    "provider_created_at",
    "provider_updated_at",
    "provider_paid_at",
    "service",
    "country",
)
"""The `observations` columns the analytics read (not the whole row)."""
OBSERVATION_INPUT: dict[str, pl.DataType] = {
    name: OBSERVATION_COLUMNS[name] for name in OBSERVATION_FIELDS
}
OBSERVATION_REQUIRED = frozenset({"provider", "order_id", "polled_at", "state"})

ORDER_FIELDS: tuple[str, ...] = (
    "provider",
    "order_id",
    "order_kind",
    "registered_at",
    "created_at",
    "service",
    "country",
)
"""The `orders` columns the analytics read."""
ORDER_INPUT: dict[str, pl.DataType] = {name: ORDER_COLUMNS[name] for name in ORDER_FIELDS}
ORDER_REQUIRED = frozenset({"provider", "order_id", "registered_at"})

QUARANTINE_INPUT: dict[str, pl.DataType] = {"provider": pl.String()}
QUARANTINE_REQUIRED = frozenset({"provider"})


def conform(
    frame: pl.DataFrame,
    columns: Mapping[str, pl.DataType],
    required: frozenset[str],
    *,
    name: str,
) -> pl.DataFrame:
    """`frame` reduced to `columns`, cast to their dtypes, absent optional ones filled with null.

    Args:
        frame: the input frame; extra columns are dropped.
        columns: wanted column names and dtypes, in output order.
        required: columns that must be present.
        name: the input's name, for the error message.

    Raises:
        ValueError: a required column is missing.
    """
    missing = sorted(required - set(frame.columns))
    if missing:
        raise ValueError(f"{name} frame lacks required columns: {', '.join(missing)}")
    return frame.select(
        [
            (pl.col(c) if c in frame.columns else pl.lit(None)).cast(dtype).alias(c)
            for c, dtype in columns.items()
        ]
    )


def conform_observations(observations: pl.DataFrame) -> pl.DataFrame:
    """Observations with the columns the analytics read, in their canonical dtypes."""
    frame = conform(observations, OBSERVATION_INPUT, OBSERVATION_REQUIRED, name="observations")
    return frame.with_columns(
        pl.col("is_terminal").fill_null(False),
        pl.col("status_unrecognized").fill_null(False),
    )


def conform_orders(orders: pl.DataFrame) -> pl.DataFrame:
    """Orders with the columns the analytics read, in their canonical dtypes."""
    return conform(orders, ORDER_INPUT, ORDER_REQUIRED, name="orders")


def is_valid_answer() -> pl.Expr:
    """A poll that produced a valid answer: no transport, HTTP or body error."""
    return pl.col("error_class").is_null()


def is_state_evidence() -> pl.Expr:
    """A poll whose state says something about the order: a valid, recognised answer in one of
    the canonical states. The writer stores nothing else, but rows written by plain SQL can
    hold any text: one outside `STATE_VALUES` says nothing the history can use."""
    known = pl.col("state").is_in(STATE_VALUES) & (pl.col("state") != UNKNOWN_STATE)
    return is_valid_answer() & known.fill_null(False)

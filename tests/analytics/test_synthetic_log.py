"""The synthetic observation-log generator used by the truth tests.

Pins: rows have the warehouse's `observations` / `orders` layout; every valid answer shows the
true state at its poll time; poll errors repeat the last state shown; polling stops at the first
valid terminal answer and never passes the cutoff; the true median helpers agree with each other.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from analytics.synthetic import (
    DEFAULT_START,
    PollCadence,
    SmsReceiveLifecycle,
    observation_log,
    true_cif_median,
    true_conditional_median,
    true_event_times,
)

from pipeline.warehouse.schema import OBSERVATION_COLUMNS, ORDER_COLUMNS

CUTOFF_S = 900.0


@pytest.fixture(scope="module")
def log_and_truth() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    log = observation_log(
        SmsReceiveLifecycle(),
        n_orders=300,
        rng=np.random.default_rng(5),
        creation_span_s=600.0,
        cutoff_s=CUTOFF_S,
        cadence=PollCadence(fast_s=5.0, slow_s=20.0, jitter_s=2.0),
        error_rate=0.2,
        unknown_rate=0.1,
    )
    return log.observations, log.orders, log.truth


def test_frames_have_the_warehouse_layout(
    log_and_truth: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame],
) -> None:
    observations, orders, _ = log_and_truth
    assert observations.schema == pl.Schema(OBSERVATION_COLUMNS)
    assert orders.schema == pl.Schema(ORDER_COLUMNS)
    assert observations["observation_id"].is_unique().all()
    assert orders.height == 300


def test_valid_answers_show_the_true_state(
    log_and_truth: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame],
) -> None:
    observations, _, truth = log_and_truth
    valid = observations.filter(pl.col("error_class").is_null(), pl.col("state") != "unknown")
    checked = valid.sort("polled_at").join_asof(
        truth.sort("at").select("order_id", "at", pl.col("state").alias("true_state")),
        left_on="polled_at",
        right_on="at",
        by="order_id",
        check_sortedness=False,
    )
    assert checked.height > 1000
    assert (checked["state"] == checked["true_state"]).all()


def test_errors_repeat_the_last_state_shown_and_polling_stops_at_a_terminal_answer(
    log_and_truth: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame],
) -> None:
    observations, _, _ = log_and_truth
    rows = observations.sort("order_id", "polled_at").with_columns(
        pl.when(pl.col("error_class").is_null())
        .then(pl.col("state"))
        .forward_fill()
        .shift(1)
        .over("order_id")
        .fill_null("unknown")
        .alias("last_shown")
    )
    errors = rows.filter(pl.col("error_class").is_not_null())
    assert errors.height > 100
    assert (errors["state"] == errors["last_shown"]).all()
    valid_terminal = rows.filter(pl.col("error_class").is_null(), pl.col("is_terminal"))
    assert valid_terminal["order_id"].is_unique().all()
    last_poll = rows.group_by("order_id").agg(pl.col("polled_at").max())
    stopped = valid_terminal.join(last_poll, on="order_id", suffix="_last")
    assert (stopped["polled_at"] == stopped["polled_at_last"]).all()


def test_no_poll_after_the_cutoff(
    log_and_truth: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame],
) -> None:
    observations, _, _ = log_and_truth
    latest = observations["polled_at"].max()
    assert latest is not None
    assert (latest - DEFAULT_START).total_seconds() <= CUTOFF_S


def test_true_medians_agree_with_the_drawn_event_times() -> None:
    lifecycle = SmsReceiveLifecycle(p_no_code=0.0, cancel_mean_s=1e12)
    times = true_event_times(lifecycle, "code_received", n=20_001, seed=1)
    # Nothing competes before the expiry, and few codes take that long: both medians agree.
    assert true_cif_median(lifecycle, "code_received", n=20_001, seed=1) == pytest.approx(
        true_conditional_median(lifecycle, "code_received", n=20_001, seed=1), rel=1e-2
    )
    assert np.isinf(times).mean() < 0.01
    never = SmsReceiveLifecycle(p_no_code=0.6)
    assert true_cif_median(never, "code_received", n=10_000) is None

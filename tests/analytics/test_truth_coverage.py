"""Time-to-code against the truth: seeded lifecycles polled like the poller polls them.

Pins: at realistic polling cadences (with poll errors and unrecognised answers mixed in) the
95 % interval of the median time to code covers the true population median in at least
95 % − 3 binomial standard errors of the replications (≈ 90 % for 200), and the median itself is
unbiased within 3 standard errors; with many orders still open the naive median over finished
orders is biased low, by far more than its standard error, while the censoring-aware median is
not; and where the provider reports its own event time, records use it exactly.

The same coverage holds for the sandbox's own sms4sats and SMSOnline lifecycles
(`pipeline.simulator.lifecycles`). The true median is computed from 100 000–400 000 true
lifecycles on the same scale as the estimate (the cumulative incidence of the code, expiry and
cancellation competing).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import polars as pl
import pytest
from analytics.synthetic import (
    Lifecycle,
    PollCadence,
    SimulatorLifecycle,
    SmsReceiveLifecycle,
    observation_log,
    true_cif_median,
    true_conditional_median,
)

from pipeline.analytics.events import time_to_event_records
from pipeline.analytics.history import build_status_history
from pipeline.analytics.metrics import completion_records, time_to_code

REPLICATIONS = 200
ORDERS_PER_REPLICATION = 150
NOMINAL = 0.95
MIN_COVERAGE = NOMINAL - 3 * math.sqrt(NOMINAL * (1 - NOMINAL) / REPLICATIONS)
LIFECYCLE = SmsReceiveLifecycle()
CODE = "code_received"

CADENCES = {
    # The poller's sms4sats policy: 3–5 s for two minutes, then 10–15 s (PROVIDERS.md §1.8).
    "realistic": PollCadence(fast_s=5.0, fast_for_s=120.0, slow_s=15.0, jitter_s=1.0),
    "relaxed": PollCadence(fast_s=10.0, fast_for_s=120.0, slow_s=30.0, jitter_s=2.0),
    "coarse": PollCadence(fast_s=30.0, fast_for_s=0.0, slow_s=30.0, jitter_s=5.0),
}


@dataclasses.dataclass(frozen=True)
class Replicated:
    """Per-replication estimates, one row per replication."""

    estimates: pl.DataFrame
    open_share: float


def replicate(
    seed: int,
    *,
    cadence: PollCadence,
    creation_span_s: float,
    cutoff_s: float | None,
    lifecycle: Lifecycle = LIFECYCLE,
    provider: str = "sms4sats",
) -> Replicated:
    """REPLICATIONS independent samples in one log: each replication is its own `service`."""
    log = observation_log(
        lifecycle,
        provider=provider,
        n_orders=REPLICATIONS * ORDERS_PER_REPLICATION,
        rng=np.random.default_rng(seed),
        creation_span_s=creation_span_s,
        cutoff_s=cutoff_s,
        cadence=cadence,
        error_rate=0.05,
        unknown_rate=0.02,
        orders_per_service=ORDERS_PER_REPLICATION,
    )
    table = time_to_code(build_status_history(log.observations), log.orders, min_group_orders=0)
    estimates = table.filter(group_level="service")
    assert estimates.height == REPLICATIONS
    # Orders created just before the cutoff may have no valid answer yet: they carry no record.
    assert (estimates["n_orders"] <= ORDERS_PER_REPLICATION).all()
    assert estimates["n_orders"].sum() >= 0.95 * REPLICATIONS * ORDERS_PER_REPLICATION
    open_share = float(estimates["n_censored"].sum() / estimates["n_orders"].sum())
    return Replicated(estimates, open_share)


@pytest.fixture(scope="module")
def true_median() -> float:
    value = true_cif_median(LIFECYCLE, CODE)
    assert value is not None
    return value


def mean_and_se(values: pl.Series) -> tuple[float, float]:
    clean = values.drop_nulls().to_numpy()
    return float(clean.mean()), float(clean.std(ddof=1) / math.sqrt(clean.size))


@pytest.mark.parametrize("cadence", sorted(CADENCES))
def test_median_interval_covers_the_true_median(cadence: str, true_median: float) -> None:
    result = replicate(7, cadence=CADENCES[cadence], creation_span_s=3600.0, cutoff_s=3600.0)
    est = result.estimates
    assert result.open_share > 0.03  # orders created near the cutoff are still open
    covered = (est["median_ci_low_s"] <= true_median) & (est["median_ci_high_s"] >= true_median)
    coverage = float(covered.fill_null(False).mean() or 0.0)
    assert coverage >= MIN_COVERAGE, f"coverage {coverage:.3f} at {cadence} polling"
    mean, se = mean_and_se(est["median_s"])
    assert abs(mean - true_median) <= 3 * se


@pytest.mark.parametrize("provider", ["sms4sats", "smsonline"])
def test_median_interval_covers_the_true_median_of_the_sandbox_lifecycle(provider: str) -> None:
    lifecycle = SimulatorLifecycle(provider, "sms_receive")
    truth = true_cif_median(lifecycle, CODE, n=100_000)
    assert truth is not None
    result = replicate(
        13,
        cadence=CADENCES["realistic"],
        creation_span_s=3600.0,
        cutoff_s=3600.0,
        lifecycle=lifecycle,
        provider=provider,
    )
    est = result.estimates
    covered = (est["median_ci_low_s"] <= truth) & (est["median_ci_high_s"] >= truth)
    coverage = float(covered.fill_null(False).mean() or 0.0)
    assert coverage >= MIN_COVERAGE, f"coverage {coverage:.3f} for {provider}"


def test_naive_median_is_biased_when_many_orders_are_open(true_median: float) -> None:
    conditional = true_conditional_median(LIFECYCLE, CODE)
    light = replicate(11, cadence=CADENCES["realistic"], creation_span_s=3600.0, cutoff_s=None)
    heavy = replicate(11, cadence=CADENCES["realistic"], creation_span_s=300.0, cutoff_s=300.0)
    assert light.open_share == 0.0
    assert heavy.open_share > 0.3

    # With nobody open, the naive median over finished orders estimates the median
    # among orders that get a code ...
    light_naive, light_se = mean_and_se(light.estimates["naive_median_s"])
    assert abs(light_naive - conditional) <= 3 * light_se
    # ... with many still open it falls far below it, since slow codes are not in yet.
    heavy_naive, heavy_se = mean_and_se(heavy.estimates["naive_median_s"])
    assert conditional - heavy_naive > 3 * math.hypot(light_se, heavy_se) + (
        conditional - light_naive
    )
    # The censoring-aware median is unmoved and its interval still covers the truth.
    mean, se = mean_and_se(heavy.estimates["median_s"])
    assert abs(mean - true_median) <= 3 * se
    est = heavy.estimates
    covered = (est["median_ci_low_s"] <= true_median) & (est["median_ci_high_s"] >= true_median)
    assert float(covered.fill_null(False).mean() or 0.0) >= MIN_COVERAGE


@dataclasses.dataclass(frozen=True)
class NotificationLifecycle:
    """Registered → processing → completed, or cancelled: an Altinn-like order."""

    def draw(self, n: int, rng: np.random.Generator) -> pl.DataFrame:
        start = rng.exponential(30.0, n)
        done = start + rng.exponential(120.0, n)
        end = np.where(rng.random(n) < 0.8, "completed", "cancelled")
        index = np.arange(n, dtype=np.int64)
        return pl.DataFrame(
            {
                "order_index": np.concatenate([index, index, index]),
                "state": np.concatenate([np.full(n, "pending"), np.full(n, "processing"), end]),
                "at_s": np.concatenate([np.zeros(n), start, done]),
            }
        ).sort(["order_index", "at_s"])


def test_provider_event_times_make_records_exact() -> None:
    log = observation_log(
        NotificationLifecycle(),
        n_orders=500,
        rng=np.random.default_rng(3),
        provider="altinn",
        order_kind="notification_order",
        cadence=PollCadence(fast_s=60.0, fast_for_s=0.0, slow_s=60.0, jitter_s=5.0),
        provider_event_time=True,
    )
    records = completion_records(build_status_history(log.observations), log.orders)
    truth = log.truth.filter(pl.col("state").is_in(["completed", "cancelled"])).select(
        "order_id", pl.col("at_s").alias("true_s"), pl.col("state").alias("true_state")
    )
    joined = records.join(truth, on="order_id")
    assert joined.height == 500
    assert (joined["time_source"] == "provider").all()
    assert (joined["outcome_state"] == joined["true_state"]).all()
    assert (joined["time_s"] - joined["true_s"]).abs().max() <= 1e-6  # microsecond timestamps
    # The midpoint alone would have been off by up to half a poll interval.
    midpoint = time_to_event_records(
        build_status_history(log.observations.with_columns(provider_updated_at=None)),
        log.orders,
        event_states=["completed"],
    ).join(truth, on="order_id")
    assert (midpoint["time_s"] - midpoint["true_s"]).abs().max() > 1.0

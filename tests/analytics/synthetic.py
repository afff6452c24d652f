"""Synthetic observation logs with known truth, for checking the analytics against it.

A *lifecycle* draws each order's true transitions; the generator polls the orders at a
cadence with jitter, the way the poller does, and writes what the polls would have seen as rows
shaped like the `observations` and `orders` tables. Polling stops at the first valid terminal
answer or at a cutoff, so orders created late are still open (right-censored) when the log ends.
No HTTP is involved; everything is vectorised, so thousands of orders take milliseconds.

The lifecycle protocol is deliberately small: `draw(n, rng)` returns one row per transition
(`order_index`, `state`, `at_s` seconds after creation, the first at 0). `SmsReceiveLifecycle`
is a simple default (lognormal time to code, a share that never gets one, user cancellation and
expiry competing); `SimulatorLifecycle` adapts the sandbox's own per-provider model
(`pipeline.simulator.lifecycles.draw_order`), so the analytics are checked against the same
lifecycles the sandbox serves.
"""

from __future__ import annotations

import dataclasses
import math
import random
from datetime import UTC, datetime
from typing import Protocol

import numpy as np
import polars as pl

from pipeline.analytics.inputs import TERMINAL_STATE_VALUES
from pipeline.model import ErrorClass, OrderKind, OrderState
from pipeline.simulator.lifecycles import draw_order
from pipeline.warehouse.schema import OBSERVATION_COLUMNS, ORDER_COLUMNS

TRUTH_COLUMNS: dict[str, pl.DataType] = {
    "order_index": pl.Int64(),
    "state": pl.String(),
    "at_s": pl.Float64(),
}
"""Columns a lifecycle's `draw` returns."""

DEFAULT_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
LATENCY_MEDIAN_MS = 120.0
LATENCY_SIGMA = 0.5
POLL_MARGIN_S = 120.0
"""Polls are scheduled this long past an order's last transition (then cut at the terminal)."""


class Lifecycle(Protocol):
    """Draws true order lifecycles."""

    def draw(self, n: int, rng: np.random.Generator) -> pl.DataFrame:
        """True transitions of `n` orders: columns `TRUTH_COLUMNS`, sorted by order and time."""
        ...


@dataclasses.dataclass(frozen=True)
class SmsReceiveLifecycle:
    """An sms4sats-like receive order: pending → processing (paid) → one terminal state.

    After payment, the code arrives after a lognormal delay unless the order never gets one;
    the user may cancel (no earlier than `cancel_after_s` after payment) and the provider expires
    the order `expiry_s` after payment, seen `expiry_seen_s` later. Whatever comes first wins.
    """

    pay_mean_s: float = 15.0
    code_median_s: float = 60.0
    code_sigma: float = 0.8
    p_no_code: float = 0.15
    cancel_after_s: float = 120.0
    cancel_mean_s: float = 1800.0
    expiry_s: float = 21 * 60.0
    expiry_seen_s: float = 60.0

    def draw(self, n: int, rng: np.random.Generator) -> pl.DataFrame:
        """True transitions of `n` orders (see `Lifecycle.draw`)."""
        pay = rng.exponential(self.pay_mean_s, n)
        code = np.exp(np.log(self.code_median_s) + self.code_sigma * rng.standard_normal(n))
        code[rng.random(n) < self.p_no_code] = np.inf
        cancel = self.cancel_after_s + rng.exponential(self.cancel_mean_s, n)
        expire = np.full(n, self.expiry_s + self.expiry_seen_s)
        delays = np.stack([code, cancel, expire])
        winner = delays.argmin(axis=0)
        end_states = np.array(
            [OrderState.CODE_RECEIVED.value, OrderState.CANCELLED.value, OrderState.EXPIRED.value]
        )
        index = np.arange(n, dtype=np.int64)
        return pl.DataFrame(
            {
                "order_index": np.concatenate([index, index, index]),
                "state": np.concatenate(
                    [
                        np.full(n, OrderState.PENDING.value),
                        np.full(n, OrderState.PROCESSING.value),
                        end_states[winner],
                    ]
                ),
                "at_s": np.concatenate([np.zeros(n), pay, pay + delays.min(axis=0)]),
            },
            schema=TRUTH_COLUMNS,
        ).sort(["order_index", "at_s"], maintain_order=True)


@dataclasses.dataclass(frozen=True)
class SimulatorLifecycle:
    """The sandbox's lifecycle model for one provider and order kind, as a `Lifecycle`.

    Draws each order with `draw_order` (service and country drawn from the provider's tables
    unless fixed here), seeded from `rng`, and keeps the canonical state of each transition.
    """

    provider: str
    order_kind: str
    profile: str = "realistic"
    service: str | None = None
    country: str | None = None

    def draw(self, n: int, rng: np.random.Generator) -> pl.DataFrame:
        """True transitions of `n` orders (see `Lifecycle.draw`)."""
        source = random.Random(int(rng.integers(2**63)))
        index: list[int] = []
        states: list[str] = []
        at_s: list[float] = []
        for i in range(n):
            truth = draw_order(
                self.provider,
                self.order_kind,
                source,
                DEFAULT_START,
                self.profile,
                self.service,
                self.country,
            )
            for transition in truth.transitions:
                index.append(i)
                states.append(transition.state)
                at_s.append((transition.at - DEFAULT_START).total_seconds())
        return pl.DataFrame(
            {"order_index": index, "state": states, "at_s": at_s}, schema=TRUTH_COLUMNS
        ).sort(["order_index", "at_s"], maintain_order=True)


@dataclasses.dataclass(frozen=True)
class PollCadence:
    """Every `fast_s` for the first `fast_for_s` seconds, then every `slow_s`; each poll moves by
    up to ±`jitter_s` and the first comes uniformly within one fast interval of creation."""

    fast_s: float = 5.0
    fast_for_s: float = 120.0
    slow_s: float = 15.0
    jitter_s: float = 1.0

    def offsets(self, horizon_s: float) -> np.ndarray:
        """Nominal poll offsets from the first poll, covering `horizon_s`."""
        fast = np.arange(0.0, self.fast_for_s, self.fast_s)
        slow = np.arange(self.fast_for_s, horizon_s + self.slow_s, self.slow_s)
        return np.concatenate([fast, slow])


@dataclasses.dataclass(frozen=True)
class SyntheticLog:
    """A generated log and its truth."""

    orders: pl.DataFrame
    """Rows shaped like the `orders` table."""
    observations: pl.DataFrame
    """Rows shaped like the `observations` table."""
    truth: pl.DataFrame
    """True transitions with `provider`, `order_id`, `state`, `at` (UTC) and `at_s`."""


def observation_log(
    lifecycle: Lifecycle,
    *,
    n_orders: int,
    rng: np.random.Generator,
    provider: str = "sms4sats",
    order_kind: str = OrderKind.SMS_RECEIVE.value,
    start: datetime = DEFAULT_START,
    creation_span_s: float = 3600.0,
    cutoff_s: float | None = None,
    cadence: PollCadence | None = None,
    error_rate: float = 0.0,
    unknown_rate: float = 0.0,
    orders_per_service: int | None = None,
    provider_created_at: bool = False,
    provider_event_time: bool = False,
) -> SyntheticLog:
    """Poll synthetic orders and record what the polls saw.

    Args:
        lifecycle: draws the true transitions.
        n_orders: how many orders.
        rng: the random source (seed it).
        provider: provider slug written on every row.
        order_kind: order kind written on every row.
        start: creation time of the earliest possible order.
        creation_span_s: orders are created uniformly over [start, start + span).
        cutoff_s: no polls after start + cutoff (orders still open then are censored); None
            polls every order to its end.
        cadence: the polling cadence (default `PollCadence()`).
        error_rate: share of polls that fail (HTTP 500; the state repeats the last one seen).
        unknown_rate: share of valid answers with an unrecognised status (state `unknown`).
        orders_per_service: when set, consecutive blocks of this many orders get their own
            `service` ("s0", "s1", ...), e.g. one per replication.
        provider_created_at: write the creation time as `provider_created_at` on valid answers
            (else it goes to `orders.created_at` only).
        provider_event_time: write the true time of the terminal transition as
            `provider_updated_at` on terminal answers.

    Returns:
        The orders, the observations and the truth.
    """
    cadence = cadence or PollCadence()
    truth = lifecycle.draw(n_orders, rng).with_columns(
        pl.col("state").is_in(list(TERMINAL_STATE_VALUES)).alias("is_terminal")
    )
    created_s = rng.uniform(0.0, creation_span_s, n_orders)
    last_change = truth.group_by("order_index").agg(pl.col("at_s").max()).sort("order_index")
    horizon = float(last_change["at_s"].to_numpy().max(initial=0.0)) + POLL_MARGIN_S
    nominal = cadence.offsets(horizon)
    first = rng.uniform(0.0, cadence.fast_s, (n_orders, 1))
    jitter = rng.uniform(-cadence.jitter_s, cadence.jitter_s, (n_orders, nominal.size))
    jitter[:, 0] = 0.0
    offsets = first + nominal[None, :] + jitter
    polls = pl.DataFrame(
        {
            "order_index": np.repeat(np.arange(n_orders, dtype=np.int64), nominal.size),
            "poll_s": offsets.ravel(),
            "is_error": rng.random(offsets.size) < error_rate,
            "is_unrecognised": rng.random(offsets.size) < unknown_rate,
            "latency_ms": np.exp(
                math.log(LATENCY_MEDIAN_MS) + LATENCY_SIGMA * rng.standard_normal(offsets.size)
            ),
            "created_s": np.repeat(created_s, nominal.size),
        }
    )
    polls = polls.join(
        last_change.rename({"at_s": "_last_change_s"}), on="order_index", how="left"
    ).filter(pl.col("poll_s") <= pl.col("_last_change_s") + POLL_MARGIN_S)
    if cutoff_s is not None:
        polls = polls.filter(pl.col("created_s") + pl.col("poll_s") <= cutoff_s)
    seen = polls.sort("poll_s").join_asof(
        truth.sort("at_s"),
        left_on="poll_s",
        right_on="at_s",
        by="order_index",
        strategy="backward",
        check_sortedness=False,
    )
    seen = _stop_at_first_terminal(seen.sort(["order_index", "poll_s"]))
    seen = _apply_faults(seen)
    orders, observations = _tables(
        seen,
        created_s=created_s,
        start=start,
        provider=provider,
        order_kind=order_kind,
        orders_per_service=orders_per_service,
        provider_created_at=provider_created_at,
        provider_event_time=provider_event_time,
    )
    truth_out = truth.join(
        pl.DataFrame({"order_index": np.arange(n_orders, dtype=np.int64), "created_s": created_s}),
        on="order_index",
    ).select(
        pl.lit(provider).alias("provider"),
        _order_id(),
        "state",
        "at_s",
        _at(start, pl.col("created_s") + pl.col("at_s")).alias("at"),
    )
    return SyntheticLog(orders=orders, observations=observations, truth=truth_out)


def _at(start: datetime, seconds: pl.Expr) -> pl.Expr:
    """`start` plus `seconds`, to the microsecond, as a UTC datetime."""
    offset = pl.duration(microseconds=(seconds * 1e6).round().cast(pl.Int64))
    return (pl.lit(start) + offset).cast(pl.Datetime("us", "UTC"))


def _order_id() -> pl.Expr:
    return pl.format("o{}", pl.col("order_index").cast(pl.String).str.zfill(7)).alias("order_id")


def _stop_at_first_terminal(seen: pl.DataFrame) -> pl.DataFrame:
    """Drop polls after the first valid answer showing a terminal state (the poller stops)."""
    valid_terminal = pl.col("is_terminal") & ~pl.col("is_error") & ~pl.col("is_unrecognised")
    stop = pl.col("poll_s").filter(valid_terminal).min().over("order_index")
    return seen.filter(stop.is_null() | (pl.col("poll_s") <= stop))


def _apply_faults(seen: pl.DataFrame) -> pl.DataFrame:
    """Errors repeat the last state a valid answer showed; unrecognised answers say `unknown`."""
    unknown = OrderState.UNKNOWN.value
    answered = pl.when(pl.col("is_unrecognised")).then(pl.lit(unknown)).otherwise(pl.col("state"))
    shown = pl.when(pl.col("is_error")).then(None).otherwise(answered)
    return seen.with_columns(
        shown.alias("_shown"),
        (pl.col("is_terminal") & ~pl.col("is_unrecognised")).alias("_terminal_shown"),
    ).with_columns(
        pl.col("_shown").forward_fill().over("order_index").fill_null(unknown).alias("seen_state"),
        pl.when(pl.col("is_error").not_())
        .then(pl.col("_terminal_shown"))
        .forward_fill()
        .over("order_index")
        .fill_null(False)
        .alias("seen_terminal"),
    )


def _tables(
    seen: pl.DataFrame,
    *,
    created_s: np.ndarray,
    start: datetime,
    provider: str,
    order_kind: str,
    orders_per_service: int | None,
    provider_created_at: bool,
    provider_event_time: bool,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The `orders` and `observations` frames from the polls."""

    def at(seconds: pl.Expr) -> pl.Expr:
        return _at(start, seconds)

    service = (
        pl.format("s{}", (pl.col("order_index") // orders_per_service).cast(pl.String))
        if orders_per_service
        else pl.lit(None, pl.String)
    )
    n = created_s.size
    orders = (
        pl.DataFrame({"order_index": np.arange(n, dtype=np.int64), "created_s": created_s})
        .with_columns(
            pl.lit(provider).alias("provider"),
            _order_id(),
            pl.lit(order_kind).alias("order_kind"),
            at(pl.col("created_s")).alias("registered_at"),
            at(pl.col("created_s")).alias("created_at"),
            service.alias("service"),
            pl.lit(None, pl.String).alias("country"),
            pl.lit("synthetic").alias("source"),
        )
        .select([pl.col(c).cast(dtype) for c, dtype in ORDER_COLUMNS.items()])
    )
    is_error = pl.col("is_error")
    valid = ~is_error
    terminal_time = (pl.col("at_s") + pl.col("created_s")).filter(pl.col("is_terminal")).min()
    observations = seen.with_columns(
        pl.lit(provider).alias("provider"),
        _order_id(),
        pl.lit(order_kind).alias("order_kind"),
        at(pl.col("created_s") + pl.col("poll_s")).alias("polled_at"),
        pl.lit(1).alias("attempt"),
        pl.when(is_error).then(pl.lit(500)).otherwise(pl.lit(200)).alias("http_status"),
        pl.when(is_error)
        .then(pl.lit(ErrorClass.SERVER_ERROR.value))
        .otherwise(pl.lit(None, pl.String))
        .alias("error_class"),
        pl.col("seen_state").alias("state"),
        pl.col("seen_terminal").alias("is_terminal"),
        (valid & pl.col("is_unrecognised")).alias("status_unrecognized"),
        service.alias("service"),
        pl.when(valid & pl.lit(provider_created_at))
        .then(at(pl.col("created_s")))
        .alias("provider_created_at"),
        pl.when(valid & pl.lit(provider_event_time) & pl.col("seen_terminal"))
        .then(at(terminal_time.over("order_index")))
        .alias("provider_updated_at"),
    ).with_columns(
        pl.format("{}-{}", pl.col("order_id"), pl.int_range(pl.len()).over("order_index")).alias(
            "observation_id"
        )
    )
    observations = observations.select(
        [
            (pl.col(c) if c in observations.columns else pl.lit(None)).cast(dtype).alias(c)
            for c, dtype in OBSERVATION_COLUMNS.items()
        ]
    ).sort(["order_id", "polled_at"])
    return orders, observations


def true_event_times(
    lifecycle: Lifecycle,
    event_state: str,
    *,
    n: int = 400_000,
    seed: int = 20260105,
) -> np.ndarray:
    """Seconds from creation to `event_state` for a large draw of the lifecycle, sorted; `inf`
    for orders whose first terminal state is another one (they never reach it)."""
    truth = lifecycle.draw(n, np.random.default_rng(seed))
    first_terminal = (
        truth.filter(pl.col("state").is_in(list(TERMINAL_STATE_VALUES)))
        .group_by("order_index")
        .agg(pl.col("state").first(), pl.col("at_s").first())
    )
    reached = first_terminal.filter(pl.col("state") == event_state)["at_s"].to_numpy()
    return np.sort(np.concatenate([reached, np.full(n - reached.size, np.inf)]))


def true_cif_median(lifecycle: Lifecycle, event_state: str, **draw: int) -> float | None:
    """The population median time to `event_state` on the cumulative incidence scale.

    The smallest t with P(first terminal state is `event_state` and happens by t) ≥ 0.5.

    Returns:
        Seconds since creation, or None when fewer than half of the orders reach the state.
    """
    times = true_event_times(lifecycle, event_state, **draw)
    value = times[math.ceil(0.5 * times.size) - 1]
    return float(value) if np.isfinite(value) else None


def true_conditional_median(lifecycle: Lifecycle, event_state: str, **draw: int) -> float:
    """The population median time to `event_state` among orders that reach it: what the naive
    median over finished orders estimates when no order is still open."""
    times = true_event_times(lifecycle, event_state, **draw)
    return float(np.median(times[np.isfinite(times)]))

"""Who gets polled when: the cadence policy, terminal grace re-checks, and priority under a budget.

An open order is due `cadence(state)` seconds after its last poll; a new order is asked at once.
Its second poll comes at its *phase*, a fraction of the cadence after registration drawn from a
hash of the order, so orders registered together do not poll in step and polls fall at random
offsets from the orders' events (midpoint estimates stay unbiased). A terminal order gets one
grace re-check `terminal_grace_s` after it was first seen terminal, then is left alone; so is any
order older than its provider's maximum tracking age (and, read from the warehouse, older
orders are not even candidates: `candidates_since`). When the budget cannot cover every due
order, the most overdue orders in the states most likely to change go first. Every decision
depends only on what was already observed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import polars as pl

from pipeline.model import OrderState
from pipeline.providers.base import PollingPolicy

# How likely an order is to change soon, relative to `pending`: never-polled orders come first,
# then orders being worked on; a terminal order's grace re-check comes last.
NEVER_POLLED_WEIGHT = 3.0
TERMINAL_GRACE_WEIGHT = 0.5
STATE_WEIGHT: dict[str, float] = {
    OrderState.PROCESSING.value: 1.5,
    OrderState.PENDING.value: 1.0,
    OrderState.UNKNOWN.value: 1.0,
}

# An order this close to its due time counts as due: a loop that wakes a moment early must not
# leave it for one more sleep (which would stretch the cadence).
DUE_SLACK_S = 0.1
# Resolution of the per-order phase (a fraction of the cadence, from a hash of the order).
PHASE_STEPS = 1_000

# An order whose provider answers with a status we cannot map backs off: its cadence grows with
# its age (this share of it), from the provider's default up to this ceiling, and it stops at
# the tracking age like any other. Errors with no answer at all are the retry policy's business.
UNKNOWN_BACKOFF_SHARE = 0.1
UNKNOWN_MAX_CADENCE_S = 900.0

# "Not found" answers, with no valid answer ever, after which an order is no longer polled.
MAX_NOT_FOUND = 10

DUE_QUERY = f"""
SELECT o.provider, o.order_id, o.order_kind, o.registered_at, o.created_at, o.service, o.country,
       t.last_polled_at, t.last_state, coalesce(t.is_terminal, false) AS is_terminal,
       t.terminal_seen_at, t.last_ok_at
FROM orders o
-- Polls come after registration: a candidate's poll state is no older than `since` either.
LEFT JOIN (SELECT * FROM order_tracking WHERE last_polled_at IS NULL OR last_polled_at >= ?) t
    USING (provider, order_id)
WHERE o.provider = ? AND o.registered_at >= ?
  AND NOT coalesce(t.is_terminal AND t.grace_checked, false)
  -- An order the provider never knew (a typo, or a restarted sandbox) is given up after a while.
  AND NOT (t.last_ok_at IS NULL AND coalesce(t.not_found_since_ok, 0) >= {MAX_NOT_FOUND})
"""
"""A provider's candidates (parameters: `since`, provider, `since`): its orders registered
since `candidates_since`, less those finished with (checked after their grace, or never
known to the provider)."""


def candidates_since(policy: PollingPolicy, now: datetime) -> datetime:
    """The oldest registration a provider's candidates read at `now` can need.

    An order older than the tracking age is polled only for its grace re-check, due within
    `terminal_grace_s` of being seen terminal, by that age: one more tracking age of margin
    covers a poller stopped meanwhile. Bounded so, the candidates cost what the recent orders
    do: read whole at 8.3 M orders, a provider's took 0.33 s, every few seconds (0.03 s so)."""
    return now - timedelta(seconds=2 * policy.max_tracking_age_s + policy.terminal_grace_s)


def policy_frame(policies: Mapping[str, PollingPolicy]) -> pl.DataFrame:
    """One row per (provider, state) with its cadence, plus the provider-wide limits."""
    rows = []
    for provider, policy in policies.items():
        for state in OrderState:
            rows.append(
                {
                    "provider": provider,
                    "policy_state": state.value,
                    "cadence_s": policy.cadence_for(state.value),
                    "terminal_grace_s": policy.terminal_grace_s,
                    "max_tracking_age_s": policy.max_tracking_age_s,
                }
            )
    return pl.DataFrame(rows)


def schedule(
    candidates: pl.DataFrame, policies: Mapping[str, PollingPolicy], now: datetime
) -> pl.DataFrame:
    """Every candidate still eligible for polling, with its `next_due` time and `cadence_s`.

    Args:
        candidates: rows of `DUE_QUERY` (columns beyond it are kept).
        policies: polling policy per provider; candidates of other providers are dropped.
        now: the current time (UTC), for the tracking-age limit.
    """
    now_lit = pl.lit(now).dt.convert_time_zone("UTC")
    state = pl.col("last_state").fill_null(OrderState.UNKNOWN.value)
    cadence = pl.duration(microseconds=(pl.col("cadence_s") * 1e6).cast(pl.Int64))
    phase = (pl.concat_str("provider", "order_id").hash(seed=0) % PHASE_STEPS).cast(
        pl.Float64
    ) / PHASE_STEPS
    anchor = pl.col("registered_at") + pl.duration(
        microseconds=(phase * pl.col("cadence_s") * 1e6).cast(pl.Int64)
    )
    return (
        candidates.filter(pl.col("provider").is_in(list(policies)))
        .with_columns(policy_state=state)
        .join(policy_frame(policies), on=["provider", "policy_state"], how="left")
        .with_columns(age_s=(now_lit - pl.col("registered_at")).dt.total_microseconds() / 1e6)
        .with_columns(cadence_s=_backed_off_cadence())
        .with_columns(
            next_due=pl.when(pl.col("last_polled_at").is_null())
            .then(pl.col("registered_at"))
            .when(pl.col("is_terminal"))
            .then(pl.col("terminal_seen_at") + pl.duration(seconds=pl.col("terminal_grace_s")))
            # The first poll came before the order's phase: the next one falls on it. (A poll
            # taken early by the due slack is already the phase's own poll.)
            .when(pl.col("last_polled_at") < anchor - pl.duration(seconds=2 * DUE_SLACK_S))
            .then(anchor)
            .otherwise(pl.col("last_polled_at") + cadence),
        )
        .filter((pl.col("age_s") <= pl.col("max_tracking_age_s")) | pl.col("is_terminal"))
    )


def _backed_off_cadence() -> pl.Expr:
    """The state's cadence; for an order answered only in statuses we cannot map, a cadence
    growing with its age (`UNKNOWN_BACKOFF_SHARE`), capped at `UNKNOWN_MAX_CADENCE_S`."""
    unrecognised = (pl.col("policy_state") == OrderState.UNKNOWN.value) & pl.col(
        "last_ok_at"
    ).is_not_null()
    backed_off = pl.min_horizontal(
        pl.col("age_s") * UNKNOWN_BACKOFF_SHARE, pl.lit(UNKNOWN_MAX_CADENCE_S)
    )
    return (
        pl.when(unrecognised)
        .then(pl.max_horizontal(backed_off, pl.col("cadence_s")))
        .otherwise(pl.col("cadence_s"))
    )


def due_orders(
    candidates: pl.DataFrame,
    policies: Mapping[str, PollingPolicy],
    now: datetime,
    budgets: Mapping[str, int] | None = None,
    *,
    slack_s: float = 0.0,
) -> pl.DataFrame:
    """The candidates due at `now`, highest priority first, at most `budgets[provider]` each.

    Args:
        candidates: rows of `DUE_QUERY`.
        policies: polling policy per provider.
        now: the current time (UTC).
        budgets: maximum orders per provider in this pass; absent means no cap.
        slack_s: an order due within this many seconds from `now` counts as due.
    """
    if candidates.is_empty():
        return candidates.with_columns(priority=pl.lit(None, pl.Float64))
    return pick_due(schedule(candidates, policies, now), now, budgets, slack_s=slack_s)


def pick_due(
    scheduled: pl.DataFrame,
    now: datetime,
    budgets: Mapping[str, int] | None = None,
    *,
    slack_s: float = 0.0,
) -> pl.DataFrame:
    """`due_orders` on rows already `schedule`d (cheap enough to run many times a second)."""
    now_lit = pl.lit(now).dt.convert_time_zone("UTC")
    horizon = pl.lit(now + timedelta(seconds=slack_s)).dt.convert_time_zone("UTC")
    frame = (
        scheduled.filter(pl.col("next_due") <= horizon)
        .with_columns(priority=_priority(now_lit))
        .sort(["priority", "next_due"], descending=[True, False])
    )
    if budgets:
        frame = frame.filter(
            pl.int_range(pl.len()).over("provider")
            < pl.col("provider")
            .replace_strict(budgets, default=None, return_dtype=pl.Int64)
            .fill_null(2**62)
        )
    return frame.drop("policy_state", "terminal_grace_s", "max_tracking_age_s", "age_s")


def _priority(now: pl.Expr) -> pl.Expr:
    """Overdue-ness in cadences, scaled by how likely the state is to change."""
    overdue_s = (now - pl.col("next_due")).dt.total_microseconds() / 1e6
    weight = (
        pl.when(pl.col("last_polled_at").is_null())
        .then(NEVER_POLLED_WEIGHT)
        .when(pl.col("is_terminal"))
        .then(TERMINAL_GRACE_WEIGHT)
        .otherwise(
            pl.col("policy_state").replace_strict(
                STATE_WEIGHT, default=1.0, return_dtype=pl.Float64
            )
        )
    )
    return (1.0 + overdue_s / pl.col("cadence_s")) * weight

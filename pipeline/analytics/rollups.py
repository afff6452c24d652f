"""Mergeable per-minute rollups of the observation log, and what is read off them.

The transport side of the scorecard (polls, availability, rate limiting, unrecognised statuses,
latency quantiles, the error mix) needs counts, not rows: each minute of polls is folded into a
few rows per provider once, and any window is a sum of rows. A refresh then costs the minutes
that changed, not the whole log, and memory stays bounded whatever the log's size.

- `poll_rollups`: per provider, minute and error class (null: a valid answer): `polls`,
  `rate_limited_polls` (error class `rate_limited` or HTTP 429) and `unknown_status_answers`
  (valid answers in state `unknown` or with an unrecognised provider status).
- `latency_rollups`: per provider, minute and latency bucket: `polls`. Bucket b holds latencies
  in [g^b, g^(b+1)) ms with g = `LATENCY_GROWTH`, so a quantile read off the buckets is within
  ±2.5 % of the exact one (a mergeable histogram in the manner of DDSketch).

Rows of either kind add up: merging partial rollups of the same minute (`merge_rollups`) gives
the rollup of the union. Older minutes are kept at hour grain (`pipeline.derived`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

import polars as pl

from pipeline.analytics.inputs import (
    OBSERVATION_INPUT,
    UNKNOWN_STATE,
    conform,
    is_valid_answer,
)
from pipeline.analytics.survival import wilson_interval
from pipeline.model import ErrorClass
from pipeline.warehouse.schema import LATENCY_ROLLUP_COLUMNS, POLL_ROLLUP_COLUMNS

LATENCY_GROWTH = 1.05
"""Ratio between consecutive latency buckets: a quantile's relative error is at most half its
width beyond 1 (2.5 %)."""
MIN_LATENCY_MS = 0.01
"""Latencies below this (and zero) fall in its bucket."""

POLL_KEYS = ("provider", "minute", "error_class")
POLL_COUNTS = ("polls", "rate_limited_polls", "unknown_status_answers")
LATENCY_KEYS = ("provider", "minute", "latency_bucket")

ROLLUP_INPUT_COLUMNS = (
    "provider",
    "polled_at",
    "error_class",
    "http_status",
    "latency_ms",
    "state",
    "status_unrecognized",
)
"""The observation columns the rollups read."""
ROLLUP_INPUT: dict[str, pl.DataType] = {c: OBSERVATION_INPUT[c] for c in ROLLUP_INPUT_COLUMNS}


def _conform(observations: pl.DataFrame) -> pl.DataFrame:
    return conform(
        observations, ROLLUP_INPUT, frozenset({"provider", "polled_at"}), name="observations"
    )


def is_rate_limited() -> pl.Expr:
    """A poll the provider refused for its rate limit (class `rate_limited` or HTTP 429)."""
    return (pl.col("error_class") == ErrorClass.RATE_LIMITED.value).fill_null(False) | (
        pl.col("http_status") == 429
    ).fill_null(False)


def is_unrecognised() -> pl.Expr:
    """A valid answer whose status we could not map (state `unknown` or flagged)."""
    return is_valid_answer() & (
        (pl.col("state") == UNKNOWN_STATE) | pl.col("status_unrecognized").fill_null(False)
    )


def _bucket(hourly_before: datetime | None) -> pl.Expr:
    """Each poll's rollup `minute`: its minute, or its hour if it is older than
    `hourly_before` (the grain older rows are kept at)."""
    minute = pl.col("polled_at").dt.truncate("1m")
    if hourly_before is None:
        return minute.alias("minute")
    older = pl.col("polled_at") < pl.lit(hourly_before, dtype=ROLLUP_INPUT["polled_at"])
    return (
        pl.when(older).then(pl.col("polled_at").dt.truncate("1h")).otherwise(minute).alias("minute")
    )


def poll_rollups(
    observations: pl.DataFrame, *, hourly_before: datetime | None = None
) -> pl.DataFrame:
    """`poll_rollups` rows of `observations` (see the module docstring), by the hour for polls
    older than `hourly_before`."""
    obs = _conform(observations)
    return (
        obs.group_by("provider", _bucket(hourly_before), "error_class")
        .agg(
            pl.len().cast(pl.Int64).alias("polls"),
            is_rate_limited().sum().cast(pl.Int64).alias("rate_limited_polls"),
            is_unrecognised().sum().cast(pl.Int64).alias("unknown_status_answers"),
        )
        .select(POLL_ROLLUP_COLUMNS.keys())
        .cast(POLL_ROLLUP_COLUMNS)  # type: ignore[arg-type]
    )


def latency_bucket(latency_ms: pl.Expr) -> pl.Expr:
    """The bucket of each latency (see the module docstring)."""
    floor = latency_ms.clip(lower_bound=MIN_LATENCY_MS)
    return (floor.log() / math.log(LATENCY_GROWTH)).floor().cast(pl.Int32)


def latency_rollups(
    observations: pl.DataFrame, *, hourly_before: datetime | None = None
) -> pl.DataFrame:
    """`latency_rollups` rows of `observations`: every attempt with a latency; by the hour for
    polls older than `hourly_before`."""
    obs = _conform(observations).filter(pl.col("latency_ms").is_not_null())
    return (
        obs.group_by(
            "provider",
            _bucket(hourly_before),
            latency_bucket(pl.col("latency_ms")).alias("latency_bucket"),
        )
        .agg(pl.len().cast(pl.Int64).alias("polls"))
        .select(LATENCY_ROLLUP_COLUMNS.keys())
        .cast(LATENCY_ROLLUP_COLUMNS)  # type: ignore[arg-type]
    )


def merge_rollups(frames: Sequence[pl.DataFrame], keys: Sequence[str]) -> pl.DataFrame:
    """Rollup rows with equal `keys` summed (the rollup of the union of their polls)."""
    frame = pl.concat(frames)
    counts = [c for c in frame.columns if c not in keys]
    return frame.group_by(keys).agg(pl.col(counts).sum()).select(frame.columns)


def latency_quantiles(
    buckets: pl.DataFrame, group_by: Sequence[str], quantiles: Sequence[float]
) -> pl.DataFrame:
    """Latency quantiles per group from summed buckets (`latency_bucket`, `polls`).

    The q-quantile is interpolated geometrically inside the bucket where the running count
    reaches q × total, as a histogram's quantile.

    Returns:
        The group columns and `latency_p<100q>_ms` per quantile (e.g. `latency_p95_ms`).
    """
    keys = list(group_by)
    summed = (
        buckets.group_by([*keys, "latency_bucket"])
        .agg(pl.col("polls").sum())
        .sort([*keys, "latency_bucket"])
        .with_columns(
            pl.col("polls").cum_sum().over(keys).alias("_through"),
            pl.col("polls").sum().over(keys).alias("_total"),
        )
    )
    columns = []
    for q in quantiles:
        rank = pl.col("_total") * q
        inside = ((rank - (pl.col("_through") - pl.col("polls"))) / pl.col("polls")).clip(0, 1)
        value = pl.lit(LATENCY_GROWTH).pow(pl.col("latency_bucket") + inside)
        columns.append(
            value.filter(pl.col("_through") >= rank).first().alias(f"latency_p{round(100 * q)}_ms")
        )
    return summed.group_by(keys, maintain_order=True).agg(columns)


def error_mix(polls: pl.DataFrame) -> pl.DataFrame:
    """Table `error_mix`: polls per provider and error class (null class = valid), from
    `poll_rollups` rows (any minutes).

    Returns:
        provider, error_class, polls, share (of the provider's polls) with a Wilson 95 %
        interval (`share_ci_low`, `share_ci_high`).
    """
    low, high = wilson_interval(pl.col("polls"), pl.col("_total"))
    return (
        polls.group_by("provider", "error_class")
        .agg(pl.col("polls").sum().cast(pl.Int64))
        .with_columns(pl.col("polls").sum().over("provider").alias("_total"))
        .with_columns(
            (pl.col("polls") / pl.col("_total")).alias("share"),
            low.alias("share_ci_low"),
            high.alias("share_ci_high"),
        )
        .drop("_total")
        .sort(["provider", "error_class"], nulls_last=False)
    )

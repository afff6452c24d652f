"""The provider scorecard over rolling windows: transport, outcomes and data quality, ranked.

Transport figures come from the poll rollups (`pipeline.analytics.rollups`), so a window of any
length costs its rollup rows, not its polls. Outcome figures come from the orders registered in
the window (their status history, censoring-aware). `provider_reliability` is the all-time row.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from pipeline.analytics import npmle
from pipeline.analytics.inputs import QUARANTINE_REQUIRED, UTC_TIME, conform
from pipeline.analytics.metrics import EXPIRY_KEYS, expiry_summary
from pipeline.analytics.rollups import latency_quantiles
from pipeline.analytics.survival import WEIGHT, event_table, weighted, wilson_interval

WINDOWS: dict[str, timedelta | None] = {
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "all": None,
}
"""The scorecard's rolling windows, ending at the refresh; `all` is the whole history."""
ALL_TIME = "all"

MIN_RANK_POLLS = 200
"""Polls a provider needs before it is ranked (availability ± ~3 points at 95 %)."""
MIN_RANK_ORDERS = 30
"""Orders with a status history a provider needs before it is ranked."""

LATENCY_BUDGET_MS = 2000.0
"""p95 latency at which the latency component of the reliability score reaches 0."""

SCORE_WEIGHTS: dict[str, float] = {
    "availability": 0.30,
    "success_rate": 0.30,
    "latency": 0.15,
    "clean_data": 0.15,
    "recognised_status": 0.10,
}
"""Weights of the reliability score components (they sum to 1)."""

QUARANTINE_WINDOW_INPUT: dict[str, pl.DataType] = {
    "provider": pl.String(),
    "quarantined_at": UTC_TIME,
}

RELIABILITY_COLUMNS = (
    "provider",
    "polls",
    "valid_answers",
    "availability",
    "availability_ci_low",
    "availability_ci_high",
    "n_errors",
    "rate_limited_polls",
    "rate_limited_rate",
    "latency_p50_ms",
    "latency_p95_ms",
    "n_orders",
    "success_rate",
    "success_rate_ci_low",
    "success_rate_ci_high",
    "expiry_rate",
    "median_time_to_completion_s",
    "quarantined_rows",
    "quarantine_rate",
    "quarantine_ci_low",
    "quarantine_ci_high",
    "unknown_status_answers",
    "unknown_status_rate",
    "unknown_status_ci_low",
    "unknown_status_ci_high",
    "is_ranked",
    "score",
    "rank",
)
"""Columns of `provider_reliability`; the scorecard adds `window`, `window_start` and
`window_end` in front."""


def window_start_sql(column: str, as_of: datetime) -> str:
    """SQL putting each time in `column` at the start of the shortest window ending at `as_of`
    that holds it (older than every window: just before the longest one's start; null stays
    null). Every window's filter then keeps the same rows, and rows that differ only in their
    time within one window's span can be summed before the scorecard reads them."""
    starts = [
        f"TIMESTAMPTZ '{(as_of - length).isoformat()}'"
        for length in sorted(length for length in WINDOWS.values() if length is not None)
    ]
    return (
        "CASE "
        + " ".join(f"WHEN {column} >= {start} THEN {start}" for start in starts)
        + f" WHEN {column} IS NOT NULL THEN {starts[-1]} - INTERVAL 1 MICROSECOND END"
    )


_BY_WINDOW = ["window", "provider"]


def _windows(as_of: datetime) -> pl.DataFrame:
    """Each window (`WINDOWS`, in order) with its start (null for all time) and end."""
    starts = [None if length is None else as_of - length for length in WINDOWS.values()]
    return pl.DataFrame(
        {
            "window": list(WINDOWS),
            "window_start": starts,
            "window_end": [as_of] * len(WINDOWS),
            "_order": range(len(WINDOWS)),
        },
        schema={"window": pl.String, "window_start": UTC_TIME, "window_end": UTC_TIME,
                "_order": pl.Int32},
    )  # fmt: skip


def _in_windows(frame: pl.DataFrame, column: str, windows: pl.DataFrame) -> pl.DataFrame:
    """`frame`'s rows once for every window whose span holds their time in `column`, with the
    window's name: every window is then computed in one pass, grouped by it."""
    inside = pl.col("window_start").is_null() | (pl.col(column) >= pl.col("window_start"))
    return frame.join(windows.select("window", "window_start"), how="cross").filter(inside)


def _transport(
    polls: pl.DataFrame, latency: pl.DataFrame, quarantine: pl.DataFrame, windows: pl.DataFrame
) -> pl.DataFrame:
    """Per window and provider, the window's polls, availability, rate limiting, latency, data
    quality."""
    transport = (
        _in_windows(polls, "minute", windows)
        .group_by(_BY_WINDOW)
        .agg(
            pl.col("polls").sum().cast(pl.Int64),
            pl.col("polls").filter(pl.col("error_class").is_null()).sum().alias("valid_answers"),
            pl.col("rate_limited_polls").sum(),
            pl.col("unknown_status_answers").sum(),
        )
    )
    quantiles = latency_quantiles(_in_windows(latency, "minute", windows), _BY_WINDOW, (0.5, 0.95))
    quarantine = conform(
        quarantine, QUARANTINE_WINDOW_INPUT, QUARANTINE_REQUIRED, name="quarantine"
    )
    # A row without a time is counted in every window.
    dated = pl.col("quarantined_at").is_not_null()
    undated = quarantine.filter(~dated).join(windows.select("window"), how="cross")
    in_windows = _in_windows(quarantine.filter(dated), "quarantined_at", windows)
    quarantined = (
        pl.concat([in_windows.drop("window_start"), undated], how="diagonal")
        .group_by(_BY_WINDOW)
        .agg(pl.len().cast(pl.Int64).alias("quarantined_rows"))
    )
    transport = (
        transport.join(quantiles, on=_BY_WINDOW, how="left")
        .join(quarantined, on=_BY_WINDOW, how="full", coalesce=True)
        .with_columns(
            pl.col(
                "polls",
                "valid_answers",
                "rate_limited_polls",
                "unknown_status_answers",
                "quarantined_rows",
            )
            .fill_null(0)
            .cast(pl.Int64)
        )
    )
    avail_low, avail_high = wilson_interval(pl.col("valid_answers"), pl.col("polls"))
    received = pl.col("polls") + pl.col("quarantined_rows")
    quar_low, quar_high = wilson_interval(pl.col("quarantined_rows"), received)
    unk_low, unk_high = wilson_interval(pl.col("unknown_status_answers"), pl.col("valid_answers"))

    def rate(num: str, den: pl.Expr) -> pl.Expr:
        return pl.when(den > 0).then(pl.col(num) / den)

    return transport.with_columns(
        rate("valid_answers", pl.col("polls")).alias("availability"),
        avail_low.alias("availability_ci_low"),
        avail_high.alias("availability_ci_high"),
        rate("rate_limited_polls", pl.col("polls")).alias("rate_limited_rate"),
        rate("quarantined_rows", received).alias("quarantine_rate"),
        quar_low.alias("quarantine_ci_low"),
        quar_high.alias("quarantine_ci_high"),
        rate("unknown_status_answers", pl.col("valid_answers")).alias("unknown_status_rate"),
        unk_low.alias("unknown_status_ci_low"),
        unk_high.alias("unknown_status_ci_high"),
    )


def _outcomes(completion: pl.DataFrame, expiry: pl.DataFrame) -> pl.DataFrame:
    """Per window and provider: eventual success probability, median time to completion,
    expiry rate, from the completion and expiry records of the window's orders (`window`)."""
    keys = _BY_WINDOW
    table = event_table(completion, keys)
    final = table.group_by(keys).agg(
        pl.col("cif").last().alias("success_rate"),
        pl.col("cif_low").last().alias("success_rate_ci_low"),
        pl.col("cif_high").last().alias("success_rate_ci_high"),
    )
    medians = npmle.quantiles(npmle.fit_records(completion, keys), 0.5).select(
        *keys, pl.col("quantile_s").alias("median_time_to_completion_s")
    )
    counts = (
        weighted(completion)
        .group_by(keys)
        .agg(pl.col(WEIGHT).sum().cast(pl.Int64).alias("n_orders"))
    )
    rates = (
        expiry_summary(expiry, ["window", *EXPIRY_KEYS])
        .group_by(keys)
        .agg(pl.col("expiry_rate").first())
    )
    return (
        counts.join(final, on=keys, how="left")
        .join(medians, on=keys, how="left")
        .join(rates, on=keys, how="left")
    )


def _score() -> pl.Expr:
    latency = (1.0 - pl.col("latency_p95_ms") / LATENCY_BUDGET_MS).clip(0.0, 1.0)
    parts = {
        "availability": pl.col("availability"),
        "success_rate": pl.col("success_rate"),
        "latency": latency,
        "clean_data": 1.0 - pl.col("quarantine_rate"),
        "recognised_status": 1.0 - pl.col("unknown_status_rate"),
    }
    return 100.0 * pl.sum_horizontal(
        *[SCORE_WEIGHTS[name] * expr for name, expr in parts.items()], ignore_nulls=False
    )


def provider_scorecard(
    polls: pl.DataFrame,
    latency: pl.DataFrame,
    quarantine: pl.DataFrame,
    completion: pl.DataFrame,
    expiry: pl.DataFrame,
    *,
    as_of: datetime,
    min_polls: int = MIN_RANK_POLLS,
    min_orders: int = MIN_RANK_ORDERS,
) -> pl.DataFrame:
    """Table `provider_scorecard`: `provider_reliability` for each rolling window (`WINDOWS`).

    Transport over the polls in the window; outcomes over the orders registered in it; every
    figure as in `provider_reliability`, and each window ranked on its own.

    Args:
        polls: `poll_rollups` rows.
        latency: `latency_rollups` rows.
        quarantine: `provider` and `quarantined_at` of the quarantine table.
        completion: per-order completion records (`metrics.completion_records`), or collapsed
            into cells (`pipeline.cells.read_record_cells`); `registered_at` says which
            windows an order is in.
        expiry: per-order expiry records (`metrics.expiry_records`), or their cells.
        as_of: where the windows end (the refresh).
        min_polls: polls needed to be ranked in a window.
        min_orders: orders needed to be ranked in a window.

    Returns:
        One row per (window, provider seen in the window): `window`, `window_start` (null for
        all time), `window_end`, then the `provider_reliability` columns.
    """
    windows = _windows(as_of)
    # Every window in one pass: its rows are the ones whose time it holds, tagged with it.
    # (Window by window, a refresh spent 0.2 s on hundreds of small frames.)
    registered = [
        _in_windows(weighted(frame).filter(pl.col("registered_at").is_not_null()),
                    "registered_at", windows).drop("window_start")
        for frame in (completion, expiry)
    ]  # fmt: skip
    frame = (
        _transport(polls, latency, quarantine, windows)
        .join(_outcomes(*registered), on=_BY_WINDOW, how="left")
        .with_columns(pl.col("n_orders").fill_null(0))
        .with_columns(_score().alias("score"))
        .with_columns(
            (
                (pl.col("polls") >= min_polls)
                & (pl.col("n_orders") >= min_orders)
                & pl.col("score").is_not_null()
            ).alias("is_ranked")
        )
    )
    rank = pl.when(pl.col("is_ranked")).then(pl.col("score")).rank("min", descending=True)
    return (
        frame.with_columns(
            pl.when(pl.col("is_ranked")).then(rank.over("window")).cast(pl.Int32).alias("rank"),
            (pl.col("polls") - pl.col("valid_answers")).alias("n_errors"),
        )
        .join(windows, on="window")
        .sort("_order", "provider")
        .select("window", "window_start", "window_end", *RELIABILITY_COLUMNS)
    )


def provider_reliability(scorecard: pl.DataFrame) -> pl.DataFrame:
    """Table `provider_reliability`: the scorecard's all-time rows.

    Transport: `polls`, `availability` = valid answers / polls (valid: `error_class` is null),
    `rate_limited_rate` (429 or `rate_limited`), `latency_p50_ms`, `latency_p95_ms` over every
    attempt with a latency (read off the latency rollups, within ±2.5 %). The mix of error
    classes is in `error_mix`.
    Outcome: `success_rate` = Aalen–Johansen probability of ending in a success state by the
    end of follow-up (failures compete, open orders are censored; events at the midpoint of
    their polling interval, whose placement barely matters at the end of follow-up),
    `expiry_rate` from `expiry_rates`, `median_time_to_completion_s` as in
    `time_to_completion` (NPMLE).
    Data quality: `quarantine_rate` = quarantined rows / (polls + quarantined rows),
    `unknown_status_rate` = valid answers with state `unknown` or an unrecognised status / valid
    answers. Proportions carry Wilson 95 % intervals, the success rate its log(−log) interval.

    Score (0–100, higher is better), only from point estimates:

        score = 100 × (0.30·availability + 0.30·success_rate
                       + 0.15·clip(1 − latency_p95_ms / 2000, 0, 1)
                       + 0.15·(1 − quarantine_rate) + 0.10·(1 − unknown_status_rate))

    A provider is ranked (`is_ranked`, `rank` 1 = best) only with at least `MIN_RANK_POLLS`
    polls, `MIN_RANK_ORDERS` orders with a history and every score component defined; the
    sample-size floor keeps a handful of lucky polls from topping the list.
    """
    return scorecard.filter(pl.col("window") == ALL_TIME).select(RELIABILITY_COLUMNS)

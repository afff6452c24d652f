"""The published analytics tables: time to code, time to completion, expiry rates.

Every function takes frames shaped like the warehouse tables and returns one polars frame, ready
to be stored under the table name in its docstring. Time-to-event figures are computed with
censoring and competing risks from per-order records (`pipeline.analytics.events`); the naive and
midpoint figures beside them are labelled as such.

What "median time to code" means here: the time by which half of all orders have received their
code, i.e. where the cumulative incidence of the code reaches 0.5. Expiry, cancellation and
failure compete with the code: an order that expires never gets one, so it pushes the median
later (or makes it undefined, null, when fewer than half ever get a code). This answers the
user's question "how long until I have my code", counting the orders that never deliver. The
Kaplan–Meier that treats competitors as censoring would instead describe a world where nothing
expires, and overstate how many orders succeed.

How the cumulative incidence is estimated: by nonparametric maximum likelihood from what the
polls actually show (`pipeline.analytics.npmle`): the provider's own event time where it gives
one, otherwise "after the last poll in an earlier state, by the first poll in the outcome", and
"still open at the last poll" for open orders. Placing events at the midpoint of their polling
interval, as the `midpoint_*` columns do with the Aalen–Johansen estimator, is biased when the
interval is not small against the time measured (measured end to end: +47 % for SMSOnline's 7 s
median at 5 s polling, −21 % for OrdinalsBot's 159 s at 30 s); with exact times only the two
agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from pipeline.analytics import npmle
from pipeline.analytics.events import RECORD_COLUMNS, time_to_event_records
from pipeline.analytics.inputs import (
    FAILURE_STATE_VALUES,
    SUCCESS_STATE_VALUES,
    TERMINAL_STATE_VALUES,
)
from pipeline.analytics.npmle import EVENT_AFTER, EVENT_BY
from pipeline.analytics.survival import (
    COMPETING,
    EVENT,
    WEIGHT,
    cif_quantiles,
    event_table,
    values_at,
    weighted,
    wilson_interval,
)
from pipeline.model import STATE_VALUES, OrderState
from pipeline.providers.registry import REGISTRY
from pipeline.providers.spec import EXPIRY_GRACE_S

RESOLUTION = "resolution_s"
"""Width of the polling bounds around an order's event (`upper_s` − `lower_s`)."""

HORIZONS_S: dict[str, float] = {"1m": 60.0, "2m": 120.0, "5m": 300.0, "10m": 600.0, "20m": 1200.0}
"""Horizons of the reported cumulative incidences: column `cif_<label>`."""

MIN_GROUP_ORDERS = 30
"""Smallest group (service, country, ...) that gets its own time-to-event row."""

CODE_ORDER_KINDS: tuple[str, ...] = tuple(
    sorted({kind for spec in REGISTRY.specs() for kind in spec.code_kinds})
)
"""Order kinds whose deliverable is a code (the providers' specs say which)."""

LEVEL_PROVIDER = "provider"
GROUP_LEVELS: dict[str, tuple[str, ...]] = {
    LEVEL_PROVIDER: (),
    "order_kind": ("order_kind",),
    "service": ("service",),
    "country": ("country",),
    "service_country": ("service", "country"),
}
"""Grouping levels: columns whose values (joined by '/') form `group_value`."""
ALL_VALUE = "all"
"""`group_value` of the provider-wide row."""

CODE_LEVELS = ("provider", "service", "country", "service_country")
COMPLETION_LEVELS = ("provider", "order_kind", "service", "country", "service_country")


EXPIRY_WINDOW_SCHEMA = {
    "provider": pl.String,
    "order_kind": pl.String,
    "window_s": pl.Float64,
    "horizon_s": pl.Float64,
    "window_documented": pl.Boolean,
}
_EXPIRED = OrderState.EXPIRED.value
_UNKNOWN = OrderState.UNKNOWN.value
_OTHER_TERMINAL = tuple(sorted(set(TERMINAL_STATE_VALUES) - {_EXPIRED}))
_NON_TERMINAL = tuple(sorted(set(STATE_VALUES) - set(TERMINAL_STATE_VALUES)))
EXPIRY_KEYS = ("provider", "order_kind")


_SUMMARY_INPUTS = (
    "provider",
    "event_code",
    "time_s",
    EVENT_AFTER,
    EVENT_BY,
    RESOLUTION,
    WEIGHT,
)
"""Record columns a time-to-event summary reads, besides the grouping levels' columns."""


def _grouped(records: pl.DataFrame, levels: Sequence[str]) -> pl.DataFrame:
    """`records` repeated once per grouping level with `group_level` and `group_value` set,
    keeping only the columns the summary reads (the copies add up at scale)."""
    level_columns = {c for level in levels for c in GROUP_LEVELS[level]}
    records = with_resolution(weighted(records)).select(*_SUMMARY_INPUTS, *sorted(level_columns))
    parts = []
    for level in levels:
        columns = GROUP_LEVELS[level]
        value = (
            pl.concat_str([pl.col(c) for c in columns], separator="/")
            if columns
            else pl.lit(ALL_VALUE)
        )
        part = records.filter(*[pl.col(c).is_not_null() for c in columns]) if columns else records
        parts.append(
            part.with_columns(pl.lit(level).alias("group_level"), value.alias("group_value"))
        )
    return pl.concat(parts)


def with_resolution(records: pl.DataFrame) -> pl.DataFrame:
    """`records` with `RESOLUTION`, the width of the polling bounds around the event (records
    collapsed into cells carry it instead of the bounds)."""
    if RESOLUTION in records.columns:
        return records
    return records.with_columns((pl.col("upper_s") - pl.col("lower_s")).alias(RESOLUTION))


def _median(values: pl.Expr, orders: pl.Expr, collapsed: bool) -> pl.Expr:
    """The median of `values`; of collapsed records, the lower weighted median (each value
    counted `orders` times)."""
    if not collapsed:
        return values.median()
    known = values.is_not_null()
    values, orders = values.filter(known), orders.filter(known)
    cumulative = orders.sort_by(values).cum_sum()
    return values.sort().filter(cumulative >= cumulative.last() / 2).first()


def time_to_event_summary(
    records: pl.DataFrame,
    *,
    levels: Sequence[str] = (LEVEL_PROVIDER,),
    min_group_orders: int = MIN_GROUP_ORDERS,
    horizons_s: Mapping[str, float] = HORIZONS_S,
) -> pl.DataFrame:
    """Censoring-aware time-to-event statistics per provider and finer groups.

    The provider-wide row is always present; finer groups need `min_group_orders` orders.

    Args:
        records: per-order records (`pipeline.analytics.events.time_to_event_records`), or
            records collapsed into cells (`pipeline.cells.read_record_cells`).
        levels: grouping levels from `GROUP_LEVELS`.
        min_group_orders: smallest finer group reported.
        horizons_s: label → horizon for the cumulative incidence columns.

    Returns:
        One row per (provider, group_level, group_value): `n_orders`, `n_events`,
        `n_competing`, `n_censored`; from the NPMLE of the cumulative incidence
        (`pipeline.analytics.npmle`), `median_s` with `median_ci_low_s` / `median_ci_high_s` and
        `cif_<h>` with `cif_<h>_low` / `cif_<h>_high` per horizon; for comparison, the
        Aalen–Johansen median with events at the midpoint of their polling interval,
        `midpoint_median_s` with `midpoint_median_ci_low_s` / `midpoint_median_ci_high_s`;
        `naive_median_s`, `naive_mean_s` (over orders that had the event only: biased, shown for
        contrast) and `median_resolution_s` (median width of the polling bounds around observed
        events).
    """
    keys = ["provider", "group_level", "group_value"]
    collapsed = WEIGHT in records.columns
    grouped = _grouped(records, levels)
    is_event = pl.col("event_code") == EVENT
    orders = pl.col(WEIGHT)
    event_orders = orders.filter(is_event)
    counts = grouped.group_by(keys).agg(
        orders.sum().cast(pl.Int64).alias("n_orders"),
        event_orders.sum().cast(pl.Int64).alias("n_events"),
        orders.filter(pl.col("event_code") == COMPETING).sum().cast(pl.Int64).alias("n_competing"),
        orders.filter(pl.col("event_code") == 0).sum().cast(pl.Int64).alias("n_censored"),
        _median(pl.col("time_s").filter(is_event), event_orders, collapsed).alias("naive_median_s"),
        pl.when(event_orders.sum() > 0)
        .then((pl.col("time_s") * orders).filter(is_event).sum() / event_orders.sum())
        .alias("naive_mean_s"),
        _median(pl.col(RESOLUTION).filter(is_event), event_orders, collapsed).alias(
            "median_resolution_s"
        ),
    )
    counts = counts.filter(
        (pl.col("group_level") == LEVEL_PROVIDER) | (pl.col("n_orders") >= min_group_orders)
    )
    grouped = grouped.join(counts.select(keys), on=keys, how="semi")
    fitted = npmle.fit_records(grouped, keys)
    medians = npmle.quantiles(fitted, 0.5).rename(
        {
            "quantile_s": "median_s",
            "quantile_ci_low_s": "median_ci_low_s",
            "quantile_ci_high_s": "median_ci_high_s",
        }
    )
    midpoint = cif_quantiles(event_table(grouped, keys), keys, 0.5).rename(
        {
            "quantile_s": "midpoint_median_s",
            "quantile_ci_low_s": "midpoint_median_ci_low_s",
            "quantile_ci_high_s": "midpoint_median_ci_high_s",
        }
    )
    at = npmle.values_at(fitted, list(horizons_s.values()))
    out = counts.join(medians, on=keys, how="left").join(midpoint, on=keys, how="left")
    for label, horizon in horizons_s.items():
        out = out.join(
            at.filter(pl.col("horizon_s") == float(horizon)).select(
                *keys,
                pl.col("cif").alias(f"cif_{label}"),
                pl.col("cif_low").alias(f"cif_{label}_low"),
                pl.col("cif_high").alias(f"cif_{label}_high"),
            ),
            on=keys,
            how="left",
        )
    level_order = {level: i for i, level in enumerate(GROUP_LEVELS)}
    columns = [
        *keys,
        "n_orders",
        "n_events",
        "n_competing",
        "n_censored",
        "median_s",
        "median_ci_low_s",
        "median_ci_high_s",
        *[f"cif_{label}{suffix}" for label in horizons_s for suffix in ("", "_low", "_high")],
        "midpoint_median_s",
        "midpoint_median_ci_low_s",
        "midpoint_median_ci_high_s",
        "naive_median_s",
        "naive_mean_s",
        "median_resolution_s",
    ]
    return (
        out.with_columns(
            pl.col("group_level").replace_strict(level_order, return_dtype=pl.Int8).alias("_lvl")
        )
        .sort(["provider", "_lvl", "group_value"])
        .select(columns)
    )


def code_records(history: pl.DataFrame, orders: pl.DataFrame) -> pl.DataFrame:
    """Per-order records of the orders whose deliverable is a code, with `code_received` as the
    event and every other terminal state competing (empty without a status history)."""
    if history.is_empty() or orders.is_empty():
        return pl.DataFrame(schema=RECORD_COLUMNS)
    return time_to_event_records(
        history,
        orders,
        event_states=[OrderState.CODE_RECEIVED.value],
        order_kinds=CODE_ORDER_KINDS,
    )


def time_to_code(
    history: pl.DataFrame,
    orders: pl.DataFrame,
    *,
    min_group_orders: int = MIN_GROUP_ORDERS,
) -> pl.DataFrame:
    """Table `time_to_code`: time from origin to the SMS code, for SMS receive orders.

    Event: `code_received`. Competing: every other terminal state (expired, cancelled, failed,
    refunded). See the module docstring for what the median means, and
    `time_to_event_summary` for the columns.
    """
    return code_summary(code_records(history, orders), min_group_orders=min_group_orders)


def code_summary(
    records: pl.DataFrame, *, min_group_orders: int = MIN_GROUP_ORDERS
) -> pl.DataFrame:
    """`time_to_code` from its records (`code_records`)."""
    return time_to_event_summary(records, levels=CODE_LEVELS, min_group_orders=min_group_orders)


def completion_records(history: pl.DataFrame, orders: pl.DataFrame) -> pl.DataFrame:
    """Per-order records with success (code_received, completed) as the event and every failure
    state (failed, expired, cancelled, refunded) competing."""
    return time_to_event_records(
        history,
        orders,
        event_states=SUCCESS_STATE_VALUES,
        competing_states=FAILURE_STATE_VALUES,
    )


def time_to_completion(
    history: pl.DataFrame,
    orders: pl.DataFrame,
    *,
    min_group_orders: int = MIN_GROUP_ORDERS,
) -> pl.DataFrame:
    """Table `time_to_completion`: time from origin to a success state, every provider and kind.

    Columns as in `time_to_event_summary`; levels provider, order_kind, service, country and
    service/country.
    """
    return completion_summary(
        completion_records(history, orders), min_group_orders=min_group_orders
    )


def completion_summary(
    records: pl.DataFrame, *, min_group_orders: int = MIN_GROUP_ORDERS
) -> pl.DataFrame:
    """`time_to_completion` from its records (`completion_records`)."""
    return time_to_event_summary(
        records, levels=COMPLETION_LEVELS, min_group_orders=min_group_orders
    )


def expiry_records(history: pl.DataFrame, orders: pl.DataFrame) -> pl.DataFrame:
    """Records with `expired` as the event, for the orders an expiry window applies to."""
    windows = pl.DataFrame(
        [
            {
                "provider": spec.slug,
                "order_kind": w.order_kind,
                "window_s": float(w.window_s),
                "horizon_s": float(w.window_s) + EXPIRY_GRACE_S,
                "window_documented": w.documented,
            }
            for spec in REGISTRY.specs()
            for w in spec.expiry_windows
        ],
        schema=EXPIRY_WINDOW_SCHEMA,
    )
    parts = []
    for ends_risk, pairs in _expiry_risk_ends().items():
        mine = pl.DataFrame(pairs, schema=["provider", "order_kind"], orient="row")
        records = time_to_event_records(
            history.filter(pl.col("provider").is_in(mine["provider"].unique().to_list())),
            orders,
            event_states=[_EXPIRED],
            competing_states=[*_OTHER_TERMINAL, *ends_risk],
        )
        parts.append(records.join(mine, on=["provider", "order_kind"], how="semi"))
    records = pl.concat(parts) if parts else pl.DataFrame(schema=RECORD_COLUMNS)
    return records.join(windows, on=["provider", "order_kind"], how="inner")


def _expiry_risk_ends() -> dict[tuple[str, ...], list[tuple[str, str]]]:
    """(provider, order kind) of every expiry window, by the non-terminal states that end an
    order's chance to expire (`ExpiryWindow.expires_from`): seen in one of them, the order is
    resolved otherwise from then on."""
    ends: dict[tuple[str, ...], list[tuple[str, str]]] = {}
    for spec in REGISTRY.specs():
        for window in spec.expiry_windows:
            after = (
                sorted(set(_NON_TERMINAL) - set(window.expires_from) - {_UNKNOWN})
                if window.expires_from is not None
                else []
            )
            ends.setdefault(tuple(after), []).append((spec.slug, window.order_kind))
    return ends


def expiry_summary(records: pl.DataFrame, group_by: Sequence[str]) -> pl.DataFrame:
    """Cumulative incidence of expiry at each group's horizon, and the share among resolved,
    from the expiry records (`expiry_records`)."""
    keys = list(group_by)
    records = weighted(records)
    orders = pl.col(WEIGHT)
    counts = records.group_by(keys).agg(
        orders.sum().cast(pl.Int64).alias("n_orders"),
        orders.filter(pl.col("event_code") == EVENT).sum().cast(pl.Int64).alias("n_expired"),
        orders.filter(pl.col("event_code") != 0).sum().cast(pl.Int64).alias("n_resolved"),
        pl.col("window_s").first(),
        pl.col("horizon_s").first(),
        pl.col("window_documented").first(),
    )
    table = event_table(records, keys)
    horizons = sorted(set(counts["horizon_s"].to_list()))
    at = values_at(table, keys, horizons).join(
        counts.select(*keys, "horizon_s"), on=[*keys, "horizon_s"], how="semi"
    )
    share_low, share_high = wilson_interval(pl.col("n_expired"), pl.col("n_resolved"))
    return (
        counts.join(at, on=[*keys, "horizon_s"], how="left")
        .rename({"cif": "expiry_rate", "cif_low": "ci_low", "cif_high": "ci_high"})
        .with_columns(
            pl.when(pl.col("n_resolved") > 0)
            .then(pl.col("n_expired") / pl.col("n_resolved"))
            .alias("resolved_share_expired"),
            share_low.alias("resolved_share_ci_low"),
            share_high.alias("resolved_share_ci_high"),
        )
        .select(
            *keys,
            "n_orders",
            "n_expired",
            "n_resolved",
            "expiry_rate",
            "ci_low",
            "ci_high",
            "window_s",
            "horizon_s",
            "window_documented",
            "resolved_share_expired",
            "resolved_share_ci_low",
            "resolved_share_ci_high",
        )
        .sort(keys)
    )


def expiry_rates(history: pl.DataFrame, orders: pl.DataFrame) -> pl.DataFrame:
    """Table `expiry_rates`: how often orders expire, per provider (its spec's `expiry_windows`).

    `expiry_rate` is the Aalen–Johansen cumulative incidence of `expired` at the provider's
    window plus `EXPIRY_GRACE_S` (success, cancellation and failure compete; open orders are
    censored), with its log(−log) 95 % interval (`ci_low`, `ci_high`); null when follow-up does
    not reach the horizon yet. `resolved_share_expired` is expired / resolved orders with a
    Wilson 95 % interval: simple, but it ignores open orders.

    Returns:
        One row per (provider, order_kind) with an expiry window.
    """
    return expiry_summary(expiry_records(history, orders), EXPIRY_KEYS)


def expiry_rates_over_time(
    history: pl.DataFrame, orders: pl.DataFrame, *, every: str = "1h"
) -> pl.DataFrame:
    """Table `expiry_rates_over_time`: `expiry_rates` per bucket of origin time.

    Args:
        history: the status history.
        orders: the orders table.
        every: bucket width as a polars duration string ("1h", "1d").

    Returns:
        The `expiry_rates` columns plus `bucket_start` (UTC), one row per provider, order kind
        and bucket that has orders.
    """
    return expiry_over_time(expiry_records(history, orders), every=every)


def expiry_over_time(records: pl.DataFrame, *, every: str = "1h") -> pl.DataFrame:
    """`expiry_rates_over_time` from the expiry records (`expiry_records`)."""
    bucketed = records.with_columns(pl.col("origin_at").dt.truncate(every).alias("bucket_start"))
    return expiry_summary(bucketed, [*EXPIRY_KEYS, "bucket_start"])

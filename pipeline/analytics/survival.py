"""Survival estimators for right-censored data with competing risks, vectorised over groups.

Input: one row per order with a time (`time_s`) and an event code (`event_code`: 0 censored,
1 the event of interest, 2 a competing event). Every estimator runs for all groups at once with
polars window expressions, so one call serves every provider and service/country group.

Estimators (n = at risk just before t, d1 / d2 = events of interest / competing events at t,
d = d1 + d2, S = all-cause Kaplan–Meier):

- Kaplan–Meier of the event treating competing events as censoring, `km_event` = Π(1 − d1/n),
  with Greenwood's variance and the exponential-Greenwood ("log-log") 95 % interval.
- Aalen–Johansen cumulative incidence of the event, `cif` = Σ S(t−)·d1/n, with the delta-method
  variance of Collett, *Modelling Survival Data in Medical Research* (3rd ed., p. 411):

      Var F(t) = Σ (F(t) − F(tᵢ))²·dᵢ/(nᵢ(nᵢ − dᵢ)) + Σ S(tᵢ₋)²·d1ᵢ(nᵢ − d1ᵢ)/nᵢ³
                 − 2 Σ (F(t) − F(tᵢ))·S(tᵢ₋)·d1ᵢ/nᵢ²

  and a log(−log) transformed 95 % interval, which stays inside (0, 1). Both are what lifelines
  computes (`KaplanMeierFitter`, `AalenJohansenFitter`), so lifelines checks them in the tests.
  A term with nᵢ = dᵢ (everyone left has the event) is multiplied by zero wherever it appears and
  is set to 0 instead of ∞.
- Quantiles of the cumulative incidence (`cif_quantiles`): the first time F(t) ≥ q; the 95 %
  interval inverts the pointwise interval (Brookmeyer–Crowley style): from the first time the
  upper bound reaches q to the first time the lower bound does. Null when never reached.

Intervals are null where they are undefined (estimate exactly 0 or 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

Z_95 = 1.959963984540054
"""Standard normal 97.5 % quantile: two-sided 95 % intervals."""

CONFIDENCE = 0.95
"""Level of every interval and bound here."""

UNSEEN_TAIL_MAX = 0.05
"""Largest share of orders that may, at 95 % confidence, have outlived the orders followed
past the last open one, for a curve to be read beyond it (`known_until`); 5 points is the
accuracy an expiry rate is held to."""

QUANTILE_TOLERANCE = 1e-12
"""Slack when asking whether a cumulative sum of floats has reached a quantile such as 0.5."""

CENSORED = 0
EVENT = 1
COMPETING = 2

WEIGHT = "orders"
"""Optional record column: how many identical orders the row stands for (records collapsed
into cells, `pipeline.cells.read_record_cells`); a row counts once without it."""


def weighted(records: pl.DataFrame) -> pl.DataFrame:
    """`records` with its `WEIGHT` column: 1 per row where it has none."""
    if WEIGHT in records.columns:
        return records
    return records.with_columns(pl.lit(1, dtype=pl.Int64).alias(WEIGHT))


EVENT_TABLE_COLUMNS = (
    "time_s",
    "n_at_risk",
    "n_event",
    "n_competing",
    "n_censored",
    "survival",
    "km_event",
    "km_event_low",
    "km_event_high",
    "cif",
    "cif_var",
    "cif_low",
    "cif_high",
)


def event_table(
    records: pl.DataFrame,
    group_by: Sequence[str],
    *,
    time: str = "time_s",
    code: str = "event_code",
) -> pl.DataFrame:
    """Kaplan–Meier and Aalen–Johansen estimates at every distinct time of every group.

    Args:
        records: one row per subject with `time` (seconds, ≥ 0) and `code` (0, 1, 2), or per
            `WEIGHT` identical subjects.
        group_by: columns that define the groups; at least one.
        time: the time column.
        code: the event-code column.

    Returns:
        One row per (group, distinct time), sorted, with the group columns and
        `EVENT_TABLE_COLUMNS`.
    """
    groups = list(group_by)
    if not groups:
        raise ValueError("event_table needs at least one group column")
    code_col = pl.col(code)
    orders = pl.col(WEIGHT)
    counts = (
        weighted(records)
        .group_by([*groups, pl.col(time).cast(pl.Float64).alias("time_s")])
        .agg(
            orders.filter(code_col == EVENT).sum().cast(pl.Int64).alias("n_event"),
            orders.filter(code_col == COMPETING).sum().cast(pl.Int64).alias("n_competing"),
            orders.filter(code_col == CENSORED).sum().cast(pl.Int64).alias("n_censored"),
            orders.sum().cast(pl.Int64).alias("_leaving"),
        )
        .sort([*groups, "time_s"])
    )
    return (
        counts.with_columns(
            pl.col("_leaving").cum_sum(reverse=True).over(groups).alias("n_at_risk")
        )
        .with_columns(_survival(groups), _km_event(groups), _greenwood_sum(groups))
        .with_columns(pl.col("survival").shift(1, fill_value=1.0).over(groups).alias("_s_lag"))
        .with_columns(_cif(groups))
        .with_columns(_cif_variance(groups))
        .with_columns(*_cif_interval(), *_km_interval())
        .select(*groups, *EVENT_TABLE_COLUMNS)
    )


def _n() -> pl.Expr:
    return pl.col("n_at_risk").cast(pl.Float64)


def _survival(groups: list[str]) -> pl.Expr:
    """All-cause Kaplan–Meier survival S(t)."""
    d = pl.col("n_event") + pl.col("n_competing")
    return (1.0 - d / _n()).cum_prod().over(groups).alias("survival")


def _km_event(groups: list[str]) -> pl.Expr:
    """Kaplan–Meier of the event of interest, competing events treated as censoring."""
    return (1.0 - pl.col("n_event") / _n()).cum_prod().over(groups).alias("km_event")


def _ratio_or_zero(d: pl.Expr) -> pl.Expr:
    """d / (n (n − d)), or 0 where n = d (that term is always multiplied by zero)."""
    n = _n()
    return pl.when(n > d).then(d / (n * (n - d))).otherwise(0.0)


def _greenwood_sum(groups: list[str]) -> pl.Expr:
    return _ratio_or_zero(pl.col("n_event")).cum_sum().over(groups).alias("_greenwood")


def _cif(groups: list[str]) -> pl.Expr:
    """Aalen–Johansen cumulative incidence F(t) of the event of interest."""
    return (pl.col("_s_lag") * pl.col("n_event") / _n()).cum_sum().over(groups).alias("cif")


def _cif_variance(groups: list[str]) -> pl.Expr:
    """Collett's delta-method variance of F(t), its sums expanded into running sums."""
    n = _n()
    f = pl.col("cif")
    d1 = pl.col("n_event").cast(pl.Float64)
    a = _ratio_or_zero(pl.col("n_event") + pl.col("n_competing"))
    b = pl.col("_s_lag") ** 2 * d1 * (n - d1) / n**3
    c = pl.col("_s_lag") * d1 / n**2

    def running(expr: pl.Expr) -> pl.Expr:
        return expr.cum_sum().over(groups)

    first = f**2 * running(a) - 2.0 * f * running(a * f) + running(a * f**2)
    third = f * running(c) - running(c * f)
    return (first + running(b) - 2.0 * third).clip(lower_bound=0.0).alias("cif_var")


def _defined(value: pl.Expr, expr: pl.Expr) -> pl.Expr:
    """`expr` where the estimate `value` is strictly inside (0, 1), else null."""
    return pl.when((value > 0.0) & (value < 1.0)).then(expr).otherwise(None)


def _cif_interval() -> list[pl.Expr]:
    """log(−log) transformed 95 % interval of F(t)."""
    f = pl.col("cif")
    log_f = f.log()
    transformed = (-log_f).log()
    se = pl.col("cif_var").sqrt() / (f * log_f.abs())
    return [
        _defined(f, (-(transformed + Z_95 * se).exp()).exp()).alias("cif_low"),
        _defined(f, (-(transformed - Z_95 * se).exp()).exp()).alias("cif_high"),
    ]


def _km_interval() -> list[pl.Expr]:
    """Exponential-Greenwood 95 % interval of the event-specific Kaplan–Meier."""
    s = pl.col("km_event")
    v = s.log()
    spread = Z_95 * pl.col("_greenwood").sqrt() / v
    return [
        _defined(s, (-((-v).log() - spread).exp()).exp()).alias("km_event_low"),
        _defined(s, (-((-v).log() + spread).exp()).exp()).alias("km_event_high"),
    ]


def values_at(
    table: pl.DataFrame,
    group_by: Sequence[str],
    horizons_s: Sequence[float],
    columns: Sequence[str] = ("cif", "cif_low", "cif_high"),
) -> pl.DataFrame:
    """Step-function values of `columns` at each horizon, per group (long format).

    Before a group's first time the cumulative incidence is 0 and survival 1; intervals are null
    there. Past the group's `known_until` every column is null.

    Returns:
        One row per (group, horizon) with the group columns, `horizon_s` and `columns`.
    """
    groups = list(group_by)
    ends = table.group_by(groups).agg(known_until().alias("_known_until"))
    horizons = pl.DataFrame(
        {"horizon_s": [float(h) for h in horizons_s]}, schema={"horizon_s": pl.Float64}
    )
    grid = ends.join(horizons, how="cross").sort("horizon_s")
    at = grid.join_asof(
        table.select(*groups, "time_s", *columns).sort("time_s"),
        left_on="horizon_s",
        right_on="time_s",
        by=groups,
        strategy="backward",
        check_sortedness=False,
    )
    start = {"cif": 0.0, "survival": 1.0, "km_event": 1.0}
    followed = pl.col("horizon_s") <= pl.col("_known_until")
    return (
        at.with_columns([pl.col(c).fill_null(start[c]) for c in columns if c in start])
        .with_columns([pl.when(followed).then(pl.col(c)).alias(c) for c in columns])
        .select(*groups, "horizon_s", *columns)
        .sort([*groups, "horizon_s"])
    )


def known_until() -> pl.Expr:
    """Aggregation over one group's event table: how far its curve can be read.

    Everywhere (∞) when nobody was left open, or when the orders followed past the last open
    one all resolved and, at 95 % confidence, at most `UNSEEN_TAIL_MAX` of all orders could
    have outlived them (`unseen_tail_bound`); else up to the last time an order was left open.
    Past that time the curve rests on the few orders followed further and says nothing of
    the open ones' fate (a median read there would land on the last of them).
    """
    censored = pl.col("n_censored") > 0
    leaving = pl.col("n_event") + pl.col("n_competing") + pl.col("n_censored")
    beyond = (pl.col("n_at_risk") - leaving).filter(censored).last().cast(pl.Float64)
    survival = pl.col("survival").filter(censored).last()
    vouched = (beyond > 0) & (unseen_tail_bound(survival, beyond) <= UNSEEN_TAIL_MAX)
    return (
        pl.when(censored.any() & vouched.not_())
        .then(pl.col("time_s").filter(censored).last())
        .otherwise(float("inf"))
    )


def unseen_tail_bound(survival: Any, beyond: Any) -> Any:
    """At 95 % confidence, the largest share of all orders that could have outlived a curve's
    last time, when a share `survival` was still open at the last censoring and the `beyond`
    orders followed past it all resolved: 1 − 0.05^(1/n) is the exact binomial bound for none
    of n. Works on floats, numpy arrays and polars expressions alike."""
    return survival * (1.0 - (1.0 - CONFIDENCE) ** (1.0 / beyond))


def cif_quantiles(table: pl.DataFrame, group_by: Sequence[str], q: float = 0.5) -> pl.DataFrame:
    """Time at which the cumulative incidence reaches `q`, with its 95 % interval, per group.

    Returns:
        One row per group: `quantile_s`, `quantile_ci_low_s`, `quantile_ci_high_s` (each null
        when the curve, or its bound, does not reach `q` by the group's `known_until`).
    """
    level = q - QUANTILE_TOLERANCE
    time = pl.col("time_s")
    known = time <= known_until()
    return table.group_by(list(group_by), maintain_order=True).agg(
        time.filter(known & (pl.col("cif") >= level)).min().alias("quantile_s"),
        time.filter(known & (pl.col("cif_high").fill_null(pl.col("cif")) >= level))
        .min()
        .alias("quantile_ci_low_s"),
        time.filter(known & (pl.col("cif_low").fill_null(pl.col("cif")) >= level))
        .min()
        .alias("quantile_ci_high_s"),
    )


def wilson_interval(successes: pl.Expr, trials: pl.Expr, z: float = Z_95) -> list[pl.Expr]:
    """Wilson score interval of a binomial proportion, as two expressions (low, high).

    Null when there are no trials. Name them with `.alias`.
    """
    n = trials.cast(pl.Float64)
    p = successes.cast(pl.Float64) / n
    centre = (p + z**2 / (2.0 * n)) / (1.0 + z**2 / n)
    half = z / (1.0 + z**2 / n) * (p * (1.0 - p) / n + z**2 / (4.0 * n**2)).sqrt()
    defined = pl.when(n > 0)
    return [
        defined.then((centre - half).clip(lower_bound=0.0)).otherwise(None),
        defined.then((centre + half).clip(upper_bound=1.0)).otherwise(None),
    ]

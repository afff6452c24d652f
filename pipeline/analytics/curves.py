"""Cumulative-incidence curves per provider, as points to draw: table `incidence_curves`.

The curves are the NPMLE (`pipeline.analytics.npmle`) that the medians of `time_to_code` and
`time_to_completion` are read from, fitted to the same per-order records, so a curve crosses
50 % exactly at the median stored beside it. Stored as a table, the report, notebooks and BI
tools draw them without recomputing anything from `status_history`.
"""

from __future__ import annotations

import polars as pl

from pipeline.analytics import npmle
from pipeline.analytics.metrics import code_records, completion_records
from pipeline.analytics.survival import WEIGHT, weighted

MEASURE_CODE = "time_to_code"
"""`measure` of the curves of the SMS code (as table `time_to_code`)."""
MEASURE_COMPLETION = "time_to_completion"
"""`measure` of the curves of success (as table `time_to_completion`)."""

CURVE_COLUMNS: dict[str, pl.DataType] = {
    "provider": pl.String(),
    "time_s": pl.Float64(),
    "cif": pl.Float64(),
    "cif_var": pl.Float64(),
    "cif_low": pl.Float64(),
    "cif_high": pl.Float64(),
    "known_until_s": pl.Float64(),
}
"""Columns of one measure's curves (`provider_curves`)."""

INCIDENCE_CURVE_COLUMNS: dict[str, pl.DataType] = {
    "measure": pl.String(),
    "provider": pl.String(),
    "n_orders": pl.Int64(),
    **{name: dtype for name, dtype in CURVE_COLUMNS.items() if name != "provider"},
}
"""Columns of table `incidence_curves`."""


def provider_curves(records: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, int]]:
    """Cumulative incidence per provider, and the orders per provider, from time-to-event records.

    The curve is the NPMLE the `time_to_code` / `time_to_completion` medians are read from:
    points to join with straight lines, each provider's curve known up to `known_until_s`.

    Args:
        records: per-order records (`pipeline.analytics.events.time_to_event_records`).

    Returns:
        `pipeline.analytics.npmle.curve_table` rows by provider (`CURVE_COLUMNS`), in curve
        order; and the orders per provider.
    """
    if records.is_empty():
        return pl.DataFrame(schema=CURVE_COLUMNS), {}
    orders = weighted(records).group_by("provider").agg(pl.col(WEIGHT).sum()).sort("provider")
    counts = dict(orders.iter_rows())
    curves = npmle.curve_table(npmle.fit_records(records, ["provider"]))
    return curves.select(list(CURVE_COLUMNS)).sort("provider", maintain_order=True), counts


def incidence_curves(history: pl.DataFrame, orders: pl.DataFrame) -> pl.DataFrame:
    """Table `incidence_curves`: every provider's cumulative-incidence curve, per measure.

    Measures: `time_to_code` (the code, SMS receive orders; expiry, cancellation and failure
    compete) and `time_to_completion` (success, every order; failure states compete), each from
    the records its table's medians come from.

    Returns:
        Columns `INCIDENCE_CURVE_COLUMNS`: `measure`, `provider`, `n_orders` (orders behind the
        provider's curve), then the curve's points (`time_s`, `cif` with its variance `cif_var`
        and 95 % band `cif_low` / `cif_high`, `known_until_s`), in curve order.
    """
    has_history = not history.is_empty() and not orders.is_empty()
    return curves_from(
        code_records(history, orders),
        completion_records(history, orders) if has_history else pl.DataFrame(),
    )


def curves_from(code: pl.DataFrame, completion: pl.DataFrame) -> pl.DataFrame:
    """`incidence_curves` from the code and completion records."""
    records = {MEASURE_CODE: code, MEASURE_COMPLETION: completion}
    parts = [pl.DataFrame(schema=INCIDENCE_CURVE_COLUMNS)]
    for measure, measure_records in records.items():
        curves, counts = provider_curves(measure_records)
        if curves.is_empty():
            continue
        parts.append(
            curves.with_columns(
                pl.lit(measure).alias("measure"),
                pl.col("provider").replace_strict(counts, return_dtype=pl.Int64).alias("n_orders"),
            ).select(list(INCIDENCE_CURVE_COLUMNS))
        )
    return pl.concat(parts)


def curves_of(table: pl.DataFrame, measure: str) -> tuple[pl.DataFrame, dict[str, int]]:
    """One measure's curves out of table `incidence_curves`, as `provider_curves` returns them.

    A table that is empty or lacks the columns (not refreshed since it was added) gives no
    curves.
    """
    if table.is_empty() or not set(INCIDENCE_CURVE_COLUMNS) <= set(table.columns):
        return pl.DataFrame(schema=CURVE_COLUMNS), {}
    rows = table.filter(pl.col("measure") == measure)
    counts = dict(
        rows.group_by("provider", maintain_order=True)
        .agg(pl.col("n_orders").first())
        .sort("provider")
        .iter_rows()
    )
    return rows.select(list(CURVE_COLUMNS)), counts

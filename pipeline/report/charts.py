"""The report's charts, as `Plot`s (`pipeline.report.plot`) that render to SVG.

Each provider has one colour everywhere and is labelled with its display name, both from its
spec (`pipeline.report.providers`); durations are shown in the unit that suits the longest one
(seconds, minutes or hours, as in the tables). Every chart function returns the `Plot`, or
None when there is nothing to draw; `Plot.svg()` gives the image. Text from the data is
escaped in the SVG, and the image is embedded as an `<img>`, so none of it reaches the page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl

from pipeline.report.markup import DurationUnit, duration_unit
from pipeline.report.plot import (
    Axis,
    Band,
    Bars,
    ErrorBars,
    Layer,
    LegendEntry,
    Line,
    Markers,
    Plot,
)
from pipeline.report.providers import OTHER_COLOUR, provider_colour, provider_name, provider_order
from pipeline.report.svg import decimals, ticks

__all__ = [
    "OTHER_COLOUR",
    "cumulative_incidence_chart",
    "curve_points",
    "curves_unit",
    "error_mix_chart",
    "expiry_over_time_chart",
    "latency_chart",
    "naive_vs_aware_chart",
    "provider_colour",
    "provider_order",
]

ERROR_CLASS_COLOURS: tuple[str, ...] = (
    "#4C72B0",
    "#DD8452",
    "#55A868",
    "#C44E52",
    "#8172B3",
    "#937860",
    "#DA8BC3",
    "#8C8C8C",
    "#CCB974",
    "#64B5CD",
    "#2F4F4F",
    "#B8860B",
)
"""Colours of the error classes in the error-mix chart, in order of first appearance."""

WIDE = (880.0, 462.0)
"""Size (pixels; the height a minimum) of the full-width charts."""
SMALL = (704.0, 374.0)
"""Size of the smaller charts."""
HALF_LINE = "#999999"
"""Colour of the dashed line at 50 %."""
EXPIRY_CHART_HOURS = 48
"""The expiry chart shows at most this many hours of order creation, the most recent: a year of
hours is a table (`expiry_rates_over_time`), not a chart."""
MAX_TICK_LABELS = 12
"""Label every hour up to this many; past it, every second, third, ... hour."""
MARGIN = 0.04
"""Room left past the largest value on a value axis, as a share of it."""


def _value_axis(hi: float, title: str, *, percent: bool = False, lo: float = 0.0) -> Axis:
    """An axis from `lo` to `hi` with round ticks, labelled as numbers or percentages."""
    hi = hi if math.isfinite(hi) and hi > lo else lo + 1.0
    values = ticks(lo, hi)
    step = values[1] - values[0] if len(values) > 1 else hi - lo
    if percent:
        digits = decimals(step * 100.0)
        labels = [f"{v * 100.0:.{digits}f}%" for v in values]
    else:
        digits = decimals(step)
        labels = [f"{v:,.{digits}f}" for v in values]
    return Axis(lo, hi, values, labels, title)


def _category_axis(labels: Sequence[str], colours: Sequence[str] | None = None) -> Axis:
    """Categories at 0, 1, ... listed from the top."""
    n = len(labels)
    return Axis(-0.6, n - 0.4, list(range(n)), list(labels), "", colours, inverted=True)


def _array(values: Sequence[float | None] | pl.Series) -> np.ndarray:
    return np.asarray(list(values), dtype=np.float64)


def _axis_unit(seconds: Sequence[float | None]) -> DurationUnit:
    """The unit of a time axis: the one the longest duration on it reads best in."""
    return duration_unit(max((s for s in seconds if s is not None), default=0.0))


def curve_points(part: pl.DataFrame) -> pl.DataFrame:
    """One provider's curve as the points to draw: from (0, 0) through its rows, then flat to
    `known_until_s` where it stops (past it the NPMLE does not know the curve).

    The NPMLE rises linearly across each polling interval that holds mass and is flat between
    them, so the points are joined by straight lines, not steps."""
    known_until = part["known_until_s"].max() if "known_until_s" in part.columns else None
    if known_until is not None:
        part = part.filter(pl.col("time_s") <= known_until)
    start = pl.DataFrame({"time_s": [0.0], "cif": [0.0], "cif_low": [0.0], "cif_high": [0.0]})
    # Intervals are undefined (null) where F is 0 or 1; the band then shrinks to the curve.
    points = part.sort("time_s", "cif", maintain_order=True).select(
        pl.col("time_s").cast(pl.Float64),
        pl.col("cif").cast(pl.Float64),
        pl.col("cif_low").fill_null(pl.col("cif")).cast(pl.Float64),
        pl.col("cif_high").fill_null(pl.col("cif")).cast(pl.Float64),
    )
    frame = pl.concat([start, points])
    if known_until is not None and known_until > frame["time_s"][-1]:
        frame = pl.concat([frame, frame.tail(1).with_columns(pl.lit(known_until).alias("time_s"))])
    return frame


def curves_unit(curves: pl.DataFrame) -> DurationUnit:
    """The time unit of a cumulative-incidence chart of `curves` (its longest drawn time)."""
    ends = curves["time_s"].to_list()
    if "known_until_s" in curves.columns:
        ends += curves["known_until_s"].to_list()
    return _axis_unit(ends)


def cumulative_incidence_chart(
    curves: pl.DataFrame,
    *,
    title: str,
    ylabel: str,
    counts: dict[str, int] | None = None,
) -> Plot | None:
    """Each provider's cumulative incidence (`curve_points`) with its 95 % band, and a dashed
    line at 50 %: where a curve crosses it is the provider's median. Each line's key is its
    provider.

    Args:
        curves: `incidence_curves` rows of one measure (`pipeline.analytics.curves.curves_of`).
        title: the chart title (ideally the finding).
        ylabel: what the curve measures.
        counts: orders per provider, shown in the legend.

    Returns:
        The chart, or None when `curves` is empty.
    """
    if curves.is_empty():
        return None
    unit = curves_unit(curves)
    bands: list[Layer] = []
    lines: list[Layer] = []
    legend = []
    longest = 0.0
    for name in provider_order(curves["provider"].unique().to_list()):
        frame = curve_points(curves.filter(pl.col("provider") == name))
        colour = provider_colour(name)
        x = frame["time_s"].to_numpy() / unit.seconds
        longest = max(longest, float(x.max()))
        bands.append(Band(x, frame["cif_low"].to_numpy(), frame["cif_high"].to_numpy(), colour))
        lines.append(Line(x, frame["cif"].to_numpy(), colour, key=name))
        text = provider_name(name)
        if counts and name in counts:
            text = f"{text} (n={counts[name]})"
        legend.append(LegendEntry(text, colour))
    hi = longest * (1.0 + MARGIN) if longest > 0 else 1.0
    half = Line(np.array([0.0, hi]), np.array([0.5, 0.5]), HALF_LINE, 1.0, dash="5 4")
    return Plot(
        size=WIDE,
        title=title,
        x=_value_axis(hi, f"time since the order was created ({unit.name})"),
        y=Axis(0.0, 1.02, *_percent_ticks(), title=ylabel),
        layers=[*bands, half, *lines],
        legend=legend,
        legend_inside=True,
    )


def _percent_ticks() -> tuple[list[float], list[str]]:
    values = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    return values, [f"{v:.0%}" for v in values]


def recent_hours(rates: pl.DataFrame) -> tuple[pl.DataFrame, bool]:
    """The rows of the last `EXPIRY_CHART_HOURS` buckets in `rates`, and whether older ones
    were left out."""
    hours = rates["bucket_start"].unique().sort()
    if hours.len() <= EXPIRY_CHART_HOURS:
        return rates, False
    return rates.filter(pl.col("bucket_start") >= hours[-EXPIRY_CHART_HOURS]), True


def expiry_over_time_chart(rates: pl.DataFrame, *, title: str) -> Plot | None:
    """Expiry rate per provider and hour of order creation, with 95 % intervals, over the last
    `EXPIRY_CHART_HOURS` hours that have a rate.

    Where the censoring-aware rate is not defined yet (follow-up shorter than the window) the
    share of resolved orders that expired is drawn instead, with hollow markers.

    Args:
        rates: `expiry_rates_over_time` rows.
        title: the chart title.

    Returns:
        The chart, or None when no bucket has a rate.
    """
    frame = rates.with_columns(
        pl.col("expiry_rate").is_not_null().alias("_aware"),
        pl.coalesce("expiry_rate", "resolved_share_expired").alias("_rate"),
        pl.when(pl.col("expiry_rate").is_not_null())
        .then(pl.col("ci_low").fill_null(pl.col("expiry_rate")))
        .otherwise(pl.col("resolved_share_ci_low"))
        .alias("_low"),
        pl.when(pl.col("expiry_rate").is_not_null())
        .then(pl.col("ci_high").fill_null(pl.col("expiry_rate")))
        .otherwise(pl.col("resolved_share_ci_high"))
        .alias("_high"),
    ).filter(pl.col("_rate").is_not_null())
    if frame.is_empty():
        return None
    frame, cut = recent_hours(frame)
    buckets = sorted(frame["bucket_start"].unique().to_list())
    position = {bucket: i for i, bucket in enumerate(buckets)}
    providers = provider_order(frame["provider"].unique().to_list())
    step = 1.0 / (len(providers) + 1)
    layers: list[Layer] = []
    legend = []
    any_fallback = False
    for i, provider in enumerate(providers):
        part = frame.filter(pl.col("provider") == provider).sort("bucket_start")
        colour = provider_colour(provider)
        x = _array([position[b] + (i + 1) * step - 0.5 for b in part["bucket_start"]])
        y = part["_rate"].to_numpy().astype(np.float64)
        low = np.minimum(part["_low"].fill_null(0.0).to_numpy(), y)
        high = np.maximum(part["_high"].fill_null(1.0).to_numpy(), y)
        aware = part["_aware"].to_numpy()
        layers += [
            ErrorBars(x, low, high, colour),
            Line(x, y, colour, 1.0, opacity=0.6),
            Markers(x[aware], y[aware], colour),
        ]
        if not aware.all():
            any_fallback = True
            layers.append(Markers(x[~aware], y[~aware], colour, hollow=True))
        legend.append(LegendEntry(provider_name(provider), colour, "marker"))
    if any_fallback:
        legend.append(
            LegendEntry("share of resolved orders (follow-up too short)", "#555555", "hollow")
        )
    every = -(-len(buckets) // MAX_TICK_LABELS)
    labelled = list(range(0, len(buckets), every))
    top = frame.select(pl.max_horizontal(pl.col("_high").fill_null(1.0), "_rate").max()).item()
    x_title = "hour the orders were created (UTC)" + (
        f", the last {EXPIRY_CHART_HOURS} with a rate" if cut else ""
    )
    return Plot(
        size=WIDE,
        title=title,
        x=Axis(
            -0.6,
            len(buckets) - 0.4,
            labelled,
            [buckets[i].strftime("%d %b\n%H:%M") for i in labelled],
            x_title,
        ),
        y=_value_axis(
            min(1.05, max(0.05, float(top or 0.0)) * 1.1), "orders that expired", percent=True
        ),
        layers=layers,
        legend=legend,
    )


def error_mix_chart(mix: pl.DataFrame, *, title: str) -> Plot | None:
    """Share of polls per error class and provider, as stacked horizontal bars.

    Args:
        mix: `error_mix` rows (null `error_class` = valid answers, left out of the bars).
        title: the chart title.

    Returns:
        The chart, or None when there are no polls at all.
    """
    if mix.is_empty():
        return None
    providers = provider_order(mix["provider"].unique().to_list())
    errors = mix.filter(pl.col("error_class").is_not_null())
    classes = (
        errors.group_by("error_class")
        .agg(pl.col("polls").sum())
        .sort(["polls", "error_class"], descending=[True, False])["error_class"]
        .to_list()
    )
    positions = _array(range(len(providers)))
    left = np.zeros(len(providers))
    layers: list[Layer] = []
    legend = []
    for i, error_class in enumerate(classes):
        shares = dict(
            errors.filter(pl.col("error_class") == error_class)
            .select("provider", "share")
            .iter_rows()
        )
        widths = _array([float(shares.get(p) or 0.0) for p in providers])
        colour = ERROR_CLASS_COLOURS[i % len(ERROR_CLASS_COLOURS)]
        layers.append(Bars(positions, left.copy(), widths, colour))
        legend.append(LegendEntry(str(error_class), colour, "box"))
        left += widths
    hi = max(0.01, float(left.max(initial=0.0)) * 1.15)
    return Plot(
        size=SMALL,
        title=title,
        x=_value_axis(hi, "share of polls that failed", percent=True),
        y=_category_axis(
            [provider_name(p) for p in providers], [provider_colour(p) for p in providers]
        ),
        layers=layers,
        legend=legend,
    )


def latency_chart(reliability: pl.DataFrame, *, title: str) -> Plot | None:
    """Median and 95th-percentile poll latency per provider (a bar from p50 to p95).

    Args:
        reliability: `provider_reliability` rows (`latency_p50_ms`, `latency_p95_ms`).
        title: the chart title.

    Returns:
        The chart, or None when no provider has a latency.
    """
    frame = reliability.filter(pl.col("latency_p95_ms").is_not_null())
    if frame.is_empty():
        return None
    order = provider_order(frame["provider"].to_list())
    frame = frame.sort(pl.col("provider").replace_strict(order, list(range(len(order)))))
    layers: list[Layer] = []
    rows = frame.select("provider", "latency_p50_ms", "latency_p95_ms").iter_rows()
    for y, (provider, p50, p95) in enumerate(rows):
        colour = provider_colour(provider)
        median = p50 if p50 is not None else p95
        at = np.array([float(y)])
        layers += [
            Line(
                np.array([median, p95], dtype=np.float64),
                np.array([y, y], dtype=np.float64),
                colour,
                3.0,
                opacity=0.5,
            ),
            Markers(np.array([median], dtype=np.float64), at, colour, size=8.0),
            Markers(np.array([p95], dtype=np.float64), at, colour, hollow=True, size=8.0),
        ]
    providers = frame["provider"].to_list()
    longest = float(frame["latency_p95_ms"].max())  # type: ignore[arg-type]
    return Plot(
        size=SMALL,
        title=title,
        x=_value_axis(longest * (1.0 + MARGIN), "poll latency (ms): ● median, ○ 95th percentile"),
        y=_category_axis(
            [provider_name(p) for p in providers], [provider_colour(p) for p in providers]
        ),
        layers=layers,
    )


def naive_vs_aware_chart(
    rows: pl.DataFrame, *, title: str, labels: Sequence[str] | None = None
) -> Plot | None:
    """Naive median (finished orders only) beside the censoring-aware median, per provider.

    Args:
        rows: one row per provider with `provider`, `naive_median_s`, `median_s`,
            `median_ci_low_s`, `median_ci_high_s`.
        title: the chart title.
        labels: y-axis labels (default: the providers' display names).

    Returns:
        The chart, or None when no row has either median.
    """
    frame = rows.filter(pl.col("naive_median_s").is_not_null() | pl.col("median_s").is_not_null())
    if frame.is_empty():
        return None
    if labels is not None and len(labels) != frame.height:
        raise ValueError(f"{len(labels)} labels for {frame.height} rows with a median")
    if labels is None:
        order = provider_order(frame["provider"].to_list())
        frame = frame.sort(pl.col("provider").replace_strict(order, list(range(len(order)))))
    names = (
        list(labels)
        if labels is not None
        else [provider_name(p) for p in frame["provider"].to_list()]
    )
    longest = frame.select(
        pl.max_horizontal("naive_median_s", "median_s", "median_ci_high_s").max()
    ).item()
    unit = _axis_unit([longest])
    offset = 0.15
    layers: list[Layer] = []
    for y, row in enumerate(frame.iter_rows(named=True)):
        colour = provider_colour(row["provider"])
        if row["naive_median_s"] is not None:
            layers.append(
                Markers(
                    _array([row["naive_median_s"] / unit.seconds]),
                    _array([y + offset]),
                    colour,
                    "square",
                    hollow=True,
                    size=8.0,
                )
            )
        if row["median_s"] is not None:
            low = row["median_ci_low_s"] if row["median_ci_low_s"] is not None else row["median_s"]
            high = row["median_ci_high_s"]
            end = high if high is not None else row["median_s"]
            layers += [
                Line(
                    _array([low / unit.seconds, end / unit.seconds]),
                    _array([y - offset, y - offset]),
                    colour,
                    2.0,
                ),
                Markers(
                    _array([row["median_s"] / unit.seconds]), _array([y - offset]), colour, size=8.0
                ),
            ]
    hi = float(longest or 0.0) / unit.seconds * (1.0 + MARGIN)
    return Plot(
        size=SMALL,
        title=title,
        x=_value_axis(
            hi, f"median time to success ({unit.name}): □ naive, ● censoring-aware with 95 % CI"
        ),
        y=_category_axis(names),
        layers=layers,
    )

"""Matplotlib charts for the report, rendered to PNG bytes.

Figures are built with the object-oriented API (`matplotlib.figure.Figure` on the Agg canvas), so
nothing touches pyplot's global state or needs a display. Each provider has one colour everywhere
and is labelled with its display name, both from its spec (`pipeline.report.providers`);
durations are shown in the unit that suits the longest one (seconds, minutes or hours, as in the
tables), titles are wrapped to fit inside the figure, and every chart function returns the PNG
bytes or None when there is nothing to draw.

Charts are pixels, so no text in them can reach the page's HTML; text from the data still goes
through `label`, which keeps matplotlib from reading a `$` in it as mathtext (two of them could
otherwise fail the whole report).
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence

import polars as pl
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import PercentFormatter

from pipeline.report.markup import DurationUnit, duration_unit
from pipeline.report.providers import OTHER_COLOUR, provider_colour, provider_name, provider_order

__all__ = [
    "OTHER_COLOUR",
    "cumulative_incidence_chart",
    "curves_unit",
    "draw_cumulative_incidence",
    "error_mix_chart",
    "expiry_over_time_chart",
    "label",
    "latency_chart",
    "naive_vs_aware_chart",
    "provider_colour",
    "provider_label",
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

WIDE = (8.0, 4.2)
"""Figure size (inches) of the full-width charts."""
SMALL = (6.4, 3.4)
"""Figure size of the smaller charts."""
DPI = 110
BAND_ALPHA = 0.18
"""Opacity of confidence bands."""
TITLE_SIZE = 11
TITLE_FIT_ATTEMPTS = 4
"""Times a title is re-wrapped (each a layout pass) before it is left as it is."""
TITLE_MIN_CHARS = 24
"""Never wrap a title narrower than this many characters."""
EDGE_PX = 2
"""Room kept between a title and the figure's edge."""
EXPIRY_CHART_HOURS = 48
"""The expiry chart shows at most this many hours of order creation, the most recent: a year of
hours is a table (`expiry_rates_over_time`), not a chart, and drawing it took minutes."""
MAX_TICK_LABELS = 12
"""Label every hour up to this many; past it, every second, third, ... hour."""


def label(text: object) -> str:
    """`text` as matplotlib shows it literally: every `$` escaped, so none starts mathtext."""
    return str(text).replace("$", r"\$")


def provider_label(provider: str) -> str:
    """The provider's display name, as a chart label."""
    return label(provider_name(provider))


def _provider_ticks(axes: Axes, providers: Sequence[str]) -> None:
    """Label y positions 0, 1, ... with the providers' names, each in its colour."""
    axes.set_yticks(range(len(providers)))
    axes.set_yticklabels([provider_label(p) for p in providers])
    axes.set_ylim(-0.6, len(providers) - 0.4)
    for tick, provider in zip(axes.get_yticklabels(), providers, strict=True):
        tick.set_color(provider_colour(provider))


def _new_figure(size: tuple[float, float]) -> tuple[Figure, Axes]:
    figure = Figure(figsize=size, dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    axes.grid(True, color="#e5e5e5", linewidth=0.8)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    return figure, axes


def _set_title(axes: Axes, title: str) -> Text:
    """The chart title, left-aligned over the axes (it states the finding, so it may be long)."""
    return axes.set_title(label(title), loc="left", fontsize=TITLE_SIZE)


def _fit_title(figure: Figure, title: Text) -> None:
    """Break `title` onto more lines until it ends inside the figure.

    Matplotlib neither wraps a title nor keeps it inside the figure (constrained layout makes
    room above the axes, not beside them), so a long finding would be cut at the right edge.
    Where it starts depends on the laid-out axes, so each attempt lays the figure out first
    (without rasterising it: that is left to the one `savefig`). The figure is left laid out
    for the title it ends with.
    """
    renderer = FigureCanvasAgg(figure).get_renderer()
    text = title.get_text()
    right = figure.bbox.x1 - EDGE_PX
    for attempt in range(TITLE_FIT_ATTEMPTS + 1):
        figure.draw_without_rendering()
        box = title.get_window_extent(renderer)
        if box.x1 <= right or attempt == TITLE_FIT_ATTEMPTS:
            return
        longest = max(len(line) for line in title.get_text().splitlines())
        chars = int(longest * (right - box.x0) / box.width) - 1
        title.set_text(textwrap.fill(text, max(chars, TITLE_MIN_CHARS)))


def _png(figure: Figure, title: Text) -> bytes:
    _fit_title(figure, title)
    # `_fit_title` left the figure laid out for its title: saving it without the layout
    # engine skips a second layout pass (a sixth of the report's time). The pixels are the
    # same but where a title was re-wrapped, whose axes another pass may move by a pixel.
    figure.set_layout_engine("none")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _axis_unit(seconds: Sequence[float | None]) -> DurationUnit:
    """The unit of a time axis: the one the longest duration on it reads best in."""
    return duration_unit(max((s for s in seconds if s is not None), default=0.0))


def _curve_points(part: pl.DataFrame) -> pl.DataFrame:
    """One provider's curve as the points to draw: from (0, 0) through its rows, then flat to
    `known_until_s` where it stops (past it the NPMLE does not know the curve)."""
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


def draw_cumulative_incidence(
    axes: Axes,
    curves: pl.DataFrame,
    *,
    unit: DurationUnit,
    counts: dict[str, int] | None = None,
) -> None:
    """Draw each provider's cumulative incidence and its 95 % band onto `axes`.

    The NPMLE rises linearly across each polling interval that holds mass and is flat between
    them, so its points are joined by straight lines (not steps); a curve stops at its
    `known_until_s`. Each line's gid is its provider.

    Args:
        axes: where to draw.
        curves: `incidence_curves` rows of one measure (`provider`, `time_s`, `cif`,
            `cif_low`, `cif_high`, `known_until_s`).
        unit: the unit of the time axis.
        counts: orders per provider, shown in the legend.
    """
    for name in provider_order(curves["provider"].unique().to_list()):
        frame = _curve_points(curves.filter(pl.col("provider") == name))
        colour = provider_colour(name)
        x = (frame["time_s"] / unit.seconds).to_list()
        legend = provider_label(name)
        if counts and name in counts:
            legend = f"{legend} (n={counts[name]})"
        axes.plot(x, frame["cif"].to_list(), color=colour, linewidth=2, label=legend, gid=name)
        axes.fill_between(
            x,
            frame["cif_low"].to_list(),
            frame["cif_high"].to_list(),
            color=colour,
            alpha=BAND_ALPHA,
            linewidth=0,
        )


def cumulative_incidence_chart(
    curves: pl.DataFrame,
    *,
    title: str,
    ylabel: str,
    counts: dict[str, int] | None = None,
) -> bytes | None:
    """The cumulative incidence per provider (`draw_cumulative_incidence`), with 95 % bands.

    Args:
        curves: `incidence_curves` rows of one measure (`pipeline.analytics.curves.curves_of`).
        title: the chart title (ideally the finding).
        ylabel: what the curve measures.
        counts: orders per provider, shown in the legend.

    Returns:
        PNG bytes, or None when `curves` is empty.
    """
    if curves.is_empty():
        return None
    figure, axes = _new_figure(WIDE)
    unit = curves_unit(curves)
    draw_cumulative_incidence(axes, curves, unit=unit, counts=counts)
    axes.axhline(0.5, color="#999999", linestyle="--", linewidth=1)
    axes.set_ylim(0, 1.02)
    axes.set_xlim(left=0)
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes.set_xlabel(f"time since the order was created ({unit.name})")
    axes.set_ylabel(ylabel)
    title_text = _set_title(axes, title)
    axes.legend(loc="lower right", frameon=False, fontsize=9)
    return _png(figure, title_text)


def recent_hours(rates: pl.DataFrame) -> tuple[pl.DataFrame, bool]:
    """The rows of the last `EXPIRY_CHART_HOURS` buckets in `rates`, and whether older ones
    were left out."""
    hours = rates["bucket_start"].unique().sort()
    if hours.len() <= EXPIRY_CHART_HOURS:
        return rates, False
    return rates.filter(pl.col("bucket_start") >= hours[-EXPIRY_CHART_HOURS]), True


def expiry_over_time_chart(rates: pl.DataFrame, *, title: str) -> bytes | None:
    """Expiry rate per provider and hour of order creation, with 95 % intervals, over the last
    `EXPIRY_CHART_HOURS` hours that have a rate.

    Where the censoring-aware rate is not defined yet (follow-up shorter than the window) the
    share of resolved orders that expired is drawn instead, with hollow markers.

    Args:
        rates: `expiry_rates_over_time` rows.
        title: the chart title.

    Returns:
        PNG bytes, or None when no bucket has a rate.
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
    figure, axes = _new_figure(WIDE)
    providers = provider_order(frame["provider"].unique().to_list())
    step = 1.0 / (len(providers) + 1)
    any_fallback = False
    for i, provider in enumerate(providers):
        part = frame.filter(pl.col("provider") == provider).sort("bucket_start")
        colour = provider_colour(provider)
        x = [buckets.index(b) + (i + 1) * step - 0.5 for b in part["bucket_start"].to_list()]
        y = part["_rate"].to_list()
        low = [max(v - lo, 0.0) for v, lo in zip(y, part["_low"].fill_null(0.0), strict=True)]
        high = [max(hi - v, 0.0) for v, hi in zip(y, part["_high"].fill_null(1.0), strict=True)]
        axes.errorbar(x, y, yerr=[low, high], color=colour, linewidth=1.2, capsize=3, fmt="none")
        axes.plot(x, y, color=colour, linewidth=1, alpha=0.6)
        aware = part["_aware"].to_list()
        axes.scatter(
            [v for v, a in zip(x, aware, strict=True) if a],
            [v for v, a in zip(y, aware, strict=True) if a],
            color=colour,
            s=36,
            zorder=3,
            label=provider_label(provider),
        )
        fallback = [(v, w) for v, w, a in zip(x, y, aware, strict=True) if not a]
        if fallback:
            any_fallback = True
            axes.scatter(
                [v for v, _ in fallback],
                [w for _, w in fallback],
                facecolors="white",
                edgecolors=colour,
                s=36,
                zorder=3,
            )
    every = -(-len(buckets) // MAX_TICK_LABELS)
    labelled = range(0, len(buckets), every)
    axes.set_xticks(labelled)
    axes.set_xticklabels([buckets[i].strftime("%d %b\n%H:%M") for i in labelled], fontsize=8)
    axes.set_xlim(-0.6, len(buckets) - 0.4)
    top = frame.select(pl.col("_high").fill_null(pl.col("_rate")).max()).item()
    axes.set_ylim(0, min(1.05, max(0.05, float(top or 0.0)) * 1.1))
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes.set_xlabel(
        "hour the orders were created (UTC)"
        + (f", the last {EXPIRY_CHART_HOURS} with a rate" if cut else "")
    )
    axes.set_ylabel("orders that expired")
    title_text = _set_title(axes, title)
    handles, labels = axes.get_legend_handles_labels()
    if any_fallback:
        marker = axes.scatter([], [], facecolors="white", edgecolors="#555555", s=36)
        handles.append(marker)
        labels.append("share of resolved orders (follow-up too short)")
    figure.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=min(len(labels), 5),
        frameon=False,
        fontsize=8,
    )
    return _png(figure, title_text)


def error_mix_chart(mix: pl.DataFrame, *, title: str) -> bytes | None:
    """Share of polls per error class and provider, as stacked horizontal bars.

    Args:
        mix: `error_mix` rows (null `error_class` = valid answers, left out of the bars).
        title: the chart title.

    Returns:
        PNG bytes, or None when there are no polls at all.
    """
    if mix.is_empty():
        return None
    providers = provider_order(mix["provider"].unique().to_list())[::-1]
    errors = mix.filter(pl.col("error_class").is_not_null())
    classes = (
        errors.group_by("error_class")
        .agg(pl.col("polls").sum())
        .sort(["polls", "error_class"], descending=[True, False])["error_class"]
        .to_list()
    )
    figure, axes = _new_figure(SMALL)
    positions = list(range(len(providers)))
    left = [0.0] * len(providers)
    for i, error_class in enumerate(classes):
        shares = dict(
            errors.filter(pl.col("error_class") == error_class)
            .select("provider", "share")
            .iter_rows()
        )
        widths = [float(shares.get(p, 0.0)) for p in providers]
        axes.barh(
            positions,
            widths,
            left=left,
            color=ERROR_CLASS_COLOURS[i % len(ERROR_CLASS_COLOURS)],
            label=label(error_class),
            height=0.6,
        )
        left = [a + b for a, b in zip(left, widths, strict=True)]
    _provider_ticks(axes, providers)
    axes.set_xlim(0, max(0.01, max(left, default=0.0) * 1.15))
    axes.xaxis.set_major_formatter(PercentFormatter(1.0))
    axes.set_xlabel("share of polls that failed")
    title_text = _set_title(axes, title)
    if classes:
        figure.legend(
            loc="outside lower center", ncols=min(len(classes), 4), frameon=False, fontsize=8
        )
    return _png(figure, title_text)


def latency_chart(reliability: pl.DataFrame, *, title: str) -> bytes | None:
    """Median and 95th-percentile poll latency per provider (a line from p50 to p95).

    Args:
        reliability: `provider_reliability` rows (`latency_p50_ms`, `latency_p95_ms`).
        title: the chart title.

    Returns:
        PNG bytes, or None when no provider has a latency.
    """
    frame = reliability.filter(pl.col("latency_p95_ms").is_not_null())
    if frame.is_empty():
        return None
    order = provider_order(frame["provider"].to_list())[::-1]
    frame = frame.sort(pl.col("provider").replace_strict(order, list(range(len(order)))))
    figure, axes = _new_figure(SMALL)
    providers = frame["provider"].to_list()
    for y, (provider, p50, p95) in enumerate(
        frame.select("provider", "latency_p50_ms", "latency_p95_ms").iter_rows()
    ):
        colour = provider_colour(provider)
        axes.plot([p50, p95], [y, y], color=colour, linewidth=3, alpha=0.5)
        axes.scatter([p50], [y], color=colour, s=50, zorder=3)
        axes.scatter([p95], [y], facecolors="white", edgecolors=colour, s=50, zorder=3)
    _provider_ticks(axes, providers)
    axes.set_xlim(left=0)
    axes.set_xlabel("poll latency (ms): ● median, ○ 95th percentile")
    title_text = _set_title(axes, title)
    return _png(figure, title_text)


def naive_vs_aware_chart(
    rows: pl.DataFrame, *, title: str, labels: Sequence[str] | None = None
) -> bytes | None:
    """Naive median (finished orders only) beside the censoring-aware median, per provider.

    Args:
        rows: one row per provider with `provider`, `naive_median_s`, `median_s`,
            `median_ci_low_s`, `median_ci_high_s`.
        title: the chart title.
        labels: y-axis labels (default: the providers' display names).

    Returns:
        PNG bytes, or None when no row has either median.
    """
    frame = rows.filter(pl.col("naive_median_s").is_not_null() | pl.col("median_s").is_not_null())
    if frame.is_empty():
        return None
    if labels is None:
        order = provider_order(frame["provider"].to_list())
        frame = frame.sort(pl.col("provider").replace_strict(order, list(range(len(order)))))
    names = (
        [label(n) for n in labels]
        if labels is not None
        else [provider_label(p) for p in frame["provider"].to_list()]
    )
    figure, axes = _new_figure(SMALL)
    unit = _axis_unit(
        frame.select(pl.max_horizontal("naive_median_s", "median_s", "median_ci_high_s").max())
        .to_series()
        .to_list()
    )
    positions = list(range(len(names)))
    offset = 0.15
    for y, row in zip(positions, frame.iter_rows(named=True), strict=True):
        colour = provider_colour(row["provider"])
        if row["naive_median_s"] is not None:
            axes.scatter(
                [row["naive_median_s"] / unit.seconds],
                [y + offset],
                facecolors="white",
                edgecolors=colour,
                marker="s",
                s=44,
                zorder=3,
            )
        if row["median_s"] is not None:
            low = row["median_ci_low_s"] if row["median_ci_low_s"] is not None else row["median_s"]
            high = row["median_ci_high_s"]
            end = high if high is not None else row["median_s"]
            axes.plot(
                [low / unit.seconds, end / unit.seconds],
                [y - offset, y - offset],
                color=colour,
                linewidth=2,
            )
            axes.scatter(
                [row["median_s"] / unit.seconds], [y - offset], color=colour, s=44, zorder=3
            )
    axes.set_yticks(positions)
    axes.set_yticklabels(names)
    axes.invert_yaxis()
    axes.set_xlim(left=0)
    axes.set_xlabel(
        f"median time to success ({unit.name}): □ naive, ● censoring-aware with 95 % CI"
    )
    title_text = _set_title(axes, title)
    return _png(figure, title_text)

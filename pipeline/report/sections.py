"""The report's sections: each turns `ReportData` into a titled block of HTML and its charts.

A section function works out what to say (the finding in its chart title, the rows of its
tables) and renders its template, `templates/sections/<name>.html`, which holds the wording and
the markup. Every section opens with a sentence saying what the reader sees, states the finding
in its chart title where it can, and shows "Not enough data yet." instead of an empty chart or
table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any

import polars as pl
from markupsafe import Markup

from pipeline.alerts.config import DEFAULT_BURN_LEVELS, DEFAULT_SLOS
from pipeline.alerts.incidents import FIRING
from pipeline.alerts.verdicts import window_words
from pipeline.analytics.metrics import EXPIRY_GRACE_S, MIN_GROUP_ORDERS
from pipeline.analytics.scorecard import MIN_RANK_ORDERS, MIN_RANK_POLLS, WINDOWS
from pipeline.report import charts
from pipeline.report.data import ReportData
from pipeline.report.markup import duration, number, percent
from pipeline.report.plot import Plot
from pipeline.report.providers import (
    code_kinds,
    code_providers,
    names,
    never_expiring,
    provider_name,
    provider_order,
)
from pipeline.report.templating import render

SCORECARD_COLUMNS = (
    "rank",
    "provider",
    "score",
    "availability",
    "availability_ci_low",
    "availability_ci_high",
    "success_rate",
    "success_rate_ci_low",
    "success_rate_ci_high",
    "latency_p95_ms",
    "quarantine_rate",
    "quarantine_ci_low",
    "quarantine_ci_high",
    "unknown_status_rate",
    "unknown_status_ci_low",
    "unknown_status_ci_high",
    "polls",
    "n_orders",
    "is_ranked",
)
"""Columns of the scorecard frame handed to Dagster metadata."""

MATERIAL_DIFFERENCE = 0.05
"""A naive median this much (relative) below the censoring-aware one counts as understated."""


@dataclasses.dataclass(frozen=True)
class Section:
    """One titled part of the report."""

    title: str
    anchor: str
    body: Markup
    """HTML rendered from the section's template (every inserted value escaped)."""
    images: tuple[bytes, ...] = ()
    """The SVG charts embedded in `body`, in order."""


def _section(
    title: str, anchor: str, template: str, images: list[bytes | None], **context: Any
) -> Section:
    body = render(f"sections/{template}.html", **context)
    return Section(title, anchor, body, tuple(svg for svg in images if svg))


def _svg(plot: Plot | None) -> bytes | None:
    """The chart's SVG document, or None without a chart."""
    return plot.svg() if plot is not None else None


def _ok(frame: pl.DataFrame, *columns: str) -> bool:
    """Whether `frame` has rows and the columns a section reads."""
    return not frame.is_empty() and all(c in frame.columns for c in columns)


def _rows(frame: pl.DataFrame, *columns: str) -> list[dict[str, Any]]:
    """`frame` as row dicts for a template; none unless it has rows and `columns`."""
    return frame.to_dicts() if _ok(frame, *columns) else []


def in_provider_order(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` sorted by provider in the canonical order the charts use (stable)."""
    if frame.is_empty() or "provider" not in frame.columns:
        return frame
    order = provider_order(frame["provider"].unique().to_list())
    rank = pl.col("provider").replace_strict(order, list(range(len(order))))
    return frame.sort(rank, maintain_order=True)


def median_finding(rows: pl.DataFrame, reach: str) -> str:
    """A sentence comparing the providers' censoring-aware medians ("time to half")."""
    if not _ok(rows, "provider", "median_s"):
        return f"Time until half of the orders {reach}"
    defined = rows.filter(pl.col("median_s").is_not_null()).sort("median_s")
    if defined.is_empty():
        return f"Fewer than half of the orders {reach} so far"
    fast = defined.row(0, named=True)
    fastest = provider_name(fast["provider"])
    if defined.height == 1:
        return f"{fastest}: half of the orders {reach} within {duration(fast['median_s'])}"
    slow = defined.row(-1, named=True)
    return (
        f"{fastest} is fastest: half of its orders {reach} within "
        f"{duration(fast['median_s'])} ({provider_name(slow['provider'])}: "
        f"{duration(slow['median_s'])})"
    )


def overview(data: ReportData, generated_at: datetime) -> Section:
    """Data window, generation time and what was tracked."""
    return _section(
        "Data window",
        "overview",
        "overview",
        [],
        data=data,
        generated_at=generated_at,
        orders=_rows(
            in_provider_order(data.orders_per_provider), "provider", "order_kind", "orders"
        ),
    )


TIME_TABLE_COLUMNS = (
    "provider",
    "n_orders",
    "n_events",
    "n_competing",
    "n_censored",
    "median_s",
    "median_ci_low_s",
    "median_ci_high_s",
    "cif_5m",
    "cif_5m_low",
    "cif_5m_high",
    "cif_20m",
    "cif_20m_low",
    "cif_20m_high",
)
SERVICE_TABLE_COLUMNS = (*TIME_TABLE_COLUMNS, "group_value")


@dataclasses.dataclass(frozen=True)
class TruthColumn:
    """What an incidence section shows of the sandbox's truth (see `ReportData.truth`)."""

    medians: dict[str, float | None]
    """Per provider, the true median (None: fewer than half of the orders reached it)."""
    incomplete: str
    """The display names of the providers whose truth is not complete yet, comma-separated."""


def _truth(data: ReportData, summary: pl.DataFrame, *, code: bool) -> TruthColumn | None:
    """The truth column of the time-to-code (`code`) or time-to-completion table, whose rows
    are `summary`; None without a truth file (no column)."""
    if data.truth is None:
        return None
    medians = data.truth.time_to_code if code else data.truth.time_to_completion
    shown = set(summary["provider"].to_list()) if _ok(summary, "provider") else set()
    incomplete = provider_order([p for p in data.truth.incomplete if p in shown])
    return TruthColumn(medians, ", ".join(provider_name(p) for p in incomplete))


def time_to_code(data: ReportData) -> Section:
    """Cumulative incidence of the SMS code per provider, with 95 % bands, and by service."""
    return _incidence_section(
        "Time to code (SMS receive orders)",
        "time-to-code",
        "time_to_code",
        summary=data.time_to_code,
        curves=data.code_curves,
        counts=data.code_counts,
        outcome="get their code",
        ylabel="orders with their code",
        caption="Cumulative incidence of the code per provider",
        truth=_truth(data, data.time_to_code, code=True),
        code_providers=names(code_providers()),
        code_kinds=", ".join(code_kinds()),
        by_service=_rows(in_provider_order(data.code_by_service), *SERVICE_TABLE_COLUMNS),
        min_group_orders=MIN_GROUP_ORDERS,
    )


def time_to_completion(data: ReportData) -> Section:
    """Cumulative incidence of success per provider, every order kind."""
    return _incidence_section(
        "Time to completion",
        "time-to-completion",
        "time_to_completion",
        summary=data.time_to_completion,
        curves=data.completion_curves,
        counts=data.completion_counts,
        outcome="succeed",
        ylabel="orders that succeeded",
        caption="Cumulative incidence of success per provider",
        truth=_truth(data, data.time_to_completion, code=False),
    )


def _incidence_section(
    title: str,
    anchor: str,
    template: str,
    *,
    summary: pl.DataFrame,
    curves: pl.DataFrame,
    counts: dict[str, int],
    outcome: str,
    ylabel: str,
    caption: str,
    truth: TruthColumn | None,
    **context: Any,
) -> Section:
    """A section of cumulative-incidence curves with CI bands, then the medians table (with the
    true medians beside the estimates when there is a `truth`)."""
    finding = median_finding(summary, outcome)
    svg = _svg(
        charts.cumulative_incidence_chart(curves, title=finding, ylabel=ylabel, counts=counts)
    )
    return _section(
        title,
        anchor,
        template,
        [svg],
        svg=svg,
        alt=f"{caption}. {finding}.",
        rows=_rows(in_provider_order(summary), *TIME_TABLE_COLUMNS),
        truth=truth,
        **context,
    )


def expiry(data: ReportData) -> Section:
    """Expiry rate per hour of order creation, and per provider overall."""
    rates = data.expiry_rates
    over_time = data.expiry_rates_over_time
    finding = "Expiry rate per hour of order creation"
    if _ok(rates, "n_expired") and rates["n_expired"].sum() == 0:
        finding = "No orders have expired so far"
    elif _ok(rates, "provider", "expiry_rate") and (rates["expiry_rate"].drop_nulls() > 0).any():
        worst = (
            rates.filter(pl.col("expiry_rate").is_not_null())
            .sort("expiry_rate")
            .row(-1, named=True)
        )
        finding = (
            f"{provider_name(worst['provider'])} has the highest expiry rate "
            f"({percent(worst['expiry_rate'], 0)} of orders)"
        )
    svg = None
    if _ok(
        over_time, "provider", "bucket_start", "expiry_rate", "ci_low", "resolved_share_expired"
    ):
        svg = _svg(charts.expiry_over_time_chart(over_time, title=finding))
    rows = []
    if _ok(rates, "provider", "order_kind", "expiry_rate", "resolved_share_expired", "window_s"):
        rows = in_provider_order(rates.sort("provider", "order_kind")).to_dicts()
    return _section(
        "Expiry rate over time",
        "expiry",
        "expiry",
        [svg],
        svg=svg,
        alt=f"Expiry rate per provider and hour of order creation. {finding}.",
        rows=rows,
        grace_min=f"{EXPIRY_GRACE_S / 60.0:.0f}",
        never_expiring=names(never_expiring()),
    )


def scorecard_frame(reliability: pl.DataFrame) -> pl.DataFrame:
    """The scorecard rows, ranked providers first (by rank), then the unranked ones."""
    if not _ok(reliability, *SCORECARD_COLUMNS):
        return pl.DataFrame()
    return reliability.select(SCORECARD_COLUMNS).sort(
        [pl.col("rank").is_null(), "rank", "provider"]
    )


WINDOW_COLUMNS = ("window", "provider", "polls", "availability", "latency_p95_ms",
                  "success_rate", "n_orders", "score", "rank")  # fmt: skip


def window_rows(scorecard: pl.DataFrame) -> list[dict[str, Any]]:
    """The scorecard's rolling windows, per provider (in provider order), shortest first."""
    if not _ok(scorecard, *WINDOW_COLUMNS):
        return []
    order = {window: i for i, window in enumerate(WINDOWS)}
    frame = scorecard.select(WINDOW_COLUMNS).with_columns(
        pl.col("window")
        .replace_strict(order, default=len(order), return_dtype=pl.Int32)
        .alias("_order")
    )
    return in_provider_order(frame.sort("provider", "_order")).drop("_order").to_dicts()


def reliability(data: ReportData) -> Section:
    """The reliability scorecard, all time and over rolling windows."""
    frame = scorecard_frame(data.reliability)
    ranked = frame.filter(pl.col("is_ranked")) if not frame.is_empty() else frame
    return _section(
        "Reliability scorecard",
        "reliability",
        "reliability",
        [],
        rows=frame.to_dicts(),
        top=ranked.row(0, named=True) if not ranked.is_empty() else None,
        unranked=frame.filter(~pl.col("is_ranked")).to_dicts() if not frame.is_empty() else [],
        min_rank_polls=MIN_RANK_POLLS,
        min_rank_orders=MIN_RANK_ORDERS,
        windows=window_rows(data.scorecard),
    )


SLO_STATUS_COLUMNS = (
    "provider",
    "slo",
    "objective",
    "window_name",
    "window_s",
    "good",
    "total",
    "error_budget_remaining",
    "burn_rate",
)
"""Columns of `slo_status` the alerts section reads."""
INCIDENT_COLUMNS = (
    "provider",
    "rule",
    "severity",
    "state",
    "opened_at",
    "resolved_at",
    "value",
    "threshold",
    "updated_at",
)
"""Columns of `alert_incidents` the alerts section reads."""
MESSAGE_COLUMNS = ("target", "messages", "delivered", "failed", "waiting")
MAX_INCIDENTS = 50
"""Incidents listed at most (open ones first, then the most recently opened)."""


def slo_rows(status: pl.DataFrame) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per provider and SLO (providers in canonical order), and the burn-rate windows
    the rows show (shortest first).

    Each row holds the objective, the compliance period's figures (its longest window, as on
    the status page: `period`, `good`, `total`, `compliance`, `budget_remaining`) and `burn`,
    the burn rate per shorter window name (None: no order judged in it), with `too_fast` the
    windows whose rate is above 1× (the budget would not last the compliance period).
    """
    if not _ok(status, *SLO_STATUS_COLUMNS):
        return [], []
    rows = []
    windows: dict[str, float] = {}
    for _, group in in_provider_order(status).group_by(["provider", "slo"], maintain_order=True):
        ordered = group.sort("window_s")
        period = ordered.row(-1, named=True)
        burn = {}
        for window in ordered.head(ordered.height - 1).iter_rows(named=True):
            burn[window["window_name"]] = window["burn_rate"]
            windows.setdefault(window["window_name"], window["window_s"])
        good, total = period["good"], period["total"]
        left = period["error_budget_remaining"]
        rows.append(
            {
                "provider": period["provider"],
                "slo": period["slo"],
                "objective": period["objective"],
                "period": period["window_name"],
                "good": good,
                # A share of an order is counted good when a poll interval straddles the limit.
                "good_digits": 0 if good is None or float(good).is_integer() else 1,
                "total": total,
                "compliance": good / total if total and good is not None else None,
                "budget_remaining": left,
                # As shown: "-0.0 %" is not overspent, "1.0×" is not too fast.
                "overspent": left is not None and round(100.0 * left, 1) < 0,
                "burn": burn,
                "too_fast": {
                    w for w, rate in burn.items() if rate is not None and round(rate, 1) > 1
                },
            }
        )
    return rows, sorted(windows, key=lambda name: windows[name])


def incident_rows(incidents: pl.DataFrame, slo_names: set[str]) -> list[dict[str, Any]]:
    """The incidents as a template shows them, in the order given (open ones first): `open`,
    `duration_s` (an open incident's runs to its last evaluation, `updated_at`) and `burn`
    (an SLO's incident, whose value and threshold are burn rates rather than shares)."""
    if not _ok(incidents, *INCIDENT_COLUMNS):
        return []
    rows = []
    for row in incidents.iter_rows(named=True):
        is_open = row["state"] == FIRING
        end = row["updated_at"] if is_open else row["resolved_at"]
        lasted = (end - row["opened_at"]).total_seconds() if end and row["opened_at"] else None
        rows.append(row | {"open": is_open, "duration_s": lasted, "burn": row["rule"] in slo_names})
    return rows


def _latest(*columns: tuple[pl.DataFrame, str]) -> datetime | None:
    """The latest time in any of the (frame, column) pairs."""
    found = [
        moment
        for frame, column in columns
        if _ok(frame, column)
        for moment in [frame[column].max()]
        if isinstance(moment, datetime)
    ]
    return max(found, default=None)


def _burn_levels() -> str:
    """The default burn-rate alerts in words: "a page when its burn rate exceeds 14.4× over
    both the last 1 h and the last 5 min, a ticket when …"."""
    return ", ".join(
        f"a {level.severity} when {'its burn rate' if i == 0 else 'it'} exceeds "
        f"{level.burn_rate:g}× over both the last {window_words(level.long_s)} and the last "
        f"{window_words(level.short_s)}"
        for i, level in enumerate(DEFAULT_BURN_LEVELS)
    )


def alerts_and_slos(data: ReportData) -> Section:
    """The SLOs' error budgets and burn rates, the data window's incidents and how their
    messages fared, as the alerting (`pipeline.alerts`) last stored them."""
    status, incidents, messages = data.slo_status, data.alert_incidents, data.alert_messages
    evaluated = data.alert_tables and not all(
        frame.is_empty() for frame in (status, incidents, messages)
    )
    slos, windows = slo_rows(status)
    slo_names = {s.name for s in DEFAULT_SLOS}
    if _ok(status, "slo"):
        slo_names |= set(status["slo"].drop_nulls().to_list())
    listed = incident_rows(incidents, slo_names)
    budgets = [r for r in slos if r["budget_remaining"] is not None]
    message_rows = _rows(messages, *MESSAGE_COLUMNS)
    return _section(
        "Alerts and SLOs",
        "alerts",
        "alerts",
        [],
        alert_tables=data.alert_tables,
        evaluated=evaluated,
        evaluated_at=_latest((status, "evaluated_at"), (incidents, "updated_at")),
        slos=slos,
        windows=windows,
        periods=", ".join(dict.fromkeys(r["period"] for r in slos)),
        tightest=min(budgets, key=lambda r: r["budget_remaining"]) if budgets else None,
        burn_levels=_burn_levels(),
        incidents=listed[:MAX_INCIDENTS],
        n_incidents=len(listed),
        n_open=sum(r["open"] for r in listed),
        max_incidents=MAX_INCIDENTS,
        messages=message_rows,
        totals={
            key: sum(int(r[key] or 0) for r in message_rows)
            for key in ("messages", "delivered", "failed", "waiting")
        },
    )


def errors_and_latency(data: ReportData) -> Section:
    """Error mix and poll latency per provider."""
    mix = data.error_mix
    mix_svg = None
    if _ok(mix, "provider", "error_class", "polls", "share"):
        failed = (
            mix.filter(pl.col("error_class").is_not_null())
            .group_by("provider")
            .agg(pl.col("share").sum())
            .sort("share")
        )
        if failed.is_empty():
            mix_title = "No failed polls"
        else:
            worst = failed.row(-1, named=True)
            mix_title = (
                f"{provider_name(worst['provider'])} fails the most polls "
                f"({percent(worst['share'])})"
            )
        mix_svg = _svg(charts.error_mix_chart(mix, title=mix_title))
    latency_svg = None
    if _ok(data.reliability, "provider", "latency_p50_ms", "latency_p95_ms"):
        slowest = data.reliability.filter(pl.col("latency_p95_ms").is_not_null()).sort(
            "latency_p95_ms"
        )
        if not slowest.is_empty():
            row = slowest.row(-1, named=True)
            latency_svg = _svg(
                charts.latency_chart(
                    data.reliability,
                    title=(
                        f"{provider_name(row['provider'])} is slowest at p95 "
                        f"({number(row['latency_p95_ms'])} ms)"
                    ),
                )
            )
    return _section(
        "Errors and latency",
        "errors-latency",
        "errors_latency",
        [mix_svg, latency_svg],
        mix_svg=mix_svg,
        latency_svg=latency_svg,
    )


def _comparison_rows(data: ReportData) -> pl.DataFrame:
    columns = [
        "provider",
        "n_orders",
        "n_events",
        "n_competing",
        "n_censored",
        "naive_median_s",
        "naive_mean_s",
        "median_s",
        "median_ci_low_s",
        "median_ci_high_s",
    ]
    parts = [
        in_provider_order(frame).select(pl.lit(measure).alias("measure"), *columns)
        for measure, frame in (
            ("time to code", data.time_to_code),
            ("time to completion", data.time_to_completion),
        )
        if _ok(frame, *columns)
    ]
    return pl.concat(parts) if parts else pl.DataFrame()


def naive_vs_aware(data: ReportData) -> Section:
    """The naive figures beside the censoring-aware ones."""
    rows = _comparison_rows(data)
    svg = None
    if not rows.is_empty():
        completion = rows.filter(pl.col("measure") == "time to completion")
        understated = completion.filter(
            pl.col("median_s").is_null()
            | (pl.col("naive_median_s") < (1.0 - MATERIAL_DIFFERENCE) * pl.col("median_s"))
        ).height
        if not completion.is_empty():
            svg = _svg(
                charts.naive_vs_aware_chart(
                    completion,
                    title=(
                        f"The naive median understates time to success by over "
                        f"{MATERIAL_DIFFERENCE:.0%} for {understated} of {completion.height} "
                        "providers"
                    ),
                )
            )
    return _section(
        "Naive vs censoring-aware estimates",
        "naive",
        "naive",
        [svg],
        svg=svg,
        rows=rows.to_dicts(),
    )


def data_quality(data: ReportData) -> Section:
    """Quarantined rows, unknown statuses and impossible transitions."""
    return _section(
        "Data quality",
        "data-quality",
        "data_quality",
        [],
        has_data=data.n_polls > 0 or not data.quarantine_by_provider.is_empty(),
        quarantine=_rows(data.quarantine_by_provider, "provider", "quarantined_rows"),
        reasons=_rows(data.quarantine_reasons, "reason", "rows"),
        unknown=_rows(data.unknown_statuses, "provider", "provider_status", "answers"),
        impossible=_rows(
            data.impossible_transitions, "provider", "transition_issue", "transitions"
        ),
    )


SECTION_BUILDERS: tuple[Callable[[ReportData], Section], ...] = (
    time_to_code,
    time_to_completion,
    expiry,
    reliability,
    alerts_and_slos,
    errors_and_latency,
    naive_vs_aware,
    data_quality,
)
"""Every section after the overview, in page order."""

"""The report's sections: each turns `ReportData` into a titled block of HTML and its charts.

Every section opens with a sentence saying what the reader sees, states the finding in its
chart title where it can, and shows "Not enough data yet." instead of an empty chart or table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime

import polars as pl

from pipeline.analytics.metrics import (
    CODE_ORDER_KINDS,
    EXPIRY_GRACE_S,
    MIN_RANK_ORDERS,
    MIN_RANK_POLLS,
)
from pipeline.report import charts
from pipeline.report.data import ReportData
from pipeline.report.markup import (
    MISSING,
    NOT_ENOUGH_DATA,
    duration,
    duration_ci,
    image,
    note,
    number,
    paragraph,
    percent,
    percent_ci,
    table,
    text,
    timestamp,
)

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
    body: str
    """HTML, every inserted value already escaped."""
    images: tuple[bytes, ...] = ()
    """The PNG charts embedded in `body`, in order."""


def _section(title: str, anchor: str, parts: list[str], images: list[bytes | None]) -> Section:
    return Section(title, anchor, "\n".join(parts), tuple(png for png in images if png))


def _chart(png: bytes | None, alt: str) -> str:
    return f"<figure>{image(png, alt)}</figure>" if png else note(NOT_ENOUGH_DATA)


def _ok(frame: pl.DataFrame, *columns: str) -> bool:
    """Whether `frame` has rows and the columns a section reads."""
    return not frame.is_empty() and all(c in frame.columns for c in columns)


def in_provider_order(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` sorted by provider in the canonical order the charts use (stable)."""
    if frame.is_empty() or "provider" not in frame.columns:
        return frame
    order = charts.provider_order(frame["provider"].unique().to_list())
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
    if defined.height == 1:
        return f"{fast['provider']}: half of the orders {reach} within {duration(fast['median_s'])}"
    slow = defined.row(-1, named=True)
    return (
        f"{fast['provider']} is fastest: half of its orders {reach} within "
        f"{duration(fast['median_s'])} ({slow['provider']}: {duration(slow['median_s'])})"
    )


def overview(data: ReportData, generated_at: datetime) -> Section:
    """Data window, generation time and what was tracked."""
    parts = [
        paragraph(
            "What this report covers: the polls stored in the published warehouse, from the "
            "first to the last poll below. Every figure is recomputed from that log."
        ),
        "<dl>"
        f"<dt>Data window (polled_at, UTC)</dt><dd>{text(timestamp(data.data_from))} → "
        f"{text(timestamp(data.data_to))}</dd>"
        f"<dt>Generated at</dt><dd>{text(timestamp(generated_at))}</dd>"
        f"<dt>Polls</dt><dd>{text(number(data.n_polls))}</dd>"
        f"<dt>Tracked orders</dt><dd>{text(number(data.n_orders))}</dd>"
        "</dl>",
    ]
    if _ok(data.orders_per_provider, "provider", "order_kind", "orders"):
        parts.append(
            table(
                data.orders_per_provider,
                [
                    ("Provider", lambda r: r["provider"]),
                    ("Order kind", lambda r: r["order_kind"]),
                    ("Orders", lambda r: number(r["orders"])),
                ],
                numeric=["Orders"],
            )
        )
    else:
        parts.append(note("No orders tracked yet."))
    return _section("Data window", "overview", parts, [])


def _median_table(rows: pl.DataFrame) -> str:
    return table(
        rows,
        [
            ("Provider", lambda r: r["provider"]),
            ("Orders", lambda r: number(r["n_orders"])),
            ("Succeeded", lambda r: number(r["n_events"])),
            ("Ended otherwise", lambda r: number(r["n_competing"])),
            ("Still open", lambda r: number(r["n_censored"])),
            ("Median (95 % CI)", lambda r: duration_ci(*_median(r))),
            ("By 5 min", lambda r: percent_ci(r["cif_5m"], r["cif_5m_low"], r["cif_5m_high"])),
            ("By 20 min", lambda r: percent_ci(r["cif_20m"], r["cif_20m_low"], r["cif_20m_high"])),
        ],
        numeric=["Orders", "Succeeded", "Ended otherwise", "Still open"],
    )


def _median(row: dict[str, object]) -> tuple[float | None, float | None, float | None]:
    return (row["median_s"], row["median_ci_low_s"], row["median_ci_high_s"])  # type: ignore[return-value]


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


def time_to_code(data: ReportData) -> Section:
    """Cumulative incidence of the SMS code per provider, with 95 % bands."""
    title = "Time to code (SMS receive orders)"
    kinds = ", ".join(CODE_ORDER_KINDS)
    parts = [
        paragraph(
            "Each curve is the share of SMS receive orders (sms4sats, smsonline; order kind "
            f"{text(kinds)}) that have received their code by a given time after creation, with "
            "its 95 % confidence band. Orders still open are counted up to their last poll "
            "(censored), and orders that expired, were cancelled or failed can never get a code "
            "(competing risks), so a curve levels off below 100 % and its height at the end is "
            "the share of orders that deliver. Where a curve crosses the dashed line, half of all "
            "orders have their code: the median in the table. Curves and table come from one "
            "estimate, the nonparametric maximum likelihood estimate for interval-censored data: "
            "a code seen first at a poll arrived at some time since the poll before it, so a "
            "curve rises in a straight line across such an interval, and it ends where the "
            "outcome of orders still open is unknown."
        )
    ]
    return _incidence_section(
        title,
        "time-to-code",
        parts,
        summary=data.time_to_code,
        curves=data.code_curves,
        counts=data.code_counts,
        outcome="get their code",
        ylabel="orders with their code",
        caption="Cumulative incidence of the code per provider",
    )


def time_to_completion(data: ReportData) -> Section:
    """Cumulative incidence of success per provider, every order kind."""
    parts = [
        paragraph(
            "The share of all orders that reached a success state (code received or completed) "
            "by a given time after creation, per provider, with 95 % confidence bands. Failures, "
            "expiries, cancellations and refunds compete with success; orders still open are "
            "censored at their last poll."
        )
    ]
    return _incidence_section(
        "Time to completion",
        "time-to-completion",
        parts,
        summary=data.time_to_completion,
        curves=data.completion_curves,
        counts=data.completion_counts,
        outcome="succeed",
        ylabel="orders that succeeded",
        caption="Cumulative incidence of success per provider",
    )


def _incidence_section(
    title: str,
    anchor: str,
    parts: list[str],
    *,
    summary: pl.DataFrame,
    curves: pl.DataFrame,
    counts: dict[str, int],
    outcome: str,
    ylabel: str,
    caption: str,
) -> Section:
    """A section of cumulative-incidence curves with CI bands, then the medians table."""
    finding = median_finding(summary, outcome)
    png = None
    if not curves.is_empty():
        png = charts.cumulative_incidence_chart(curves, title=finding, ylabel=ylabel, counts=counts)
    parts.append(_chart(png, f"{caption}. {finding}."))
    if _ok(summary, *TIME_TABLE_COLUMNS):
        parts.append(_median_table(in_provider_order(summary)))
    return _section(title, anchor, parts, [png])


def expiry(data: ReportData) -> Section:
    """Expiry rate per hour of order creation, and per provider overall."""
    grace = EXPIRY_GRACE_S / 60.0
    parts = [
        paragraph(
            "How often orders expire, per hour in which they were created. The rate is the "
            "cumulative incidence of expiry at the provider's expiry window plus "
            f"{grace:.0f} minutes of grace (success, cancellation and failure compete; open "
            "orders are censored), with its 95 % interval. A rising line means recent orders "
            "expire more often. Altinn orders do not expire and have no line."
        )
    ]
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
            f"{worst['provider']} has the highest expiry rate "
            f"({percent(worst['expiry_rate'], 0)} of orders)"
        )
    png = None
    if _ok(
        over_time, "provider", "bucket_start", "expiry_rate", "ci_low", "resolved_share_expired"
    ):
        png = charts.expiry_over_time_chart(over_time, title=finding)
    parts.append(_chart(png, f"Expiry rate per provider and hour of order creation. {finding}."))
    if _ok(rates, "provider", "order_kind", "expiry_rate", "resolved_share_expired", "window_s"):
        parts.append(
            table(
                in_provider_order(rates.sort("provider", "order_kind")),
                [
                    ("Provider", lambda r: r["provider"]),
                    ("Order kind", lambda r: r["order_kind"]),
                    ("Orders", lambda r: number(r["n_orders"])),
                    ("Expired", lambda r: number(r["n_expired"])),
                    (
                        "Window",
                        lambda r: (
                            duration(r["window_s"])
                            + ("" if r["window_documented"] else " (assumed)")
                        ),
                    ),
                    (
                        "Expiry rate (95 % CI)",
                        lambda r: percent_ci(r["expiry_rate"], r["ci_low"], r["ci_high"]),
                    ),
                    (
                        "Share of resolved orders",
                        lambda r: percent_ci(
                            r["resolved_share_expired"],
                            r["resolved_share_ci_low"],
                            r["resolved_share_ci_high"],
                        ),
                    ),
                ],
                numeric=["Orders", "Expired"],
                caption="Expiry rate: blank while follow-up has not reached the window yet.",
            )
        )
    return _section("Expiry rate over time", "expiry", parts, [png])


def scorecard_frame(reliability: pl.DataFrame) -> pl.DataFrame:
    """The scorecard rows, ranked providers first (by rank), then the unranked ones."""
    if not _ok(reliability, *SCORECARD_COLUMNS):
        return pl.DataFrame()
    return reliability.select(SCORECARD_COLUMNS).sort(
        [pl.col("rank").is_null(), "rank", "provider"]
    )


def reliability(data: ReportData) -> Section:
    """The reliability scorecard."""
    parts = [
        paragraph(
            "A score from 0 to 100 per provider: 30 % availability (polls answered without "
            "error), 30 % success rate (probability an order ends in success, censoring-aware), "
            "15 % latency (p95 against a 2-second budget), 15 % clean data (1 − quarantine rate) "
            "and 10 % recognised statuses (1 − unknown-status rate). Brackets are 95 % "
            "confidence intervals: two providers whose intervals overlap may not really differ."
        )
    ]
    frame = scorecard_frame(data.reliability)
    if frame.is_empty():
        parts.append(note(NOT_ENOUGH_DATA))
        return _section("Reliability scorecard", "reliability", parts, [])
    ranked = frame.filter(pl.col("is_ranked"))
    if not ranked.is_empty():
        top = ranked.row(0, named=True)
        parts.append(
            paragraph(
                f"<strong>{text(top['provider'])} ranks first</strong> with a score of "
                f"{text(number(top['score'], 1))}."
            )
        )
    parts.append(
        table(
            frame,
            [
                ("Rank", lambda r: MISSING if r["rank"] is None else str(r["rank"])),
                ("Provider", lambda r: r["provider"]),
                ("Score", lambda r: number(r["score"], 1)),
                (
                    "Availability",
                    lambda r: percent_ci(
                        r["availability"], r["availability_ci_low"], r["availability_ci_high"]
                    ),
                ),
                (
                    "Success rate",
                    lambda r: percent_ci(
                        r["success_rate"], r["success_rate_ci_low"], r["success_rate_ci_high"]
                    ),
                ),
                ("Latency p95", lambda r: f"{number(r['latency_p95_ms'])} ms"),
                (
                    "Quarantine rate",
                    lambda r: percent_ci(
                        r["quarantine_rate"], r["quarantine_ci_low"], r["quarantine_ci_high"]
                    ),
                ),
                (
                    "Unknown-status rate",
                    lambda r: percent_ci(
                        r["unknown_status_rate"],
                        r["unknown_status_ci_low"],
                        r["unknown_status_ci_high"],
                    ),
                ),
                ("Polls", lambda r: number(r["polls"])),
                ("Orders", lambda r: number(r["n_orders"])),
            ],
            numeric=["Rank", "Score", "Latency p95", "Polls", "Orders"],
        )
    )
    unranked = frame.filter(~pl.col("is_ranked"))
    if not unranked.is_empty():
        names = ", ".join(
            f"{r['provider']} ({number(r['polls'])} polls, {number(r['n_orders'])} orders)"
            for r in unranked.iter_rows(named=True)
        )
        parts.append(
            note(
                f"Not ranked: too few polls/orders (a rank needs at least {MIN_RANK_POLLS} polls "
                f"and {MIN_RANK_ORDERS} orders with a status history): {names}."
            )
        )
    return _section("Reliability scorecard", "reliability", parts, [])


def errors_and_latency(data: ReportData) -> Section:
    """Error mix and poll latency per provider."""
    parts = [
        paragraph(
            "Left: the share of polls that failed, split by error class (timeouts, rate "
            "limiting, server errors, unreadable bodies, …); valid answers are left out. Right: "
            "how long a poll takes, the median and the 95th percentile over every attempt."
        )
    ]
    mix = data.error_mix
    mix_png = None
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
            mix_title = f"{worst['provider']} fails the most polls ({percent(worst['share'])})"
        mix_png = charts.error_mix_chart(mix, title=mix_title)
    latency_png = None
    if _ok(data.reliability, "provider", "latency_p50_ms", "latency_p95_ms"):
        slowest = data.reliability.filter(pl.col("latency_p95_ms").is_not_null()).sort(
            "latency_p95_ms"
        )
        if not slowest.is_empty():
            row = slowest.row(-1, named=True)
            latency_png = charts.latency_chart(
                data.reliability,
                title=f"{row['provider']} is slowest at p95 ({number(row['latency_p95_ms'])} ms)",
            )
    if mix_png or latency_png:
        parts.append(
            '<div class="pair">'
            + _chart(mix_png, "Share of failed polls per provider and error class.")
            + _chart(latency_png, "Median and 95th percentile poll latency per provider.")
            + "</div>"
        )
    else:
        parts.append(note(NOT_ENOUGH_DATA))
    return _section("Errors and latency", "errors-latency", parts, [mix_png, latency_png])


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
    parts = [
        paragraph(
            "The naive median and mean use only the orders that already succeeded. They leave "
            "out orders still open (which, being slow, would pull the figure up) and orders that "
            "never deliver, so they describe the lucky orders and understate how long a user "
            "waits. The censoring-aware median counts every order: it is the time by which half "
            "of all orders have succeeded, and it is “not reached” when fewer than half ever do."
        )
    ]
    rows = _comparison_rows(data)
    if rows.is_empty():
        parts.append(note(NOT_ENOUGH_DATA))
        return _section("Naive vs censoring-aware estimates", "naive", parts, [])
    completion = rows.filter(pl.col("measure") == "time to completion")
    understated = completion.filter(
        pl.col("median_s").is_null()
        | (pl.col("naive_median_s") < (1.0 - MATERIAL_DIFFERENCE) * pl.col("median_s"))
    ).height
    png = None
    if not completion.is_empty():
        png = charts.naive_vs_aware_chart(
            completion,
            title=(
                f"The naive median understates time to success by over "
                f"{MATERIAL_DIFFERENCE:.0%} for {understated} of {completion.height} providers"
            ),
        )
    parts.append(_chart(png, "Naive and censoring-aware median time to success per provider."))
    parts.append(
        table(
            rows,
            [
                ("Measure", lambda r: r["measure"]),
                ("Provider", lambda r: r["provider"]),
                ("Orders", lambda r: number(r["n_orders"])),
                ("Still open", lambda r: number(r["n_censored"])),
                ("Never succeeded", lambda r: number(r["n_competing"])),
                ("Naive median", lambda r: duration(r["naive_median_s"])),
                ("Naive mean", lambda r: duration(r["naive_mean_s"])),
                (
                    "Censoring-aware median (95 % CI)",
                    lambda r: duration_ci(
                        r["median_s"], r["median_ci_low_s"], r["median_ci_high_s"]
                    ),
                ),
            ],
            numeric=["Orders", "Still open", "Never succeeded"],
            caption="Naive: finished orders only (biased). Censoring-aware: every order.",
        )
    )
    return _section("Naive vs censoring-aware estimates", "naive", parts, [png])


def data_quality(data: ReportData) -> Section:
    """Quarantined rows, unknown statuses and impossible transitions."""
    parts = [
        paragraph(
            "Problems in what the providers sent us. Quarantined rows failed validation and were "
            "kept aside with the checks they failed (never silently dropped). Unknown statuses "
            "are valid answers whose status the adapter does not recognise. Impossible "
            "transitions are moves the lifecycle forbids (leaving a terminal state, going "
            "backwards), kept in the status history but flagged."
        )
    ]
    if data.n_polls == 0 and data.quarantine_by_provider.is_empty():
        parts.append(note(NOT_ENOUGH_DATA))
        return _section("Data quality", "data-quality", parts, [])
    parts.append("<h3>Quarantine</h3>")
    if _ok(data.quarantine_by_provider, "provider", "quarantined_rows"):
        parts.append(
            '<div class="pair">'
            + table(
                data.quarantine_by_provider,
                [
                    ("Provider", lambda r: r["provider"]),
                    ("Quarantined rows", lambda r: number(r["quarantined_rows"])),
                ],
                numeric=["Quarantined rows"],
            )
            + (
                table(
                    data.quarantine_reasons,
                    [("Top reasons", lambda r: r["reason"]), ("Rows", lambda r: number(r["rows"]))],
                    numeric=["Rows"],
                )
                if _ok(data.quarantine_reasons, "reason", "rows")
                else ""
            )
            + "</div>"
        )
    else:
        parts.append(note("No quarantined rows."))
    parts.append("<h3>Unknown statuses</h3>")
    if _ok(data.unknown_statuses, "provider", "provider_status", "answers"):
        parts.append(
            table(
                data.unknown_statuses,
                [
                    ("Provider", lambda r: r["provider"]),
                    ("Status as sent", lambda r: r["provider_status"]),
                    ("Answers", lambda r: number(r["answers"])),
                ],
                numeric=["Answers"],
            )
        )
    else:
        parts.append(note("No unknown statuses."))
    parts.append("<h3>Impossible transitions</h3>")
    if _ok(data.impossible_transitions, "provider", "transition_issue", "transitions"):
        parts.append(
            table(
                data.impossible_transitions,
                [
                    ("Provider", lambda r: r["provider"]),
                    ("Issue", lambda r: r["transition_issue"]),
                    ("From → to", lambda r: f"{r['previous_state']} → {r['state']}"),
                    ("Transitions", lambda r: number(r["transitions"])),
                    ("Example order", lambda r: r["example_order_id"]),
                ],
                numeric=["Transitions"],
            )
        )
    else:
        parts.append(note("No impossible transitions."))
    return _section("Data quality", "data-quality", parts, [])


SECTION_BUILDERS: tuple[Callable[[ReportData], Section], ...] = (
    time_to_code,
    time_to_completion,
    expiry,
    reliability,
    errors_and_latency,
    naive_vs_aware,
    data_quality,
)
"""Every section after the overview, in page order."""

"""The terminal summary `pipeline demo` and `pipeline report` print: one line per provider.

On sandbox data it also shows the truth: the median the same estimator gives when fed the
sandbox's recorded transition times, exact, for the same orders (so a newcomer can see the
estimate from polling land on it); `true_medians` lives in `pipeline.analytics.truth`, shared
with the report, and stays importable from here.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipeline.analytics.truth import measures_code, true_medians
from pipeline.providers.registry import PROVIDERS
from pipeline.simulator.truth import read_truth
from pipeline.warehouse import Warehouse

__all__ = ["SUMMARY_SQL", "format_demo_summary"]


SUMMARY_SQL = """
WITH resolved AS (
    SELECT o.provider, count(*) AS orders,
           count(*) FILTER (WHERE t.is_terminal) AS resolved
    FROM orders o LEFT JOIN order_tracking t USING (provider, order_id)
    GROUP BY o.provider
)
SELECT r.provider, r.orders, r.resolved, rel.availability, rel.polls
FROM resolved r LEFT JOIN provider_reliability rel USING (provider)
"""


def _seconds(value: float | None) -> str:
    if value is None:
        return "   -  "
    return f"{value / 60:5.1f}m" if value >= 120 else f"{value:5.0f}s"


def _median(frame: pl.DataFrame, provider: str) -> str:
    row = frame.filter((pl.col("provider") == provider) & (pl.col("group_level") == "provider"))
    if row.is_empty():
        return "no orders answered yet"
    if row["median_s"][0] is None:
        return "not reached (<50% so far)"
    median, low, high = (
        _seconds(row[column][0]).strip()
        for column in ("median_s", "median_ci_low_s", "median_ci_high_s")
    )
    return f"{median} [{low}, {high}]"


def _expiry(row: pl.DataFrame) -> str:
    if row.is_empty():
        return "n/a"
    if row["rate"][0] is not None:
        return f"{row['rate'][0]:.0%}"
    share = row["resolved_share"][0]
    return "-" if share is None else f"{share:.0%}*"


def format_demo_summary(published: Path, truth_path: Path | None = None) -> str:
    """Per provider: orders, share resolved, median time-to-code (SMS) or time-to-completion
    with its 95 % CI, expiry rate, availability; read from the published warehouse. With the
    sandbox's truth file, the true median of the same orders beside the estimate."""
    warehouse = Warehouse(published)
    truth: dict[str, float | None] | None = None
    if truth_path is not None and truth_path.is_file():
        tracked = warehouse.read("SELECT provider, order_id FROM orders", read_only=True)
        truth = true_medians(read_truth(truth_path), set(tracked.iter_rows()))
    base = warehouse.read(SUMMARY_SQL, read_only=True)
    code = warehouse.read("SELECT * FROM time_to_code", read_only=True)
    completion = warehouse.read("SELECT * FROM time_to_completion", read_only=True)
    expiry = warehouse.read(
        "SELECT provider, max(expiry_rate) AS rate, "
        "sum(n_expired) / nullif(sum(n_resolved), 0) AS resolved_share "
        "FROM expiry_rates GROUP BY provider",
        read_only=True,
    )
    header = (
        f"{'provider':<12} {'orders':>6} {'resolved':>8}  {'median (95% CI)':<28} "
        + (f"{'truth':>6}  " if truth is not None else "")
        + f"{'measure':<18} {'expiry':>7} {'avail.':>7}"
    )
    lines = [header, "-" * len(header)]
    for provider in PROVIDERS:
        row = base.filter(pl.col("provider") == provider)
        if row.is_empty():
            lines.append(f"{provider:<12} {'0':>6}")
            continue
        orders, resolved = int(row["orders"][0]), int(row["resolved"][0])
        is_sms = measures_code(provider)
        median = _median(code if is_sms else completion, provider)
        measure = "time to code" if is_sms else "time to completion"
        rate_row = expiry.filter(pl.col("provider") == provider)
        expiry_text = _expiry(rate_row)
        availability = row["availability"][0]
        avail_text = "-" if availability is None else f"{availability:.1%}"
        true_text = "" if truth is None else f"{_seconds(truth.get(provider)).strip():>6}  "
        lines.append(
            f"{provider:<12} {orders:>6} {resolved / orders:>8.0%}  {median:<28} {true_text}"
            f"{measure:<18} {expiry_text:>7} {avail_text:>7}"
        )
    lines.append(
        "Medians are censoring-aware: open orders count as still waiting, not dropped.\n"
        + (
            "Truth: the same orders' median from the sandbox's exact transition times.\n"
            if truth is not None
            else ""
        )
        + "Expiry: cumulative incidence at the provider's window; marked * it is the share of\n"
        "resolved orders, shown until follow-up reaches the window (n/a: the provider has none)."
    )
    return "\n".join(lines)

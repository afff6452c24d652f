"""The terminal summary `pipeline demo` and `pipeline report` print: one line per provider.

On sandbox data it also shows the truth: the median the same estimator gives when fed the
sandbox's recorded transition times, exact, for the same orders (so a newcomer can see the
estimate from polling land on it).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.analytics.survival import cif_quantiles, event_table
from pipeline.model import SUCCESS_STATES, TERMINAL_STATES, OrderState
from pipeline.providers.registry import PROVIDERS, REGISTRY
from pipeline.simulator.truth import read_truth
from pipeline.warehouse import Warehouse


def _measures_code(provider: str) -> bool:
    """Whether the provider's headline figure is time to code (it sells code kinds)."""
    return provider in REGISTRY and bool(REGISTRY.spec(provider).code_kinds)


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


def true_medians(
    truth: Mapping[tuple[str, str], Mapping[str, Any]], tracked: Collection[tuple[str, str]]
) -> dict[str, float | None]:
    """Per provider, the median time to code (SMS) or to completion of the tracked orders, from
    their true transition times: Aalen–Johansen on exact times, orders still open when the
    sandbox stopped censored then, other outcomes competing."""
    rows = []
    for key in tracked:
        record = truth.get(key)
        if record is None:
            continue
        provider = key[0]
        code = _measures_code(provider)
        if code and record.get("order_kind") not in REGISTRY.spec(provider).code_kinds:
            continue
        events = {OrderState.CODE_RECEIVED.value} if code else {s.value for s in SUCCESS_STATES}
        rows.append({"provider": provider, **_exact_outcome(record, events)})
    if not rows:
        return {}
    records = pl.DataFrame(rows, schema={"provider": pl.String, "time_s": pl.Float64,
                                         "event_code": pl.Int64})  # fmt: skip
    medians = cif_quantiles(event_table(records, ["provider"]), ["provider"], 0.5)
    return dict(zip(medians["provider"], medians["quantile_s"], strict=True))


def _exact_outcome(record: Mapping[str, Any], events: Collection[str]) -> dict[str, Any]:
    """`time_s` and `event_code` (1 the event, 2 another outcome, 0 still open) of one order."""
    origin = datetime.fromisoformat(record["created_at"])
    terminal = {s.value for s in TERMINAL_STATES}
    for transition in record.get("transitions", []):
        state = transition["state"]
        if state in events or state in terminal:
            at = datetime.fromisoformat(transition["at"])
            code = 1 if state in events else 2
            return {"time_s": max(0.0, (at - origin).total_seconds()), "event_code": code}
    stopped = datetime.fromisoformat(record["recorded_at"])
    return {"time_s": max(0.0, (stopped - origin).total_seconds()), "event_code": 0}


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
        is_sms = _measures_code(provider)
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

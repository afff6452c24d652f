"""Everything the report shows, read from the published warehouse in one read-only session.

The analytics tables are read as stored; the cumulative incidence curves are recomputed from
`status_history` and `orders` with the same records and estimator the tables' medians come from
(`pipeline.analytics.events`, and the interval-censored NPMLE of `pipeline.analytics.npmle`), so
a curve crosses 50 % at the median shown beside it. A table that is missing (the
warehouse has not been refreshed yet) reads as an empty frame, so every section can say "not
enough data yet" instead of failing.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from pipeline.analytics import npmle
from pipeline.analytics.events import time_to_event_records
from pipeline.analytics.metrics import CODE_ORDER_KINDS, LEVEL_PROVIDER, completion_records
from pipeline.model import OrderState
from pipeline.warehouse import query
from pipeline.warehouse.connection import connection

TOP_REASONS = 10
"""Quarantine reasons, unknown statuses and impossible transitions listed at most."""


@dataclasses.dataclass(frozen=True)
class ReportData:
    """The frames behind the report (each may be empty)."""

    data_from: datetime | None
    """Earliest `polled_at` in the observation log."""
    data_to: datetime | None
    """Latest `polled_at`."""
    n_polls: int
    n_orders: int
    orders_per_provider: pl.DataFrame
    """provider, order_kind, orders."""
    code_curves: pl.DataFrame
    """Cumulative incidence of the code per provider (SMS receive orders), `incidence_curves`."""
    code_counts: dict[str, int]
    completion_curves: pl.DataFrame
    """Cumulative incidence of success per provider (every order), `incidence_curves`."""
    completion_counts: dict[str, int]
    time_to_code: pl.DataFrame
    """Provider-level rows of `time_to_code`."""
    time_to_completion: pl.DataFrame
    """Provider-level rows of `time_to_completion`."""
    expiry_rates: pl.DataFrame
    expiry_rates_over_time: pl.DataFrame
    reliability: pl.DataFrame
    error_mix: pl.DataFrame
    quarantine_by_provider: pl.DataFrame
    """provider, quarantined_rows."""
    quarantine_reasons: pl.DataFrame
    """reason, rows (most frequent first)."""
    unknown_statuses: pl.DataFrame
    """provider, provider_status, answers (valid answers with an unrecognised status)."""
    impossible_transitions: pl.DataFrame
    """provider, transition_issue, previous_state, state, transitions, example_order_id."""


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {row[0] for row in con.execute("SHOW TABLES").fetchall()}


def _read(con: duckdb.DuckDBPyConnection, tables: set[str], table: str, sql: str) -> pl.DataFrame:
    """`sql` over `table`, or an empty frame when the table does not exist."""
    return query(con, sql) if table in tables else pl.DataFrame()


def _provider_level(frame: pl.DataFrame) -> pl.DataFrame:
    if frame.is_empty() or "group_level" not in frame.columns:
        return frame
    return frame.filter(pl.col("group_level") == LEVEL_PROVIDER).sort("provider")


def code_records(history: pl.DataFrame, orders: pl.DataFrame) -> pl.DataFrame:
    """Time-to-code records of the SMS receive orders, as `time_to_code` builds them (empty
    without a status history)."""
    if history.is_empty() or orders.is_empty():
        return pl.DataFrame()
    return time_to_event_records(
        history,
        orders,
        event_states=[OrderState.CODE_RECEIVED.value],
        order_kinds=CODE_ORDER_KINDS,
    )


def incidence_curves(records: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, int]]:
    """Cumulative incidence per provider, and the orders per provider, from time-to-event records.

    The curve is the NPMLE the `time_to_code` / `time_to_completion` medians are read from:
    points to join with straight lines, each provider's curve known up to `known_until_s`.

    Args:
        records: per-order records (`pipeline.analytics.events.time_to_event_records`).

    Returns:
        `pipeline.analytics.npmle.curve_table` rows by provider (`provider`, `time_s`, `cif`,
        `cif_var`, `cif_low`, `cif_high`, `known_until_s`), in curve order; and the orders
        per provider.
    """
    if records.is_empty():
        return pl.DataFrame(), {}
    counts = dict(records.group_by("provider").len().sort("provider").iter_rows())
    curves = npmle.curve_table(npmle.fit_records(records, ["provider"]))
    return curves.sort("provider", maintain_order=True), counts


def load(published_path: Path) -> ReportData:
    """Read the published warehouse (read-only) and compute the report's frames."""
    with connection(published_path, read_only=True) as con:
        tables = _tables(con)
        window = (
            con.execute(
                "SELECT min(polled_at), max(polled_at), count(*) FROM observations"
            ).fetchall()[0]
            if "observations" in tables
            else (None, None, 0)
        )
        orders = _read(con, tables, "orders", "SELECT * FROM orders")
        history = _read(con, tables, "status_history", "SELECT * FROM status_history")
        frames = {
            name: _read(con, tables, name, f"SELECT * FROM {name}")
            for name in (
                "time_to_code",
                "time_to_completion",
                "expiry_rates",
                "expiry_rates_over_time",
                "provider_reliability",
                "error_mix",
            )
        }
        quarantine_by_provider = _read(
            con,
            tables,
            "quarantine",
            "SELECT coalesce(provider, '(none)') AS provider, count(*) AS quarantined_rows "
            "FROM quarantine GROUP BY ALL ORDER BY quarantined_rows DESC, provider",
        )
        quarantine_reasons = _read(
            con,
            tables,
            "quarantine",
            "SELECT reason, count(*) AS rows FROM ("
            "  SELECT unnest(CAST(json(reasons) AS VARCHAR[])) AS reason FROM quarantine"
            "  WHERE json_valid(reasons)"
            f") GROUP BY ALL ORDER BY rows DESC, reason LIMIT {TOP_REASONS}",
        )
        unknown_statuses = _read(
            con,
            tables,
            "observations",
            "SELECT provider, coalesce(provider_status, '(no status)') AS provider_status, "
            "count(*) AS answers FROM observations "
            f"WHERE error_class IS NULL AND (state = '{OrderState.UNKNOWN.value}' "
            "OR coalesce(status_unrecognized, false)) "
            f"GROUP BY ALL ORDER BY answers DESC, provider LIMIT {TOP_REASONS}",
        )
        impossible = _read(
            con,
            tables,
            "status_history",
            "SELECT provider, transition_issue, CAST(previous_state AS VARCHAR) AS previous_state, "
            "CAST(state AS VARCHAR) AS state, count(*) AS transitions, "
            "min(order_id) AS example_order_id FROM status_history "
            "WHERE is_impossible_transition GROUP BY ALL "
            f"ORDER BY transitions DESC, provider LIMIT {TOP_REASONS}",
        )
    orders_per_provider = (
        orders.group_by("provider", "order_kind").len("orders").sort("provider", "order_kind")
        if not orders.is_empty()
        else pl.DataFrame()
    )
    has_history = not history.is_empty() and not orders.is_empty()
    completion = completion_records(history, orders) if has_history else pl.DataFrame()
    code_curves, code_counts = incidence_curves(code_records(history, orders))
    completion_curves, completion_counts = incidence_curves(completion)
    return ReportData(
        data_from=window[0],
        data_to=window[1],
        n_polls=int(window[2] or 0),
        n_orders=orders.height,
        orders_per_provider=orders_per_provider,
        code_curves=code_curves,
        code_counts=code_counts,
        completion_curves=completion_curves,
        completion_counts=completion_counts,
        time_to_code=_provider_level(frames["time_to_code"]),
        time_to_completion=_provider_level(frames["time_to_completion"]),
        expiry_rates=frames["expiry_rates"],
        expiry_rates_over_time=frames["expiry_rates_over_time"],
        reliability=frames["provider_reliability"],
        error_mix=frames["error_mix"],
        quarantine_by_provider=quarantine_by_provider,
        quarantine_reasons=quarantine_reasons,
        unknown_statuses=unknown_statuses,
        impossible_transitions=impossible,
    )

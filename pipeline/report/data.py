"""Everything the report shows, read from the published warehouse in one read-only session.

The analytics tables (`pipeline.derived.METRIC_TABLES`) are read as stored, nothing is
recomputed: the cumulative incidence curves come from table `incidence_curves`, fitted with the
records and estimator the `time_to_code` / `time_to_completion` medians come from
(`pipeline.analytics.curves`), so a curve crosses 50 % at the median shown beside it. A table
that is missing (the warehouse has not been refreshed yet) reads as an empty frame, so every
section can say "not enough data yet" instead of failing.

The alert tables (`pipeline.alerts`: `slo_status`, `alert_incidents`, `alerts`) are read as
`evaluate_and_notify` left them when the warehouse was published: the latest SLO figures, the
incidents of the data window and how their messages fared. A warehouse from before alerting
has none of them (`ReportData.alert_tables` is False).

On sandbox data (`load` given the sandbox's truth file) `ReportData.truth` holds the true
medians of the same orders (`pipeline.analytics.truth.true_medians`), shown beside the estimates.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipeline.alerts.delivery import DELIVERED, FAILED
from pipeline.alerts.incidents import FIRING, PENDING
from pipeline.analytics.curves import (
    MEASURE_CODE,
    MEASURE_COMPLETION,
    curves_of,
)
from pipeline.analytics.metrics import LEVEL_PROVIDER
from pipeline.analytics.truth import missing_truth, true_medians
from pipeline.derived import METRIC_TABLES
from pipeline.model import OrderState
from pipeline.simulator.truth import read_truth
from pipeline.warehouse import query
from pipeline.warehouse.connection import connection

__all__ = [
    "LEVEL_SERVICE",
    "TOP_REASONS",
    "ReportData",
    "TruthMedians",
    "load",
]

LEVEL_SERVICE = "service"
"""`group_level` of the per-service rows (`pipeline.analytics.metrics.GROUP_LEVELS`)."""
TOP_REASONS = 10
"""Quarantine reasons, unknown statuses and impossible transitions listed at most."""
ALERT_TABLES = ("slo_status", "alert_incidents", "alerts")
"""The tables `pipeline.alerts` writes (warehouse migration 5)."""


@dataclasses.dataclass(frozen=True)
class TruthMedians:
    """The true medians of the tracked orders, from the sandbox's exact transition times."""

    time_to_code: dict[str, float | None]
    """Per provider selling code kinds, the true median time to code (None: not reached)."""
    time_to_completion: dict[str, float | None]
    """Per provider, the true median time to success (None: not reached)."""
    incomplete: tuple[str, ...]
    """Providers with tracked orders the truth has no record of yet (the sandbox writes an order
    once it ends, the rest when it stops): no true median is shown for them."""


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
    """Cumulative incidence of the code per provider (SMS receive orders): the `time_to_code`
    rows of table `incidence_curves` (`pipeline.analytics.curves.CURVE_COLUMNS`)."""
    code_counts: dict[str, int]
    """Orders behind each provider's code curve."""
    completion_curves: pl.DataFrame
    """Cumulative incidence of success per provider (every order), as `code_curves`."""
    completion_counts: dict[str, int]
    time_to_code: pl.DataFrame
    """Provider-level rows of `time_to_code`."""
    code_by_service: pl.DataFrame
    """Service-level rows of `time_to_code` (services with enough orders)."""
    time_to_completion: pl.DataFrame
    """Provider-level rows of `time_to_completion`."""
    expiry_rates: pl.DataFrame
    expiry_rates_over_time: pl.DataFrame
    reliability: pl.DataFrame
    scorecard: pl.DataFrame
    """`provider_scorecard`: the reliability figures per rolling window."""
    error_mix: pl.DataFrame
    quarantine_by_provider: pl.DataFrame
    """provider, quarantined_rows."""
    quarantine_reasons: pl.DataFrame
    """reason, rows (most frequent first)."""
    unknown_statuses: pl.DataFrame
    """provider, provider_status, answers (valid answers with an unrecognised status)."""
    impossible_transitions: pl.DataFrame
    """provider, transition_issue, previous_state, state, transitions, example_order_id."""
    alert_tables: bool
    """Whether the warehouse has the alert tables (`ALERT_TABLES`); False before alerting."""
    slo_status: pl.DataFrame
    """The latest SLO figures per provider, SLO and window, as table `slo_status` holds them
    (`pipeline.alerts.slo.STATUS_COLUMNS`)."""
    alert_incidents: pl.DataFrame
    """The incidents of the data window (table `alert_incidents`): every open one and every one
    resolved since the first poll; open ones first, then the most recently opened first."""
    alert_messages: pl.DataFrame
    """target, messages, delivered, failed, waiting: the alert messages (table `alerts`, one row
    per message and target) queued since the first poll, per target."""
    truth: TruthMedians | None = None
    """On sandbox data, the true medians of the same orders; None without a truth file."""


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {row[0] for row in con.execute("SHOW TABLES").fetchall()}


def _read(
    con: duckdb.DuckDBPyConnection,
    tables: set[str],
    table: str,
    sql: str,
    params: list[Any] | None = None,
) -> pl.DataFrame:
    """`sql` (with `params`) over `table`, or an empty frame when the table does not exist."""
    return query(con, sql, params) if table in tables else pl.DataFrame()


def _level(frame: pl.DataFrame, level: str) -> pl.DataFrame:
    """The rows of one grouping level of a time-to-event table, by provider."""
    if frame.is_empty() or "group_level" not in frame.columns:
        return frame
    return frame.filter(pl.col("group_level") == level).sort("provider", maintain_order=True)


def truth_medians(truth_path: Path, tracked: pl.DataFrame) -> TruthMedians:
    """The true medians of the `tracked` orders (provider, order_id) from the sandbox's truth
    file; a provider with orders the file lacks gets none (its median would be too short)."""
    truth = read_truth(truth_path)
    keys = set(tracked.select("provider", "order_id").iter_rows()) if _has(tracked) else set()
    incomplete = set(missing_truth(truth, keys))
    medians = {
        measure: {
            provider: median
            for provider, median in true_medians(truth, keys, measure).items()
            if provider not in incomplete
        }
        for measure in (MEASURE_CODE, MEASURE_COMPLETION)
    }
    return TruthMedians(
        time_to_code=medians[MEASURE_CODE],
        time_to_completion=medians[MEASURE_COMPLETION],
        incomplete=tuple(sorted(incomplete)),
    )


def _has(tracked: pl.DataFrame) -> bool:
    return not tracked.is_empty() and {"provider", "order_id"} <= set(tracked.columns)


def load(published_path: Path, truth_path: Path | None = None) -> ReportData:
    """Read the published warehouse (read-only) and compute the report's frames.

    Args:
        published_path: the read-only published copy of the warehouse.
        truth_path: the sandbox's ground truth (`<data dir>/sandbox/truth.jsonl`); when the file
            exists, `ReportData.truth` holds the true medians of the tracked orders.
    """
    truth_file = truth_path if truth_path is not None and truth_path.is_file() else None
    with connection(published_path, read_only=True) as con:
        tables = _tables(con)
        window = (
            con.execute(
                "SELECT min(polled_at), max(polled_at), count(*) FROM observations"
            ).fetchall()[0]
            if "observations" in tables
            else (None, None, 0)
        )
        orders_per_provider = _read(
            con,
            tables,
            "orders",
            "SELECT provider, order_kind, count(*) AS orders FROM orders "
            "GROUP BY ALL ORDER BY provider, order_kind",
        )
        frames = {name: _read(con, tables, name, f"SELECT * FROM {name}") for name in METRIC_TABLES}
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
        # Incidents and messages of the data window: since the first poll (or all of them).
        since = window[0] or datetime.min.replace(tzinfo=UTC)
        slo_status = _read(
            con, tables, "slo_status", "SELECT * FROM slo_status ORDER BY provider, slo, window_s"
        )
        alert_incidents = _read(
            con,
            tables,
            "alert_incidents",
            "SELECT * FROM alert_incidents WHERE state = ? OR resolved_at IS NULL"
            " OR resolved_at >= ? ORDER BY state = ? DESC, opened_at DESC, provider, rule",
            [FIRING, since, FIRING],
        )
        alert_messages = _read(
            con,
            tables,
            "alerts",
            "SELECT target, count(*) AS messages,"
            " count(*) FILTER (WHERE status = ?) AS delivered,"
            " count(*) FILTER (WHERE status = ?) AS failed,"
            " count(*) FILTER (WHERE status = ?) AS waiting"
            " FROM alerts WHERE created_at >= ? GROUP BY target ORDER BY target",
            [DELIVERED, FAILED, PENDING, since],
        )
        tracked = (
            _read(con, tables, "orders", "SELECT provider, order_id FROM orders")
            if truth_file is not None
            else pl.DataFrame()
        )
    code_curves, code_counts = curves_of(frames["incidence_curves"], MEASURE_CODE)
    completion_curves, completion_counts = curves_of(frames["incidence_curves"], MEASURE_COMPLETION)
    return ReportData(
        data_from=window[0],
        data_to=window[1],
        n_polls=int(window[2] or 0),
        n_orders=(
            int(orders_per_provider["orders"].sum())
            if "orders" in orders_per_provider.columns
            else 0
        ),
        orders_per_provider=orders_per_provider,
        code_curves=code_curves,
        code_counts=code_counts,
        completion_curves=completion_curves,
        completion_counts=completion_counts,
        time_to_code=_level(frames["time_to_code"], LEVEL_PROVIDER),
        code_by_service=_level(frames["time_to_code"], LEVEL_SERVICE),
        time_to_completion=_level(frames["time_to_completion"], LEVEL_PROVIDER),
        expiry_rates=frames["expiry_rates"],
        expiry_rates_over_time=frames["expiry_rates_over_time"],
        reliability=frames["provider_reliability"],
        scorecard=frames["provider_scorecard"],
        error_mix=frames["error_mix"],
        quarantine_by_provider=quarantine_by_provider,
        quarantine_reasons=quarantine_reasons,
        unknown_statuses=unknown_statuses,
        impossible_transitions=impossible,
        alert_tables=set(ALERT_TABLES) <= tables,
        slo_status=slo_status,
        alert_incidents=alert_incidents,
        alert_messages=alert_messages,
        truth=truth_medians(truth_file, tracked) if truth_file is not None else None,
    )

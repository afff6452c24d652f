"""Data-quality checks per provider, evaluated on the warehouse after each ingestion window.

Each check returns an `AssetCheckResult` whose metadata says what failed and where (order ids are
hashed prefixes, never full ids). Thresholds are named constants; WARN means look, ERROR means act.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb
import polars as pl

from pipeline.analytics.history import transition_issue
from pipeline.analytics.inputs import ORDER_KEY
from pipeline.polling.schedule import policy_frame
from pipeline.providers.base import PollingPolicy
from pipeline.providers.spec import ProviderSpec
from pipeline.warehouse import query
from pipeline.warehouse.store import first_row

CHECK_NAMES = (
    "quarantine_rate",
    "coverage_freshness",
    "impossible_transitions",
    "stuck_orders",
    "unknown_status_rate",
)
LOOKBACK = timedelta(hours=1)
QUARANTINE_WARN, QUARANTINE_ERROR = 0.01, 0.05
UNKNOWN_WARN, UNKNOWN_ERROR = 0.01, 0.10
# An open order counts as fresh if polled within this many cadences.
FRESH_WITHIN_CADENCES = 3.0
COVERAGE_WARN, COVERAGE_ERROR = 0.90, 0.50
EXAMPLES = 5

STATE_CHANGES_SQL = """
WITH answered AS (
    SELECT provider, order_id, polled_at, attempt, state, is_terminal,
           lag(state) OVER (PARTITION BY order_id ORDER BY polled_at, attempt) AS before
    FROM observations
    WHERE provider = ? AND error_class IS NULL AND state <> 'unknown'
)
SELECT provider, order_id, polled_at, state, is_terminal
FROM answered WHERE before IS DISTINCT FROM state
ORDER BY order_id, polled_at, attempt
"""
"""Each order's answered state changes (the database drops the repeats, so the check reads a few
rows per order, not the log)."""


def short_id(order_id: str) -> str:
    """A stable, non-reversible label for an order id in metadata and logs."""
    return hashlib.sha256(order_id.encode()).hexdigest()[:12]


def _severity(
    value: float, warn: float, error: float, *, higher_is_worse: bool = True
) -> tuple[bool, dg.AssetCheckSeverity]:
    bad_error = value > error if higher_is_worse else value < error
    bad_warn = value > warn if higher_is_worse else value < warn
    if bad_error:
        return False, dg.AssetCheckSeverity.ERROR
    if bad_warn:
        return False, dg.AssetCheckSeverity.WARN
    return True, dg.AssetCheckSeverity.WARN


def quarantine_rate(
    con: duckdb.DuckDBPyConnection, key: dg.AssetKey, provider: str, now: datetime
) -> dg.AssetCheckResult:
    """Share of the last hour's answers that failed validation."""
    since = now - LOOKBACK
    quarantined, stored = first_row(
        con,
        "SELECT (SELECT count(*) FROM quarantine WHERE provider = ? AND quarantined_at >= ?),"
        " (SELECT count(*) FROM observations WHERE provider = ? AND polled_at >= ?)",
        [provider, since, provider, since],
    )
    rate = quarantined / (quarantined + stored) if quarantined + stored else 0.0
    passed, severity = _severity(rate, QUARANTINE_WARN, QUARANTINE_ERROR)
    reasons = query(
        con,
        "SELECT reasons, count(*) AS n FROM quarantine WHERE provider = ? AND quarantined_at >= ?"
        " GROUP BY reasons ORDER BY n DESC LIMIT 3",
        [provider, since],
    )
    return dg.AssetCheckResult(
        asset_key=key,
        check_name="quarantine_rate",
        passed=passed,
        severity=severity,
        metadata={
            "quarantine_rate": dg.MetadataValue.float(rate),
            "quarantined": dg.MetadataValue.int(quarantined),
            "stored": dg.MetadataValue.int(stored),
            "top_reasons": dg.MetadataValue.json(reasons.to_dicts()),
        },
    )


def coverage_freshness(
    con: duckdb.DuckDBPyConnection,
    key: dg.AssetKey,
    provider: str,
    policy: PollingPolicy,
    now: datetime,
) -> dg.AssetCheckResult:
    """Share of open orders polled within a few cadences of their state, and the worst lag."""
    open_orders = query(
        con,
        "SELECT o.order_id, o.registered_at, t.last_polled_at, "
        "coalesce(t.last_state, 'unknown') AS policy_state "
        "FROM orders o LEFT JOIN order_tracking t USING (provider, order_id) "
        "WHERE o.provider = ? AND NOT coalesce(t.is_terminal, false) AND o.registered_at >= ?",
        [provider, now - timedelta(seconds=policy.max_tracking_age_s)],
    )
    cadences = policy_frame({provider: policy}).select("policy_state", "cadence_s")
    frame = open_orders.join(cadences, on="policy_state", how="left").with_columns(
        lag_s=(
            pl.lit(now).dt.convert_time_zone("UTC") - pl.coalesce("last_polled_at", "registered_at")
        ).dt.total_microseconds()
        / 1e6
    )
    fresh = frame.filter(pl.col("lag_s") <= pl.col("cadence_s") * FRESH_WITHIN_CADENCES).height
    share = fresh / frame.height if frame.height else 1.0
    worst = frame.sort("lag_s", descending=True).head(EXAMPLES)
    passed, severity = _severity(share, COVERAGE_WARN, COVERAGE_ERROR, higher_is_worse=False)
    return dg.AssetCheckResult(
        asset_key=key,
        check_name="coverage_freshness",
        passed=passed,
        severity=severity,
        metadata={
            "open_orders": dg.MetadataValue.int(frame.height),
            "fresh_share": dg.MetadataValue.float(share),
            "worst_lag_s": dg.MetadataValue.float(max(frame["lag_s"].to_list(), default=0.0)),
            "most_lagging": dg.MetadataValue.json(
                [
                    {"order": short_id(r["order_id"]), "lag_s": round(r["lag_s"], 1)}
                    for r in worst.iter_rows(named=True)
                ]
            ),
        },
    )


def impossible_transitions(
    con: duckdb.DuckDBPyConnection, key: dg.AssetKey, provider: str
) -> dg.AssetCheckResult:
    """Orders seen moving where no lifecycle goes: out of a terminal state, or backwards (a
    provider bug, or ids reused). The rule is the status history's `transition_issue`."""
    changes = query(con, STATE_CHANGES_SQL, [provider]).with_columns(
        previous_state=pl.col("state").shift(1).over(ORDER_KEY),
        issue=transition_issue(),
    )
    found = changes.filter(pl.col("issue").is_not_null()).sort("polled_at", descending=True)
    return dg.AssetCheckResult(
        asset_key=key,
        check_name="impossible_transitions",
        passed=found.is_empty(),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "count": dg.MetadataValue.int(found.height),
            "examples": dg.MetadataValue.json(
                [
                    {
                        "order": short_id(r["order_id"]),
                        "from": r["previous_state"],
                        "issue": r["issue"],
                        "to": r["state"],
                        "at": r["polled_at"].isoformat(),
                    }
                    for r in found.head(EXAMPLES).iter_rows(named=True)
                ]
            ),
        },
    )


def stuck_orders(
    con: duckdb.DuckDBPyConnection,
    key: dg.AssetKey,
    provider: str,
    window_s: float,
    now: datetime,
) -> dg.AssetCheckResult:
    """Open orders older than the provider's window: they should have resolved by now."""
    stuck = query(
        con,
        "SELECT o.order_id, o.registered_at, coalesce(t.last_state, 'unknown') AS last_state "
        "FROM orders o LEFT JOIN order_tracking t USING (provider, order_id) "
        "WHERE o.provider = ? AND NOT coalesce(t.is_terminal, false) "
        "AND o.registered_at < ? ORDER BY o.registered_at",
        [provider, now - timedelta(seconds=window_s)],
    )
    return dg.AssetCheckResult(
        asset_key=key,
        check_name="stuck_orders",
        passed=stuck.is_empty(),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "count": dg.MetadataValue.int(stuck.height),
            "window_s": dg.MetadataValue.float(window_s),
            "by_state": dg.MetadataValue.json(
                dict(stuck.group_by("last_state").len().sort("last_state").iter_rows())
            ),
            "oldest": dg.MetadataValue.json(
                [
                    {
                        "order": short_id(r["order_id"]),
                        "registered_at": r["registered_at"].isoformat(),
                    }
                    for r in stuck.head(EXAMPLES).iter_rows(named=True)
                ]
            ),
        },
    )


def unknown_status_rate(
    con: duckdb.DuckDBPyConnection, key: dg.AssetKey, provider: str, now: datetime
) -> dg.AssetCheckResult:
    """Share of the last hour's answers whose status we did not recognise."""
    unknown, answered, statuses = first_row(
        con,
        "SELECT count(*) FILTER (WHERE status_unrecognized OR state = 'unknown'), count(*), "
        "coalesce(list(DISTINCT provider_status) FILTER (WHERE status_unrecognized), []) "
        "FROM observations WHERE provider = ? AND polled_at >= ? AND error_class IS NULL",
        [provider, now - LOOKBACK],
    )
    rate = unknown / answered if answered else 0.0
    passed, severity = _severity(rate, UNKNOWN_WARN, UNKNOWN_ERROR)
    return dg.AssetCheckResult(
        asset_key=key,
        check_name="unknown_status_rate",
        passed=passed,
        severity=severity,
        metadata={
            "unknown_rate": dg.MetadataValue.float(rate),
            "unknown": dg.MetadataValue.int(unknown),
            "answered": dg.MetadataValue.int(answered),
            "unrecognised_statuses": dg.MetadataValue.json(sorted(str(s) for s in statuses)[:10]),
        },
    )


def run_checks(
    con: duckdb.DuckDBPyConnection,
    key: dg.AssetKey,
    spec: ProviderSpec,
    now: datetime | None = None,
) -> list[dg.AssetCheckResult]:
    """Every check of one provider's observations asset."""
    now = now or datetime.now(UTC)
    provider, policy = spec.slug, spec.policy
    return [
        quarantine_rate(con, key, provider, now),
        coverage_freshness(con, key, provider, policy, now),
        impossible_transitions(con, key, provider),
        stuck_orders(con, key, provider, spec.resolution_window_s, now),
        unknown_status_rate(con, key, provider, now),
    ]

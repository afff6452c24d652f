"""Warehouse tables and their versioned migrations.

Migrations are applied in order when a read-write connection opens; each runs in its own
transaction and is recorded in `schema_migrations`, so applying them again changes nothing.
Columns of `observations` mirror `pipeline.model.Observation`; `OBSERVATION_COLUMNS` is the polars
schema that batches are built in, validated against and appended with.
"""

from __future__ import annotations

import dataclasses

import duckdb
import polars as pl

UTC_TIME = pl.Datetime("us", "UTC")

ORDER_COLUMNS: dict[str, pl.DataType] = {
    "provider": pl.String(),
    "order_id": pl.String(),
    "order_kind": pl.String(),
    "registered_at": UTC_TIME,
    "created_at": UTC_TIME,
    "service": pl.String(),
    "country": pl.String(),
    "source": pl.String(),
}

OBSERVATION_COLUMNS: dict[str, pl.DataType] = {
    "observation_id": pl.String(),
    "provider": pl.String(),
    "order_id": pl.String(),
    "order_kind": pl.String(),
    "polled_at": UTC_TIME,
    "attempt": pl.Int32(),
    "http_status": pl.Int32(),
    "latency_ms": pl.Float64(),
    "error_class": pl.String(),
    "error_message": pl.String(),
    "retry_after_s": pl.Float64(),
    "state": pl.String(),
    "provider_status": pl.String(),
    "provider_substatus": pl.String(),
    "status_unrecognized": pl.Boolean(),
    "is_terminal": pl.Boolean(),
    "is_success": pl.Boolean(),
    "is_paid": pl.Boolean(),
    "has_code": pl.Boolean(),
    "code_sha256": pl.String(),
    "code_length": pl.Int32(),
    "phone_masked": pl.String(),
    "items_total": pl.Int32(),
    "items_succeeded": pl.Int32(),
    "amount": pl.Float64(),
    "amount_unit": pl.String(),
    "service": pl.String(),
    "country": pl.String(),
    "provider_created_at": UTC_TIME,
    "provider_scheduled_at": UTC_TIME,
    "provider_updated_at": UTC_TIME,
    "provider_paid_at": UTC_TIME,
    "provider_expires_at": UTC_TIME,
    "provider_timestamp_raw": pl.String(),
    "payload_sha256": pl.String(),
}

OBSERVATION_REQUIRED = {"observation_id", "provider", "order_id", "polled_at", "state"}

PAYLOAD_COLUMNS: dict[str, pl.DataType] = {
    "payload_sha256": pl.String(),
    "provider": pl.String(),
    "body_redacted": pl.String(),
    "size_bytes": pl.Int64(),
    "first_seen_at": UTC_TIME,
}

QUARANTINE_COLUMNS: dict[str, pl.DataType] = {
    "quarantine_id": pl.String(),
    "batch_id": pl.String(),
    "quarantined_at": UTC_TIME,
    "provider": pl.String(),
    "order_id": pl.String(),
    "polled_at": UTC_TIME,
    "reasons": pl.String(),
    "row_json": pl.String(),
}

POLL_ROLLUP_COLUMNS: dict[str, pl.DataType] = {
    "provider": pl.String(),
    "minute": UTC_TIME,
    "error_class": pl.String(),
    "polls": pl.Int64(),
    "rate_limited_polls": pl.Int64(),
    "unknown_status_answers": pl.Int64(),
}
"""`poll_rollups`: per provider, minute (hour when older) and error class (`pipeline.analytics.
rollups`). No key: rows with equal keys add up."""
LATENCY_ROLLUP_COLUMNS: dict[str, pl.DataType] = {
    "provider": pl.String(),
    "minute": UTC_TIME,
    "latency_bucket": pl.Int32(),
    "polls": pl.Int64(),
}
"""`latency_rollups`: per provider, minute (hour when older) and latency bucket."""

_DUCKDB_TYPES: dict[type[pl.DataType], str] = {
    pl.String: "VARCHAR",
    pl.Datetime: "TIMESTAMPTZ",
    pl.Int32: "INTEGER",
    pl.Int64: "BIGINT",
    pl.Float64: "DOUBLE",
    pl.Boolean: "BOOLEAN",
}


def _columns_sql(columns: dict[str, pl.DataType], not_null: set[str]) -> str:
    parts = []
    for name, dtype in columns.items():
        sql_type = _DUCKDB_TYPES[type(dtype)]
        parts.append(f"{name} {sql_type}{' NOT NULL' if name in not_null else ''}")
    return ",\n    ".join(parts)


@dataclasses.dataclass(frozen=True)
class Migration:
    """One schema change, applied once."""

    version: int
    name: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "orders, observations, payloads, quarantine",
        f"""
CREATE TABLE orders (
    {_columns_sql(ORDER_COLUMNS, {"provider", "order_id", "order_kind", "registered_at"})},
    PRIMARY KEY (provider, order_id)
);
CREATE TABLE observations (
    {_columns_sql(OBSERVATION_COLUMNS, OBSERVATION_REQUIRED)},
    PRIMARY KEY (observation_id)
);
CREATE TABLE payloads (
    {_columns_sql(PAYLOAD_COLUMNS, {"payload_sha256"})},
    PRIMARY KEY (payload_sha256)
);
CREATE TABLE quarantine (
    {_columns_sql(QUARANTINE_COLUMNS, {"quarantine_id"})},
    PRIMARY KEY (quarantine_id)
);
""",
    ),
    Migration(
        2,
        "order_tracking: per-order poll state for the scheduler",
        """
CREATE TABLE order_tracking (
    provider VARCHAR NOT NULL,
    order_id VARCHAR NOT NULL,
    last_polled_at TIMESTAMPTZ,
    last_state VARCHAR,
    last_ok_at TIMESTAMPTZ,
    is_terminal BOOLEAN NOT NULL DEFAULT false,
    terminal_seen_at TIMESTAMPTZ,
    grace_checked BOOLEAN NOT NULL DEFAULT false,
    polls INTEGER NOT NULL DEFAULT 0,
    consecutive_errors INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (provider, order_id)
);
""",
    ),
    Migration(
        3,
        "derived_state: watermarks of incrementally refreshed tables",
        """
CREATE TABLE derived_state (
    name VARCHAR PRIMARY KEY,
    value TIMESTAMPTZ,
    updated_at TIMESTAMPTZ
);
""",
    ),
    Migration(
        4,
        "order_tracking.not_found_since_ok: not-found answers since the last valid one",
        "ALTER TABLE order_tracking ADD COLUMN not_found_since_ok INTEGER DEFAULT 0;",
    ),
    Migration(
        5,
        "alerts: incidents, delivered messages, SLO events and SLO status (pipeline.alerts)",
        """
CREATE TABLE alert_incidents (
    incident_id VARCHAR PRIMARY KEY,
    provider VARCHAR NOT NULL,
    rule VARCHAR NOT NULL,
    severity VARCHAR NOT NULL,
    state VARCHAR NOT NULL,
    opened_at TIMESTAMPTZ NOT NULL,
    resolved_at TIMESTAMPTZ,
    value DOUBLE,
    threshold DOUBLE,
    summary VARCHAR,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE alerts (
    alert_id VARCHAR PRIMARY KEY,
    incident_id VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    provider VARCHAR NOT NULL,
    rule VARCHAR NOT NULL,
    severity VARCHAR NOT NULL,
    state VARCHAR NOT NULL,
    value DOUBLE,
    threshold DOUBLE,
    target VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    delivered BOOLEAN NOT NULL DEFAULT false,
    attempts INTEGER NOT NULL DEFAULT 0,
    error VARCHAR,
    last_attempt_at TIMESTAMPTZ,
    delivered_at TIMESTAMPTZ,
    summary VARCHAR,
    message_json VARCHAR
);
CREATE TABLE slo_events (
    provider VARCHAR NOT NULL,
    slo VARCHAR NOT NULL,
    definition VARCHAR NOT NULL,
    order_id VARCHAR NOT NULL,
    decided_at TIMESTAMPTZ NOT NULL,
    good DOUBLE NOT NULL,
    PRIMARY KEY (provider, slo, definition, order_id)
);
CREATE TABLE slo_status (
    provider VARCHAR NOT NULL,
    slo VARCHAR NOT NULL,
    objective DOUBLE NOT NULL,
    window_name VARCHAR NOT NULL,
    window_s DOUBLE NOT NULL,
    good DOUBLE NOT NULL,
    total BIGINT NOT NULL,
    error_budget_remaining DOUBLE,
    burn_rate DOUBLE,
    evaluated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (provider, slo, window_name)
);
""",
    ),
    Migration(
        6,
        "poll and latency rollups",
        f"""
CREATE TABLE poll_rollups (
    {_columns_sql(POLL_ROLLUP_COLUMNS, {"provider", "minute", "polls"})}
);
CREATE TABLE latency_rollups (
    {_columns_sql(LATENCY_ROLLUP_COLUMNS, set(LATENCY_ROLLUP_COLUMNS))}
);
""",
    ),
    Migration(
        7,
        "observations without a global key index",
        # A primary key is an in-memory index over every row ever stored, checked on every
        # write. The id already holds `polled_at`, so an append only needs checking against
        # stored rows of the same instants (`pipeline.warehouse.store.append`). Rows are copied
        # in `polled_at` order, so the min/max statistics of each row group skip the rest.
        f"""
CREATE TABLE observations_unkeyed (
    {_columns_sql(OBSERVATION_COLUMNS, OBSERVATION_REQUIRED)}
);
INSERT INTO observations_unkeyed SELECT * FROM observations ORDER BY polled_at;
DROP TABLE observations;
ALTER TABLE observations_unkeyed RENAME TO observations;
""",
    ),
    Migration(
        8,
        "derived_state: rows behind a watermark",
        # How many polls lay in the late margin behind a watermark when it was set: unchanged
        # at the next refresh, nothing arrived late and only newer polls are read.
        "ALTER TABLE derived_state ADD COLUMN rows_behind BIGINT;",
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version


def applied_versions(con: duckdb.DuckDBPyConnection) -> set[int]:
    """Versions already recorded in `schema_migrations`."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMPTZ)"
    )
    rows = con.execute("SELECT version FROM schema_migrations").fetchall()
    return {int(row[0]) for row in rows}


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply every pending migration; returns the versions applied now (empty if none)."""
    done = applied_versions(con)
    applied = []
    for migration in MIGRATIONS:
        if migration.version in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(migration.sql)
            con.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, now())",
                [migration.version, migration.name],
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        applied.append(migration.version)
    return applied

"""Derived tables in the warehouse: the status history (incremental) and the analytics tables,
and the published read-only copy that notebooks, the report and BI tools read.

Everything here can be rebuilt from `orders`, `observations` and `quarantine`.
"""

from __future__ import annotations

import dataclasses
import os
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from pipeline.analytics import (
    build_status_history,
    error_mix,
    expiry_rates,
    expiry_rates_over_time,
    incidence_curves,
    provider_reliability,
    status_history_delta,
    time_to_code,
    time_to_completion,
)
from pipeline.analytics.inputs import OBSERVATION_FIELDS
from pipeline.warehouse import Warehouse, query, replace_table
from pipeline.warehouse.store import first_row, registered

HISTORY_TABLE = "status_history"
METRIC_TABLES: dict[str, str] = {
    "time_to_code": "Censoring-aware time from order to SMS code, per provider and group.",
    "time_to_completion": "Censoring-aware time from order to success, per provider and group.",
    "incidence_curves": (
        "Cumulative-incidence curves (NPMLE, 95 % bands) per provider behind the time-to-code "
        "and time-to-completion medians."
    ),
    "expiry_rates": "Cumulative incidence of expiry at each provider's window, with CIs.",
    "expiry_rates_over_time": "Expiry rates by hour of order creation.",
    "provider_reliability": "Transport, outcome and data-quality scorecard, ranked.",
    "error_mix": "Poll errors per provider and class, with CIs.",
}
"""Every analytics table `compute_metrics` writes, in order, with what it holds: the one list of
them (the Dagster assets, the refresh command and the report read it)."""
# Columns the analytics read from the observation log; `attempt` orders polls in one instant.
ANALYTICS_OBSERVATION_COLUMNS = ", ".join((*OBSERVATION_FIELDS, "attempt"))
_DELTA_VIEW = "_history_delta"


@dataclasses.dataclass(frozen=True)
class HistoryUpdate:
    """What one status-history refresh did."""

    mode: str
    """`full` (first build) or `incremental`."""
    new_observations: int
    rows_written: int
    watermark: datetime | None


def refresh_status_history(con: duckdb.DuckDBPyConnection) -> HistoryUpdate:
    """Fold observations newer than the last refresh into `status_history`.

    The first refresh builds the table from the whole log. Later ones read only the observations
    past the watermark (the newest `polled_at` already folded in) and the touched orders' current
    intervals, so their cost follows the new observations, not the stored history.
    """
    watermark = _watermark(con)
    if watermark is None or not _table_exists(con, HISTORY_TABLE):
        observations = query(con, f"SELECT {ANALYTICS_OBSERVATION_COLUMNS} FROM observations")
        history = build_status_history(observations)
        replace_table(con, HISTORY_TABLE, history)
        newest = observations["polled_at"].max() if observations.height else None
        _set_watermark(con, newest)  # type: ignore[arg-type]
        return HistoryUpdate("full", observations.height, history.height, newest)  # type: ignore[arg-type]
    new = query(
        con,
        f"SELECT {ANALYTICS_OBSERVATION_COLUMNS} FROM observations WHERE polled_at > ?",
        [watermark],
    )
    if new.is_empty():
        return HistoryUpdate("incremental", 0, 0, watermark)
    touched = new.select("provider", "order_id").unique()
    with registered(con, "_touched", touched):
        current = query(
            con,
            f"SELECT h.* FROM {HISTORY_TABLE} h JOIN _touched USING (provider, order_id) "
            "WHERE h.is_current",
        )
    delta = status_history_delta(current, new)
    with registered(con, _DELTA_VIEW, delta):
        con.execute(
            f"DELETE FROM {HISTORY_TABLE} h USING (SELECT provider, order_id, "
            f"min(interval_seq) AS first_seq FROM {_DELTA_VIEW} GROUP BY ALL) d "
            "WHERE h.provider = d.provider AND h.order_id = d.order_id "
            "AND h.interval_seq >= d.first_seq"
        )
        con.execute(f"INSERT INTO {HISTORY_TABLE} BY NAME SELECT * FROM {_DELTA_VIEW}")
    newest = new["polled_at"].max()
    _set_watermark(con, newest)  # type: ignore[arg-type]
    return HistoryUpdate("incremental", new.height, delta.height, newest)  # type: ignore[arg-type]


def compute_metrics(con: duckdb.DuckDBPyConnection) -> dict[str, pl.DataFrame]:
    """Every analytics table (`METRIC_TABLES`, in order), computed from the history and the log."""
    history = query(con, f"SELECT * FROM {HISTORY_TABLE}")
    orders = query(con, "SELECT * FROM orders")
    observations = query(con, f"SELECT {ANALYTICS_OBSERVATION_COLUMNS} FROM observations")
    quarantine = query(con, "SELECT provider, quarantined_at FROM quarantine")
    tables = {
        "time_to_code": time_to_code(history, orders),
        "time_to_completion": time_to_completion(history, orders),
        "incidence_curves": incidence_curves(history, orders),
        "expiry_rates": expiry_rates(history, orders),
        "expiry_rates_over_time": expiry_rates_over_time(history, orders),
        "provider_reliability": provider_reliability(observations, history, orders, quarantine),
        "error_mix": error_mix(observations),
    }
    if list(tables) != list(METRIC_TABLES):
        raise RuntimeError(f"compute_metrics wrote {list(tables)}, expected {list(METRIC_TABLES)}")
    return tables


def refresh_derived(warehouse: Warehouse) -> dict[str, int]:
    """Update the status history and rewrite every analytics table; rows per table."""
    with warehouse.transaction() as con:
        update = refresh_status_history(con)
        counts = {HISTORY_TABLE: update.rows_written}
        for table, frame in compute_metrics(con).items():
            counts[table] = replace_table(con, table, frame)
    return counts


def publish(warehouse: Warehouse, published_path: Path) -> Path:
    """Copy the warehouse to `published_path` and swap it in atomically.

    Readers open the published copy read-only, so they never take the writer's lock; a reader
    that has the old copy open keeps reading it until it reconnects.
    """
    published_path.parent.mkdir(parents=True, exist_ok=True)
    staging = published_path.with_name(f".{published_path.name}.{os.getpid()}.tmp")
    staging.unlink(missing_ok=True)
    with warehouse.connect() as con:
        source = first_row(con, "SELECT current_database()")[0]
        con.execute(f"ATTACH '{staging}' AS published_copy")
        try:
            con.execute(f'COPY FROM DATABASE "{source}" TO published_copy')
        finally:
            con.execute("DETACH published_copy")
    os.replace(staging, published_path)
    return published_path


def _table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    row = first_row(
        con, "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
    )
    return bool(row[0])


def _watermark(con: duckdb.DuckDBPyConnection) -> datetime | None:
    row = first_row(con, "SELECT value FROM derived_state WHERE name = ?", [HISTORY_TABLE])
    return row[0] if row else None


def _set_watermark(con: duckdb.DuckDBPyConnection, value: datetime | None) -> None:
    con.execute("INSERT OR REPLACE INTO derived_state VALUES (?, ?, now())", [HISTORY_TABLE, value])

"""Retention: move old per-poll rows and payload bodies out of the warehouse.

Every figure the product publishes is read from the status history, the poll and latency
rollups, the orders and the quarantine (`pipeline.derived`); the observation log is only read
past the derived tables' watermarks. So once those watermarks have passed a poll, its row can
leave the warehouse without changing any figure: `prune` copies the rows polled before a
cutoff to Parquet under the archive directory (partitioned by provider and day, readable by
any engine), then deletes them in the same transaction, and does the same for payload bodies
that no kept observation points at. `keep_archive=False` deletes without the copy.

The cutoff is never later than the derived tables' watermarks less `LATE_OBSERVATIONS_S`: rows
that a refresh may still read stay. A full rebuild of the history or the rollups needs the whole
log, so after a prune it refuses (`pipeline.derived.PrunedLogError`) rather than silently
build from what is left.

Reading the archive beside the warehouse (`observation_id` is unique; a prune that failed after
writing its files and was rerun with another cutoff can leave a second copy, hence DISTINCT)::

    SELECT DISTINCT * FROM read_parquet('data/archive/observations/**/*.parquet',
                                        hive_partitioning = true)
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from pipeline.derived import (
    HISTORY_TABLE,
    LATE_OBSERVATIONS_S,
    PRUNED_STATE,
    ROLLUPS_STATE,
    derived_state,
    set_derived_state,
)
from pipeline.warehouse import Warehouse
from pipeline.warehouse.store import first_row


@dataclasses.dataclass(frozen=True)
class PruneResult:
    """What one prune did."""

    requested_before: datetime
    cutoff: datetime | None
    """The cutoff applied (None: the derived tables have not folded in anything yet)."""
    observations: int
    payloads: int
    archive_dir: Path | None
    """Where the rows were copied (None: deleted without a copy)."""


def prune(
    warehouse: Warehouse,
    before: datetime,
    archive_dir: Path,
    *,
    keep_archive: bool = True,
) -> PruneResult:
    """Move observations polled before `before` (capped by the derived tables' watermarks)
    and the payload bodies only they pointed at out of the warehouse (module docstring)."""
    with warehouse.transaction() as con:
        cutoff = safe_cutoff(con, before)
        if cutoff is None:
            return PruneResult(before, None, 0, 0, archive_dir if keep_archive else None)
        observations = _count(con, "SELECT count(*) FROM observations WHERE polled_at < ?", cutoff)
        payloads = _count(con, f"SELECT count(*) FROM ({_ORPHANED_PAYLOADS})", cutoff)
        if keep_archive and observations:
            _archive(con, "SELECT * FROM observations WHERE polled_at < ?", "polled_at",
                     archive_dir / "observations", cutoff)  # fmt: skip
        if keep_archive and payloads:
            _archive(con, _ORPHANED_PAYLOADS, "first_seen_at", archive_dir / "payloads", cutoff)
        # Payloads first: which ones are orphaned is judged by the observations kept.
        con.execute(
            "DELETE FROM payloads WHERE payload_sha256 IN "
            f"(SELECT payload_sha256 FROM ({_ORPHANED_PAYLOADS}))",
            [cutoff, cutoff],
        )
        con.execute("DELETE FROM observations WHERE polled_at < ?", [cutoff])
        earlier = derived_state(con, PRUNED_STATE)
        set_derived_state(con, PRUNED_STATE, max(cutoff, earlier) if earlier else cutoff)
    with warehouse.connect() as con:
        con.execute("CHECKPOINT")  # hand the deleted rows' blocks back to the file
    return PruneResult(
        before, cutoff, observations, payloads, archive_dir if keep_archive else None
    )


def prune_older_than(
    warehouse: Warehouse, days: float, archive_dir: Path, *, keep_archive: bool = True
) -> PruneResult:
    """`prune` the polls older than `days` days from now."""
    before = datetime.now(UTC) - timedelta(days=days)
    return prune(warehouse, before, archive_dir, keep_archive=keep_archive)


def safe_cutoff(con: duckdb.DuckDBPyConnection, before: datetime) -> datetime | None:
    """`before`, or earlier: no later than the status history's and the rollups' watermarks
    less `LATE_OBSERVATIONS_S` (None when either has folded in nothing yet)."""
    marks = [derived_state(con, name) for name in (HISTORY_TABLE, ROLLUPS_STATE)]
    if any(mark is None for mark in marks):
        return None
    late = timedelta(seconds=LATE_OBSERVATIONS_S)
    return min(before, *(mark - late for mark in marks if mark is not None))


def pruned_before(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """Observations polled before this time were pruned (None: the log is whole)."""
    return derived_state(con, PRUNED_STATE)


OBSERVATION_ARCHIVE = "observation_archive"
"""The Dagster asset that prunes after each refresh when retention is on."""

_ORPHANED_PAYLOADS = (
    "SELECT * FROM payloads p WHERE p.first_seen_at < ? AND NOT EXISTS ("
    "SELECT 1 FROM observations o WHERE o.payload_sha256 = p.payload_sha256 "
    "AND o.polled_at >= ?)"
)
"""Payload bodies first seen before the cutoff that no observation kept points at."""


def _count(con: duckdb.DuckDBPyConnection, sql: str, cutoff: datetime) -> int:
    return int(first_row(con, sql, [cutoff] * sql.count("?"))[0])


def _archive(
    con: duckdb.DuckDBPyConnection, select: str, time_column: str, target: Path, cutoff: datetime
) -> None:
    """Copy `select`'s rows to Parquet under `target`, one folder per provider and day.

    Files are named after the cutoff: a rerun with the same cutoff overwrites its own files,
    and a later prune never touches an earlier one's."""
    target.mkdir(parents=True, exist_ok=True)
    stamp = cutoff.strftime("%Y%m%dT%H%M%S%fZ")
    sql = (
        f"COPY (SELECT *, strftime({time_column}, '%Y-%m-%d') AS day FROM ({select})) "
        f"TO '{_sql_path(target)}' (FORMAT parquet, PARTITION_BY (provider, day), "
        f"FILENAME_PATTERN 'before-{stamp}-{{i}}', OVERWRITE_OR_IGNORE)"
    )
    con.execute(sql, [cutoff] * select.count("?"))


def _sql_path(path: Path) -> str:
    """`path` as a SQL string literal's body (COPY takes no parameter for its target)."""
    return str(path.resolve()).replace("'", "''")

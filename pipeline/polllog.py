"""The poll log: Parquet files that sharded pollers write and the warehouse folds in.

DuckDB lets one process write a file, so pollers sharing a warehouse would queue on its lock.
A shard (`pipeline poll --shard K/N`, `pipeline.sharding`) writes instead to the log under
`<data dir>/log/`: each flush validates its rows as the warehouse write path does
(`pipeline.ingest.prepare_batch`) and adds one Parquet file per table, provider and day,
`<table>/provider=<slug>/day=<date>/<writer>-<seq>.parquet` (quarantine rows: one file per
flush in `quarantine/`). A file is written under a hidden name and renamed into place, so a
reader (any engine: `read_parquet('data/log/observations/**/*.parquet', hive_partitioning =
true)`) sees whole files only, and every writer names its own files: pollers never wait for one
another or for the warehouse.

`fold_log` (run by `pipeline refresh` and the derived Dagster assets) appends the files to the
warehouse tables, where every query reads them as before, then deletes them. Appends skip rows
already stored (`pipeline.warehouse.store.append`), so a refresh that stops between the commit
and the deletes stores nothing twice when it runs again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import duckdb
import polars as pl

from pipeline.analytics.inputs import conform
from pipeline.ingest import BatchResult, prepare_batch, update_tracking
from pipeline.model import Observation
from pipeline.warehouse import Warehouse, query
from pipeline.warehouse.schema import OBSERVATION_COLUMNS, PAYLOAD_COLUMNS, QUARANTINE_COLUMNS
from pipeline.warehouse.store import append_new

LOG_TABLES: dict[str, tuple[dict[str, pl.DataType], str | None]] = {
    "observations": (OBSERVATION_COLUMNS, "polled_at"),
    "payloads": (PAYLOAD_COLUMNS, "first_seen_at"),
    "quarantine": (QUARANTINE_COLUMNS, None),
}
"""Tables in the log: their columns and the time that names a file's day (None: one flat
folder, since a quarantined row may lack its provider)."""
FOLD_FILES = 2_000
"""Log files folded into the warehouse per transaction (bounds memory)."""
ABANDONED_AFTER_S = 3600.0
"""A hidden, half-written file this old belongs to a writer that was killed: it is deleted."""
_WRITTEN_BODIES_KEPT = 100_000


class LogStore:
    """An `ObservationStore` for one shard: answers go to the log, and the scheduler's
    per-order memory (`order_tracking`) to the shard's own small warehouse, `state`.

    Args:
        root: the log directory.
        state: the shard's warehouse (its orders and their tracking; nobody else opens it).
        writer: names this writer's files (unique among the writers of the log).
    """

    def __init__(self, root: Path, state: Warehouse, writer: str) -> None:
        self.root = root
        self.state = state
        self.writer = f"{writer}-{uuid.uuid4().hex[:8]}"  # a restart never reuses a name
        self._seq = itertools.count()
        self._bodies: set[str] = set()

    def __call__(
        self, observations: Sequence[Observation]
    ) -> tuple[BatchResult, dict[str, Exception]]:
        """Validate and write a flush's rows; returns what was stored (no per-provider
        failures: the log never refuses a provider's rows on its own)."""
        prepared = prepare_batch(observations, [], batch_id=None)
        payloads = prepared.payloads.filter(~pl.col("payload_sha256").is_in(list(self._bodies)))
        seq = next(self._seq)
        for table, frame in (
            ("observations", prepared.valid),
            ("payloads", payloads),
            ("quarantine", prepared.quarantine),
        ):
            write_log_files(self.root, table, frame, f"{self.writer}-{seq:09d}")
        if len(self._bodies) > _WRITTEN_BODIES_KEPT:
            self._bodies.clear()  # a body written again is stored once all the same
        self._bodies.update(payloads["payload_sha256"].to_list())
        with self.state.transaction() as con:
            update_tracking(con, prepared.valid, prepared.quarantine)
        return BatchResult(
            prepared.received, prepared.valid.height, prepared.quarantine.height, payloads.height
        ), {}


def write_log_files(root: Path, table: str, frame: pl.DataFrame, name: str) -> list[Path]:
    """`frame`'s rows as Parquet files of `table` named `name`, one per provider and day."""
    if frame.is_empty():
        return []
    _, day_column = LOG_TABLES[table]
    if day_column is None:
        return [_write_atomically(frame, root / table / f"{name}.parquet")]
    days = frame.with_columns(pl.col(day_column).dt.strftime("%Y-%m-%d").alias("_day"))
    written = []
    for (provider, day), part in days.group_by("provider", "_day"):
        folder = root / table / f"provider={provider}" / f"day={day}"
        written.append(_write_atomically(part.drop("provider", "_day"), folder / f"{name}.parquet"))
    return written


def _write_atomically(frame: pl.DataFrame, path: Path) -> Path:
    """Write under a hidden name, then rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    hidden = path.with_name(f".{path.name}.tmp")
    frame.write_parquet(hidden)
    os.replace(hidden, path)
    return path


@dataclasses.dataclass(frozen=True)
class FoldResult:
    """What folding the log into the warehouse did."""

    files: int
    rows: dict[str, int]
    """Rows appended per table (rows already stored are not counted)."""


def fold_log(warehouse: Warehouse, root: Path) -> FoldResult:
    """Append every log file under `root` to its warehouse table, then delete the files.

    Files are taken `FOLD_FILES` at a time, each batch in one transaction with the scheduler's
    `order_tracking` (so the warehouse's view of each order stays current for the checks and
    the summary); a batch's files are deleted once it has committed.
    """
    _remove_abandoned(root)
    files = log_files(root)
    rows = dict.fromkeys(LOG_TABLES, 0)
    for start in range(0, len(files), FOLD_FILES):
        batch = files[start : start + FOLD_FILES]
        with warehouse.transaction() as con:
            # Only rows not stored yet count: a batch folded again after a crash between its
            # commit and the deletes must not count its polls twice.
            stored = {
                table: append_new(con, table, _read(con, root, table, batch))
                for table in LOG_TABLES
            }
            for table, frame in stored.items():
                rows[table] += frame.height
            update_tracking(con, stored["observations"], stored["quarantine"])
        for path in batch:
            path.unlink(missing_ok=True)
    return FoldResult(len(files), rows)


def log_files(root: Path) -> list[Path]:
    """Every whole log file under `root` (files still being written are hidden)."""
    return sorted(
        path
        for table in LOG_TABLES
        for path in (root / table).rglob("*.parquet")
        if not path.name.startswith(".")
    )


def _remove_abandoned(root: Path) -> None:
    """Delete hidden files a writer left half-written when it was killed (never renamed)."""
    cutoff = time.time() - ABANDONED_AFTER_S
    for table in LOG_TABLES:
        for path in (root / table).rglob(".*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()


def _read(
    con: duckdb.DuckDBPyConnection, root: Path, table: str, files: Sequence[Path]
) -> pl.DataFrame:
    """The rows of `table`'s files among `files`, with the warehouse's columns and types."""
    columns, day_column = LOG_TABLES[table]
    mine = [str(path) for path in files if path.is_relative_to(root / table)]
    if not mine:
        return pl.DataFrame(schema=columns)
    hive = day_column is not None
    frame = query(
        con,
        "SELECT * FROM read_parquet(?, hive_partitioning = ?, union_by_name = true)",
        [mine, hive],
    )
    # DuckDB hands instants back in its session zone's name; the tables say "UTC".
    frame = frame.with_columns(
        pl.col(name).dt.convert_time_zone("UTC")
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None
    )
    return conform(frame, columns, frozenset(), name=f"log {table}")

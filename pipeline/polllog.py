"""The poll log: Parquet files that sharded pollers write and the warehouse folds in.

DuckDB lets one process write a file, so pollers sharing a warehouse would queue on its lock.
A shard (`pipeline poll --shard K/N`, `pipeline.sharding`) writes instead to the log, a folder
(`<data dir>/log/` by default) or an object store's bucket (`PIPELINE_LOG_URL`,
`pipeline.logstorage`): each flush validates its rows as the warehouse write path does
(`pipeline.ingest.prepare_batch`) and adds one Parquet file per table, provider and day,
`<table>/provider=<slug>/day=<date>/<writer>-<seq>.parquet` (quarantine rows: one file per
flush in `quarantine/`). A reader (any engine: `read_parquet('data/log/observations/**/*.parquet',
hive_partitioning = true)`) sees whole files only, and every writer names its own files:
pollers never wait for one another or for the warehouse. When an object store does not answer,
a shard keeps its files in a local spool and sends them later under the same names; when a log
folder cannot be written, a flush's rows wait for the next flush, as for a locked warehouse.

`fold_log` (run by `pipeline refresh` and the derived Dagster assets) appends the files to the
warehouse tables, where every query reads them as before, then deletes them. Appends skip rows
already stored (`pipeline.warehouse.store.append`), so a refresh that stops between the commit
and the deletes, or a flush written again after its storage failed halfway, stores nothing
twice. Polls older than the derived tables' late margin (a spool sent after a long outage)
move their watermarks back, so the next refresh counts them (`rewind_for_late_polls`).
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import logging
import re
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import polars as pl

from pipeline.analytics.inputs import conform
from pipeline.derived import rewind_for_late_polls
from pipeline.ingest import BatchResult, prepare_batch, update_tracking
from pipeline.logstorage import FolderStorage, LogStorage, LogUnavailableError
from pipeline.model import Observation
from pipeline.warehouse import Warehouse
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
SPOOL_SUFFIX = "-spool"
"""A shard's spool is the folder `<shard>-spool` beside its warehouse (`pipeline.sharding`)."""
RETRY_LOG_S = 30.0
"""While the log does not answer, a shard with a spool asks it again this often."""
_WRITTEN_BODIES_KEPT = 100_000

logger = logging.getLogger(__name__)


class LogStore:
    """An `ObservationStore` for one shard: answers go to the log, and the scheduler's
    per-order memory (`order_tracking`) to the shard's own small warehouse, `state`.

    Args:
        log: where the log's files go.
        state: the shard's warehouse (its orders and their tracking; nobody else opens it).
        writer: names this writer's files (unique among the writers of the log).
        spool: a local folder for the files `log` does not take (an object store that does not
            answer); they go on to `log` under the same keys once it answers again, from this
            run's later flushes or the shard's next run. None: a flush the log refuses waits
            (`LogUnavailableError`).
    """

    def __init__(
        self, log: LogStorage, state: Warehouse, writer: str, spool: LogStorage | None = None
    ) -> None:
        self.log = log
        self.state = state
        self.spool = spool
        self.writer = f"{writer}-{uuid.uuid4().hex[:8]}"  # a restart never reuses a name
        self._seq = itertools.count()
        self._bodies: set[str] = set()
        self._log_down_since: float | None = None

    def __call__(
        self, observations: Sequence[Observation]
    ) -> tuple[BatchResult, dict[str, Exception]]:
        """Validate and write a flush's rows; returns what was stored (no per-provider
        failures: the log never refuses a provider's rows on its own). Without a spool, raises
        `LogUnavailableError` when the log did not answer: the rows must wait."""
        prepared = prepare_batch(observations, [], batch_id=None)
        payloads = prepared.payloads.filter(~pl.col("payload_sha256").is_in(list(self._bodies)))
        name = f"{self.writer}-{next(self._seq):09d}"
        files = [
            file
            for table, frame in (
                ("observations", prepared.valid),
                ("payloads", payloads),
                ("quarantine", prepared.quarantine),
            )
            for file in log_files_of(table, frame, name)
        ]
        if self.spool is None:
            for key, data in files:
                self.log.put(key, data)
        else:
            self._put_or_spool(files)
        if len(self._bodies) > _WRITTEN_BODIES_KEPT:
            self._bodies.clear()  # a body written again is stored once all the same
        self._bodies.update(payloads["payload_sha256"].to_list())
        with self.state.transaction() as con:
            update_tracking(con, prepared.valid, prepared.quarantine)
        return BatchResult(
            prepared.received, prepared.valid.height, prepared.quarantine.height, payloads.height
        ), {}

    def _put_or_spool(self, files: list[tuple[str, bytes]]) -> None:
        """Send what the spool holds, then `files`, to the log; what it does not take goes to
        the spool. While the log is down it is asked again every `RETRY_LOG_S`, not at every
        flush (each attempt may take the store's whole retry time). The spool's own errors
        (a full disk) are not the log's: they raise, and the rows wait."""
        assert self.spool is not None
        self.send_spool()
        sent = 0
        while sent < len(files) and self._log_down_since is None and self._to_log(*files[sent]):
            sent += 1
        for key, data in files[sent:]:
            self.spool.put(key, data)

    def send_spool(self) -> None:
        """Send the spool's files to the log under their own names, unless the log was down
        less than `RETRY_LOG_S` ago (a new run sends a spool left by the last)."""
        if self.spool is None:
            return
        down = self._log_down_since
        if down is not None and time.monotonic() - down < RETRY_LOG_S:
            return
        self._log_down_since = None
        for key in log_files(self.spool):
            if not self._to_log(key, self.spool.read(key)):
                return
            self.spool.delete(key)

    def _to_log(self, key: str, data: bytes) -> bool:
        """Put one file in the log; False (the log now counts as down) if it did not answer."""
        try:
            self.log.put(key, data)
        except LogUnavailableError as error:
            if self._log_down_since is None:
                logger.warning("%s; files kept in %s until it answers", error, self.spool)
            self._log_down_since = time.monotonic()
            return False
        return True


def log_files_of(table: str, frame: pl.DataFrame, name: str) -> list[tuple[str, bytes]]:
    """`frame`'s rows as Parquet files of `table` named `name`, one per provider and day:
    their keys and bytes."""
    if frame.is_empty():
        return []
    _, day_column = LOG_TABLES[table]
    if day_column is None:
        return [(f"{table}/{name}.parquet", _parquet(frame))]
    days = frame.with_columns(pl.col(day_column).dt.strftime("%Y-%m-%d").alias("_day"))
    return [
        (
            f"{table}/provider={provider}/day={day}/{name}.parquet",
            _parquet(part.drop("provider", "_day")),
        )
        for (provider, day), part in days.group_by("provider", "_day")
    ]


def write_log_files(log: LogStorage, table: str, frame: pl.DataFrame, name: str) -> list[str]:
    """`log_files_of` written to `log`; their keys."""
    files = log_files_of(table, frame, name)
    for key, data in files:
        log.put(key, data)
    return [key for key, _ in files]


def _parquet(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


@dataclasses.dataclass(frozen=True)
class FoldResult:
    """What folding the log into the warehouse did."""

    files: int
    rows: dict[str, int]
    """Rows appended per table (rows already stored are not counted)."""
    error: str | None = None
    """Why the log could not be folded, or only partly (its storage did not answer): what
    was not folded stays in the log for the next refresh."""
    unreadable: tuple[str, ...] = ()
    """Files that are not Parquet the log's tables can take (cut short, or not ours): left in
    place, folded by no refresh, for someone to look at."""


def fold_log(warehouse: Warehouse, log: LogStorage) -> FoldResult:
    """Append every log file to its warehouse table, then delete the files.

    Files are taken `FOLD_FILES` at a time, each batch in one transaction with the scheduler's
    `order_tracking` (so the warehouse's view of each order stays current for the checks and
    the summary); a batch's files are read before it begins and deleted once it has
    committed. When the storage stops answering, what is not folded stays in the log and the
    result says why.
    """
    rows = dict.fromkeys(LOG_TABLES, 0)
    folded = 0
    unreadable: list[str] = []
    try:
        log.remove_abandoned(list(LOG_TABLES), ABANDONED_AFTER_S)
        keys = log_files(log)
        for start in range(0, len(keys), FOLD_FILES):
            batch = keys[start : start + FOLD_FILES]
            # Read before the warehouse is taken: a slow store must not hold its lock.
            frames = {table: _read(log, table, batch, unreadable) for table in LOG_TABLES}
            batch = [key for key in batch if key not in unreadable]
            with warehouse.transaction() as con:
                # Only rows not stored yet count: a batch folded again after a crash between
                # its commit and the deletes must not count its polls twice.
                stored = {table: append_new(con, table, frames[table]) for table in LOG_TABLES}
                for table, frame in stored.items():
                    rows[table] += frame.height
                update_tracking(con, stored["observations"], stored["quarantine"])
                oldest = stored["observations"]["polled_at"].min()
                if isinstance(oldest, datetime):
                    rewind_for_late_polls(con, oldest)
            folded += len(batch)
            for key in batch:
                log.delete(key)
    except LogUnavailableError as error:
        return FoldResult(folded, rows, str(error), tuple(unreadable))
    if unreadable:
        logger.error("poll log %s: %d files could not be read: %s", log, len(unreadable),
                     ", ".join(unreadable[:5]))  # fmt: skip
    return FoldResult(folded, rows, unreadable=tuple(unreadable))


def fold_poll_logs(warehouse: Warehouse, log: LogStorage, shards_dir: Path) -> FoldResult:
    """`fold_log` of the log, then of the spools shards on this host left under `shards_dir`
    (`LogStore`), so a spool whose shard no longer runs (re-sharded, idle) is not stranded;
    summed, the first error said."""
    spools = [FolderStorage(path) for path in sorted(shards_dir.glob(f"*{SPOOL_SUFFIX}"))]
    results = [fold_log(warehouse, each) for each in (log, *spools)]
    return FoldResult(
        sum(result.files for result in results),
        {table: sum(result.rows[table] for result in results) for table in LOG_TABLES},
        next((result.error for result in results if result.error), None),
        tuple(key for result in results for key in result.unreadable),
    )


def log_files(log: LogStorage) -> list[str]:
    """The keys of every whole log file (files still being written are not listed)."""
    return [key for table in LOG_TABLES for key in log.keys(table)]


_PARTITION = re.compile(r"(?:^|/)provider=([^/]+)/")


def _read(log: LogStorage, table: str, keys: Sequence[str], unreadable: list[str]) -> pl.DataFrame:
    """The rows of `table`'s files among `keys`, with the warehouse's columns and types (the
    provider from the file's folder, as hive partitioning reads it). Files that cannot be
    read as such are added to `unreadable` and left out."""
    columns, day_column = LOG_TABLES[table]
    frames = [pl.DataFrame(schema=columns)]
    for key in (key for key in keys if key.startswith(f"{table}/")):
        try:
            frame = pl.read_parquet(io.BytesIO(log.read(key)))
            partition = _PARTITION.search(key)
            if day_column is not None and partition is not None:
                frame = frame.with_columns(pl.lit(partition.group(1)).alias("provider"))
            frames.append(conform(frame, columns, frozenset(), name=f"log {table}"))
        except (pl.exceptions.PolarsError, ValueError) as error:
            logger.error("poll log %s: %s: %s", log, key, type(error).__name__)
            unreadable.append(key)
    return pl.concat(frames, how="vertical_relaxed")

"""The poll log folded into a real warehouse, from a folder and from an object store (a real
S3-compatible server on loopback): every row once, files removed once folded, a fold repeated
after a crash (files still there) stores nothing twice, half-written files of a killed writer
are cleared once they are old, and a store that stops answering loses nothing."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pytest
from object_store import BUCKET, s3_bucket
from polars.testing import assert_frame_equal
from polling.test_writer import _obs
from warehouse.test_retention import _log

from pipeline.derived import refresh_derived
from pipeline.logstorage import FolderStorage, LogStorage, open_log
from pipeline.polling.writer import BatchWriter
from pipeline.polllog import (
    ABANDONED_AFTER_S,
    SPOOL_SUFFIX,
    LogStore,
    fold_log,
    fold_poll_logs,
    log_files,
    write_log_files,
)
from pipeline.warehouse import Warehouse, append

LOG_URL = f"s3://{BUCKET}/team-a/log"


@pytest.fixture(params=["folder", "object store"])
def log(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LogStorage]:
    if request.param == "folder":
        yield FolderStorage(tmp_path / "log")
        return
    with s3_bucket() as env:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield open_log(LOG_URL)


def _engine_reads(log: LogStorage) -> pl.DataFrame:
    """The log's observations as another engine reads them: DuckDB over the folder, polars
    over the bucket (with the store's variables from the environment)."""
    if isinstance(log, FolderStorage):
        return duckdb.sql(
            f"SELECT * FROM read_parquet('{log.root}/observations/**/*.parquet', "
            "hive_partitioning = true)"
        ).pl()
    return pl.scan_parquet(f"{LOG_URL}/observations/**/*.parquet", hive_partitioning=True).collect()


def test_folding_stores_every_row_once_even_when_repeated(log: LogStorage, tmp_path: Path) -> None:
    _, observations, payloads = _log()
    halves = [observations.gather_every(2), observations.gather_every(2, offset=1)]
    for writer, half in enumerate(halves):  # two writers, files by provider and day
        write_log_files(log, "observations", half, f"shard-{writer}-of-2-000000001")
    write_log_files(log, "payloads", payloads, "shard-0-of-2-000000001")
    keys = log_files(log)
    assert any(key.startswith("observations/provider=sms4sats/day=") for key in keys)
    read = _engine_reads(log)
    assert read.height == observations.height
    assert set(read["provider"]) == set(observations["provider"])

    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    folded = fold_log(warehouse, log)
    assert folded.error is None
    assert folded.files == len(keys)
    assert folded.rows["observations"] == observations.height
    assert folded.rows["payloads"] == payloads.height
    assert log_files(log) == []

    # A refresh killed after its commit leaves the files: folding them again adds nothing.
    write_log_files(log, "observations", observations, "shard-0-of-2-000000002")
    again = fold_log(warehouse, log)
    assert again.rows["observations"] == 0
    polls = warehouse.read("SELECT sum(polls) AS n FROM order_tracking")["n"].item()
    assert polls == observations.height  # and the scheduler's poll counts are not doubled
    stored = warehouse.read("SELECT observation_id, provider, polled_at FROM observations")
    assert stored.height == observations.height == stored["observation_id"].n_unique()
    assert stored["polled_at"].dtype == pl.Datetime("us", "UTC")
    assert stored.sort("observation_id")["provider"].to_list() == (
        observations.sort("observation_id")["provider"].to_list()
    )


def test_half_written_files_of_a_killed_writer_are_cleared_once_old(tmp_path: Path) -> None:
    root = tmp_path / "log"
    folder = root / "observations" / "provider=baanx" / "day=2026-01-01"
    folder.mkdir(parents=True)
    old, fresh = folder / ".shard-0-of-1-1.parquet.tmp", folder / ".shard-0-of-1-2.parquet.tmp"
    for path in (old, fresh):
        path.write_bytes(b"PAR1 cut short")
    long_ago = time.time() - ABANDONED_AFTER_S - 60
    os.utime(old, (long_ago, long_ago))
    log = FolderStorage(root)
    assert log_files(log) == []  # hidden: never read as a whole file
    fold_log(Warehouse(tmp_path / "warehouse.duckdb"), log)
    assert not old.exists() and fresh.exists()


def test_a_store_that_stops_answering_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store goes away: a shard's files go to its spool and a fold says why it folded
    nothing; with the store back, the spool is sent under the same names and every row is
    folded once."""
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    state = Warehouse(tmp_path / "shard.duckdb")
    state.initialise()
    spool = FolderStorage(tmp_path / "spool")
    with s3_bucket() as env:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        store = LogStore(open_log(LOG_URL), state, "shard-0-of-1", spool)
        writer = BatchWriter(state, store=store)
        writer.submit("baanx", [_obs("a"), _obs("bb")])
        asyncio.run(writer.flush())
        written = {key: store.log.read(key) for key in log_files(store.log)}
    assert written and log_files(spool) == []

    # The server is gone: the next rows go to the spool, and the fold stores nothing.
    writer.submit("altinn", [_obs("ccc", "altinn")])
    asyncio.run(writer.flush())
    assert writer.pending() == 0 and not writer.totals.errors
    spooled = log_files(spool)
    assert spooled and all(key.startswith("observations/provider=altinn/") for key in spooled)
    folded = fold_log(warehouse, store.log)
    assert folded.files == 0 and folded.error is not None and LOG_URL in folded.error
    assert folded.error.count("\n") == 0 and len(folded.error) < 400
    assert warehouse.read("SELECT count(*) AS n FROM observations")["n"].item() == 0

    with s3_bucket() as env:  # back, on a new port, with what it held
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        store.log = open_log(LOG_URL)
        for key, data in written.items():
            store.log.put(key, data)
        monkeypatch.setattr("pipeline.polllog.RETRY_LOG_S", 0.0)
        writer.submit("baanx", [_obs("dddd")])
        asyncio.run(writer.flush())
        assert log_files(spool) == []
        assert set(spooled) <= set(log_files(store.log))  # sent under the names it had
        folded = fold_log(warehouse, store.log)
    assert folded.error is None and folded.rows["observations"] == 4
    stored = warehouse.read("SELECT order_id FROM observations")
    assert sorted(stored["order_id"]) == ["a", "bb", "ccc", "dddd"]


def test_rows_wait_while_the_log_folder_cannot_be_written(tmp_path: Path) -> None:
    """A folder log that fails (here: its path is a file) makes the rows wait, as a locked
    warehouse does, and they are written once it can be."""
    state = Warehouse(tmp_path / "shard.duckdb")
    state.initialise()
    blocked = tmp_path / "log"
    blocked.write_text("not a folder")
    writer = BatchWriter(state, store=LogStore(FolderStorage(blocked), state, "shard-0-of-1"))
    writer.submit("baanx", [_obs("a"), _obs("bb")])
    asyncio.run(writer.flush())
    assert writer.pending() == 2
    assert writer.totals.errors and str(blocked) in writer.totals.errors[0]
    blocked.unlink()
    asyncio.run(writer.flush())
    assert writer.pending() == 0
    assert len(log_files(FolderStorage(blocked))) == 1


def test_polls_folded_behind_the_late_margin_still_count(tmp_path: Path) -> None:
    """A spool sent after a long outage brings polls hours older than the history's watermark:
    the fold moves the watermarks back, and the refresh counts them as a build from the
    whole log does."""
    orders, observations, _ = _log()
    late_orders = orders["order_id"].head(40).to_list()
    late = observations.filter(pl.col("order_id").is_in(late_orders))
    on_time = observations.filter(~pl.col("order_id").is_in(late_orders))
    warehouse, whole = (Warehouse(tmp_path / name) for name in ("w.duckdb", "whole.duckdb"))
    for target, polls in ((warehouse, on_time), (whole, observations)):
        with target.transaction() as con:
            append(con, "orders", orders)
            append(con, "observations", polls)
        refresh_derived(target)
    spool = FolderStorage(tmp_path / "shards" / f"shard-1-of-2{SPOOL_SUFFIX}")
    write_log_files(spool, "observations", late, "shard-1-of-2-000000001")
    folded = fold_poll_logs(warehouse, FolderStorage(tmp_path / "log"), tmp_path / "shards")
    assert folded.rows["observations"] == late.height and log_files(spool) == []
    refresh_derived(warehouse)
    for table in ("status_history", "completion_records"):
        query = (
            f"SELECT * EXCLUDE (registered_at) FROM {table}"
            if "records" in table
            else (f"SELECT * FROM {table}")
        )
        got, want = (w.read(query) for w in (warehouse, whole))
        assert_frame_equal(got.sort(got.columns), want.sort(want.columns)), table
    polls = "SELECT sum(polls) AS n FROM poll_rollups"
    assert warehouse.read(polls)["n"].item() == observations.height


def test_a_log_file_that_cannot_be_read_is_left_in_place(tmp_path: Path) -> None:
    _, observations, _ = _log()
    log = FolderStorage(tmp_path / "log")
    write_log_files(log, "observations", observations, "shard-0-of-1-000000001")
    broken = "observations/provider=baanx/day=2026-01-01/shard-0-of-1-000000002.parquet"
    log.put(broken, b"PAR1 cut short")
    folded = fold_log(Warehouse(tmp_path / "warehouse.duckdb"), log)
    assert folded.unreadable == (broken,)
    assert folded.rows["observations"] == observations.height
    assert log_files(log) == [broken]


def test_a_log_location_is_a_folder_or_an_object_store(tmp_path: Path) -> None:
    assert isinstance(open_log(tmp_path), FolderStorage)
    assert open_log(f"file://{tmp_path}/my%20log").root == tmp_path / "my log"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="a path on this host"):
        open_log("file://data/log")  # a host named "data", not a relative path
    with pytest.raises(ValueError, match="not a folder or an object store"):
        open_log("ftp://example.invalid/log")

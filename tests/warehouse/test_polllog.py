"""The poll log folded into a real warehouse: every row once, files removed once folded, a fold
repeated after a crash (files still there) stores nothing twice, and half-written files of a
killed writer are cleared once they are old."""

from __future__ import annotations

import os
import time
from pathlib import Path

import duckdb
import polars as pl
from warehouse.test_retention import _log

from pipeline.polllog import ABANDONED_AFTER_S, fold_log, log_files, write_log_files
from pipeline.warehouse import Warehouse


def test_folding_stores_every_row_once_even_when_repeated(tmp_path: Path) -> None:
    _, observations, payloads = _log()
    root = tmp_path / "log"
    halves = [observations.gather_every(2), observations.gather_every(2, offset=1)]
    for writer, half in enumerate(halves):  # two writers, files by provider and day
        write_log_files(root, "observations", half, f"shard-{writer}-of-2-000000001")
    write_log_files(root, "payloads", payloads, "shard-0-of-2-000000001")
    files = log_files(root)
    assert {f.parent.parent.name for f in files} >= {"provider=sms4sats"}
    readable = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{root}/observations/**/*.parquet', "
        "hive_partitioning = true)"
    ).fetchall()
    assert readable == [(observations.height,)]

    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    folded = fold_log(warehouse, root)
    assert folded.files == len(files)
    assert folded.rows["observations"] == observations.height
    assert folded.rows["payloads"] == payloads.height
    assert log_files(root) == []

    # A refresh killed after its commit leaves the files: folding them again adds nothing.
    write_log_files(root, "observations", observations, "shard-0-of-2-000000002")
    again = fold_log(warehouse, root)
    assert again.rows["observations"] == 0
    polls = warehouse.read("SELECT sum(polls) AS n FROM order_tracking")["n"].item()
    assert polls == observations.height  # and the scheduler's poll counts are not doubled
    stored = warehouse.read("SELECT observation_id, polled_at FROM observations")
    assert stored.height == observations.height == stored["observation_id"].n_unique()
    assert stored["polled_at"].dtype == pl.Datetime("us", "UTC")


def test_half_written_files_of_a_killed_writer_are_cleared_once_old(tmp_path: Path) -> None:
    root = tmp_path / "log"
    folder = root / "observations" / "provider=baanx" / "day=2026-01-01"
    folder.mkdir(parents=True)
    old, fresh = folder / ".shard-0-of-1-1.parquet.tmp", folder / ".shard-0-of-1-2.parquet.tmp"
    for path in (old, fresh):
        path.write_bytes(b"PAR1 cut short")
    long_ago = time.time() - ABANDONED_AFTER_S - 60
    os.utime(old, (long_ago, long_ago))
    assert log_files(root) == []  # hidden: never read as a whole file
    fold_log(Warehouse(tmp_path / "warehouse.duckdb"), root)
    assert not old.exists() and fresh.exists()
